import { describe, expect, it } from 'vitest';
import { applyEvent, emptyLive, withRows } from './live';

const snapshot = (seq: number, done: number, failed = 0, total = 10) => ({
  type: 'snapshot', seq, state: 'running', done, failed, total, percent: ((done + failed) * 100) / total,
  position: `file ${done + failed + 1} of ${total}`, eta_seconds: 5, cards_per_minute: 60,
});
const done = (seq: number, card: number) => ({ type: 'card_done', seq, card_id: card, file: `${card}.jpg`, result: { title: `t${card}` } });
const failed = (seq: number, card: number) => ({ type: 'card_failed', seq, card_id: card, file: `${card}.jpg`, error: { code: 'bad_answer', message: 'no JSON' } });

describe('the progress reducer', () => {
  it('adds each card once, however often its event arrives', () => {
    let s = emptyLive(0);
    s = applyEvent(s, snapshot(0, 0));
    s = applyEvent(s, done(1, 7));
    s = applyEvent(s, done(2, 8));
    // A reconnect with since=1 replays seq 2 again.
    s = applyEvent(s, done(2, 8));
    expect([...s.rows.keys()]).toEqual([7, 8]);
    expect(s.seq).toBe(2);
    expect(s.progress?.done).toBe(2);
  });

  it('does not count replayed events the snapshot already includes', () => {
    // Export taken at seq 3 (3 rows); the snapshot on connect says 5 done.
    let s = withRows(emptyLive(3), [1, 2, 3].map((c) => ({ card_id: c, original_name: `${c}.jpg`, state: 'done', result: {}, error: null, flags: [], confidence: {} })));
    s = applyEvent(s, snapshot(5, 5));
    s = applyEvent(s, done(4, 4));
    s = applyEvent(s, done(5, 5));
    expect(s.rows.size).toBe(5);
    expect(s.progress?.done).toBe(5);
    // A live event after the snapshot counts.
    s = applyEvent(s, done(6, 6));
    expect(s.progress?.done).toBe(6);
    expect(s.progress?.percent).toBe(60);
  });

  it('adds a cross-check\'s flags to its row once, however often it arrives', () => {
    let s = applyEvent(emptyLive(0), snapshot(0, 0));
    s = applyEvent(s, done(1, 7));
    const notInText = { code: 'not_in_text', field: 'title', message: '"x" is not in the card\'s own text' };
    const checked = { type: 'card_checked', seq: 2, card_id: 7, check: 'done', flags: [notInText] };
    s = applyEvent(s, checked);
    s = applyEvent(s, checked);
    expect(s.rows.get(7)?.flags).toEqual([notInText]);
    expect(s.rows.get(7)?.check).toBe('done');
    expect(s.seq).toBe(2);
    expect(s.progress?.done).toBe(1);
  });

  it('moves retried cards from failed to pending, then counts their new outcome', () => {
    let s = applyEvent(emptyLive(0), snapshot(0, 0, 0, 3));
    s = applyEvent(s, failed(1, 8));
    s = applyEvent(s, failed(2, 9));
    s = applyEvent(s, done(3, 7));
    expect(s.progress).toMatchObject({ done: 1, failed: 2, percent: 100 });
    s = applyEvent(s, { type: 'state', seq: 4, from: 'completed_with_errors', to: 'running', retried: 2 });
    expect(s.rows.get(8)).toMatchObject({ state: 'pending', error: null });
    expect(s.progress).toMatchObject({ state: 'running', done: 1, failed: 0 });
    expect(Math.round(s.progress!.percent)).toBe(33);
    // The retry's own progress event says the same; then one fails again.
    s = applyEvent(s, { ...snapshot(4, 1, 0, 3), type: 'progress' });
    s = applyEvent(s, failed(5, 8));
    s = applyEvent(s, done(6, 9));
    expect(s.rows.get(9)?.state).toBe('done');
    expect(s.progress).toMatchObject({ done: 2, failed: 1 });
  });

  it('ignores a progress event older than an event it already applied', () => {
    let s = applyEvent(emptyLive(0), snapshot(0, 0));
    s = applyEvent(s, done(1, 7));
    s = applyEvent(s, failed(2, 8));
    // Counts read at seq 1, delivered after seq 2.
    const stale = applyEvent(s, { ...snapshot(1, 1), type: 'progress' });
    expect(stale).toBe(s);
    expect(s.progress).toMatchObject({ done: 1, failed: 1 });
  });

  it('follows state changes and ignores unknown events', () => {
    let s = applyEvent(emptyLive(0), snapshot(0, 0));
    s = applyEvent(s, { type: 'state', seq: 1, from: 'running', to: 'paused' });
    expect(s.progress?.state).toBe('paused');
    expect(applyEvent(s, { type: 'something_new', seq: 9 })).toBe(s);
  });
});
