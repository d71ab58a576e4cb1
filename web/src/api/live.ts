// The progress stream: a pure reducer from events to the run view's state
// (unit-tested), and a socket that reconnects by itself with `since`.
import type { BatchState, BatchUsage, ResultRow } from './client';
import { eventsUrl } from './client';

/** Progress as the run view shows it. */
export interface Progress {
  state: BatchState;
  done: number;
  failed: number;
  total: number;
  percent: number;
  position: string;
  eta_seconds: number | null;
  cards_per_minute: number | null;
  concurrency: number | null;
  /** What the cards cost so far (tokens, requests, dollars). */
  usage: BatchUsage | null;
}

/** Everything the run view knows, fed by the results export and the stream. */
export interface LiveState {
  /** The last durable event applied; reconnects ask for what follows. */
  seq: number;
  progress: Progress | null;
  /** The seq the counts in `progress` already include. */
  countedTo: number;
  /** Result rows by card id, in the order they first arrived. */
  rows: Map<number, ResultRow>;
  /** Bumped on every change, for cheap re-renders. */
  version: number;
}

export function emptyLive(seq = 0): LiveState {
  return { seq, countedTo: seq, progress: null, rows: new Map(), version: 0 };
}

/** Seeds the state with rows from the results export. */
export function withRows(state: LiveState, rows: ResultRow[]): LiveState {
  const next = new Map(state.rows);
  for (const r of rows) if (!next.has(r.card_id)) next.set(r.card_id, r);
  return { ...state, rows: next, version: state.version + 1 };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Event = Record<string, any>;

/**
 * Applies one event. Durable events (card_done, card_failed, card_checked,
 * card_reviewed, state) at or below the last seq are ones already applied and are
 * ignored, so a replay after a reconnect never shows a row twice. Counts come whole from
 * `snapshot` and `progress`, and move by one for each card event after
 * them; a `state` event with `retried` (retry-failed) moves the failed
 * cards back to pending.
 */
export function applyEvent(state: LiveState, ev: Event): LiveState {
  switch (ev.type) {
    case 'snapshot':
    case 'progress': {
      // Counts older than an event already applied would move backwards
      // (the server drops these too; this keeps the reducer safe alone).
      if (ev.seq < state.seq) return state;
      const progress: Progress = {
        state: ev.state,
        done: ev.done,
        failed: ev.failed,
        total: ev.total,
        percent: ev.percent,
        position: ev.position,
        eta_seconds: ev.eta_seconds ?? null,
        cards_per_minute: ev.cards_per_minute ?? null,
        concurrency: ev.concurrency ?? null,
        usage: ev.usage ?? null,
      };
      return { ...state, progress, countedTo: ev.seq ?? state.countedTo, version: state.version + 1 };
    }
    case 'card_done':
    case 'card_failed': {
      if (ev.seq <= state.seq) return state;
      const rows = new Map(state.rows);
      const previous = rows.get(ev.card_id);
      const row: ResultRow =
        ev.type === 'card_done'
          ? { card_id: ev.card_id, original_name: ev.file, state: 'done', result: ev.result, error: null, flags: ev.flags ?? [], confidence: ev.confidence ?? {} }
          : { card_id: ev.card_id, original_name: ev.file, state: 'failed', result: null, error: ev.error, flags: [], confidence: {} };
      rows.set(ev.card_id, { ...previous, ...row });
      // A replayed event the snapshot's counts already include moves none.
      const progress =
        state.progress && ev.seq > state.countedTo
          ? countChange(state.progress, previous?.state, row.state)
          : state.progress;
      return { ...state, seq: ev.seq, rows, progress, version: state.version + 1 };
    }
    case 'card_checked': {
      // A cross-check landed: the row's flags now include its not_in_text ones.
      if (ev.seq <= state.seq) return state;
      const rows = new Map(state.rows);
      const row = rows.get(ev.card_id);
      if (row) rows.set(ev.card_id, { ...row, check: ev.check, flags: ev.flags ?? row.flags });
      return { ...state, seq: ev.seq, rows, version: state.version + 1 };
    }
    case 'card_reviewed': {
      // A person reviewed the card (here or in another window): the row
      // shows the reviewed values.
      if (ev.seq <= state.seq) return state;
      const rows = new Map(state.rows);
      const row = rows.get(ev.card_id);
      if (row) rows.set(ev.card_id, { ...row, review: ev.review, result: ev.values });
      return { ...state, seq: ev.seq, rows, version: state.version + 1 };
    }
    case 'state': {
      if (ev.seq <= state.seq) return state;
      let progress = state.progress && { ...state.progress, state: ev.to };
      let rows = state.rows;
      if (ev.retried) {
        // retry-failed queued every failed card again: they are pending now.
        rows = new Map(rows);
        for (const [id, row] of rows) if (row.state === 'failed') rows.set(id, { ...row, state: 'pending', error: null });
        if (progress && ev.seq > state.countedTo) {
          progress = { ...progress, failed: 0, percent: progress.total ? (100 * progress.done) / progress.total : 0 };
        }
      }
      return { ...state, seq: ev.seq, rows, progress, version: state.version + 1 };
    }
    default:
      return state;
  }
}

/** Counts moved by one card's outcome, until the next `progress` event. */
function countChange(p: Progress, before: string | undefined, after: string): Progress {
  const next = { ...p };
  if (before === 'failed') next.failed -= 1;
  if (before === 'done') next.done -= 1;
  if (after === 'done') next.done += 1;
  if (after === 'failed') next.failed += 1;
  const finished = next.done + next.failed;
  next.percent = next.total ? (100 * finished) / next.total : 0;
  return next;
}

export type SocketStatus = 'connecting' | 'live' | 'reconnecting' | 'closed';

/**
 * Watches a batch: connects with `since`, hands each event to `onEvent`,
 * and after a drop or a `reset` reconnects with the last seq it applied.
 * Returns a function that closes it for good.
 */
export function watch(
  batchId: string,
  lastSeq: () => number,
  onEvent: (ev: Event) => void,
  onStatus: (s: SocketStatus) => void,
): () => void {
  let socket: WebSocket | null = null;
  let closed = false;
  let delay = 250;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const connect = () => {
    if (closed) return;
    onStatus(socket ? 'reconnecting' : 'connecting');
    const ws = new WebSocket(eventsUrl(batchId, lastSeq()));
    socket = ws;
    ws.onopen = () => {
      delay = 250;
      onStatus('live');
    };
    ws.onmessage = (m) => {
      const ev = JSON.parse(m.data);
      if (ev.type === 'reset') {
        ws.close();
        return;
      }
      onEvent(ev);
    };
    ws.onclose = () => {
      if (closed) return;
      onStatus('reconnecting');
      timer = setTimeout(connect, delay);
      delay = Math.min(delay * 2, 5000);
    };
  };
  connect();
  return () => {
    closed = true;
    clearTimeout(timer);
    socket?.close();
    onStatus('closed');
  };
}
