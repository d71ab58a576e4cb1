// A small history router: the paths are few and fixed, and the server
// answers every one of them with index.html (deep links, reloads).
import { useSyncExternalStore } from 'react';

const listeners = new Set<() => void>();
window.addEventListener('popstate', () => listeners.forEach((l) => l()));

export function navigate(path: string) {
  if (path === location.pathname + location.search) return;
  history.pushState(null, '', path);
  listeners.forEach((l) => l());
}

export function usePath(): string {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => location.pathname,
  );
}

export type Route =
  | { page: 'batches' }
  | { page: 'batch'; id: string }
  | { page: 'review'; id: string }
  | { page: 'templates' }
  | { page: 'settings' }
  | { page: 'missing' };

export function match(path: string): Route {
  if (path === '/' || path === '') return { page: 'batches' };
  const batch = path.match(/^\/batches\/([a-z0-9]{8})\/?$/);
  if (batch) return { page: 'batch', id: batch[1] };
  const review = path.match(/^\/batches\/([a-z0-9]{8})\/review\/?$/);
  if (review) return { page: 'review', id: review[1] };
  if (path === '/templates') return { page: 'templates' };
  if (path === '/settings') return { page: 'settings' };
  return { page: 'missing' };
}
