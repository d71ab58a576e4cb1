import { describe, expect, it } from 'vitest';
import { applyEvent, emptyLive, withRows } from '../api/live';
import { asText, correctionsWith, fromText } from './ReviewPage';

describe('review form', () => {
  const detail = {
    machine: { title: 'Moby Dik', year: 1851, subjects: ['whales', 'sea'] },
    corrections: { year: 1852 },
    values: { title: 'Moby Dik', year: 1852, subjects: ['whales', 'sea'] },
  };
  const types = { title: 'text', year: 'integer', subjects: 'list' };

  it('shows values as text and reads them back by type', () => {
    expect(asText(['whales', 'sea'])).toBe('whales; sea');
    expect(asText(null)).toBe('');
    expect(asText(1851)).toBe('1851');
    expect(fromText(' whales ; sea;', 'list')).toEqual(['whales', 'sea']);
    expect(fromText('  ', 'text')).toBeNull();
  });

  it('keeps corrections, adds edits and drops those typed back to the machine value', () => {
    expect(correctionsWith(detail, { title: 'Moby Dik', year: '1852', subjects: 'whales; sea' }, types)).toEqual({ year: 1852 });
    expect(correctionsWith(detail, { title: 'Moby-Dick', year: '1852', subjects: 'whales; sea' }, types)).toEqual({
      year: 1852,
      title: 'Moby-Dick',
    });
    // Typed back to what the machine read: no correction left.
    expect(correctionsWith(detail, { title: 'Moby Dik', year: '1851', subjects: 'whales; sea' }, types)).toEqual({});
    // Emptied: the card has none.
    expect(correctionsWith(detail, { title: '', year: '1852', subjects: 'whales; sea' }, types)).toEqual({ year: 1852, title: null });
  });

  it('shows a review from the stream in the results table', () => {
    let s = withRows(emptyLive(5), [
      { card_id: 1, original_name: 'a.jpg', state: 'done', result: { title: 'x' }, error: null, flags: [], confidence: {}, review: null },
    ]);
    s = applyEvent(s, { type: 'card_reviewed', seq: 6, card_id: 1, review: { status: 'verified', corrections: { title: 'y' }, note: null, at: 'now' }, values: { title: 'y' } });
    expect(s.rows.get(1)?.result).toEqual({ title: 'y' });
    expect(s.rows.get(1)?.review?.status).toBe('verified');
    // A replay of the same event changes nothing.
    expect(applyEvent(s, { type: 'card_reviewed', seq: 6, card_id: 1, review: {}, values: {} })).toBe(s);
  });
});
