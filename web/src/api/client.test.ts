import { afterEach, describe, expect, it } from 'vitest';
import { eventsUrl, setToken } from './client';

describe('the progress stream URL', () => {
  afterEach(() => setToken(null));

  it('percent-encodes a base64 token, as the server decodes it', () => {
    setToken('q+Z/xw8=ab/c+d==');
    const url = new URL(eventsUrl('k3v9q2xa', 12));
    expect(url.pathname).toBe('/api/batches/k3v9q2xa/events');
    expect(url.search).toBe('?since=12&access_token=q%2BZ%2Fxw8%3Dab%2Fc%2Bd%3D%3D');
    // Read back the way a server reads a query string, the token is whole again.
    expect(url.searchParams.get('access_token')).toBe('q+Z/xw8=ab/c+d==');
  });

  it('carries no token when there is none', () => {
    expect(new URL(eventsUrl('k3v9q2xa', 0)).searchParams.has('access_token')).toBe(false);
  });
});
