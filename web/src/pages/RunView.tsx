import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useRef, useState } from 'react';
import type { Batch, Flag, FlagCode, Quality, ResultRow } from '../api/client';
import { api, downloadResults } from '../api/client';
import type { LiveState, SocketStatus } from '../api/live';
import { applyEvent, emptyLive, watch, withRows } from '../api/live';
import { ErrorNote, formatEta, Link, ProgressBar } from '../components/common';
import { UsagePanel } from '../components/usage';
import { FLAG_WORDS, reviewCounts } from '../components/words';

/**
 * Follows a started batch: the rows so far from the results export, then
 * the progress stream from the seq that export was taken at. Reloading the
 * page does the same again, so no row is lost and none shows twice.
 */
function useLive(batchId: string): { live: LiveState; status: SocketStatus; error: unknown } {
  const client = useQueryClient();
  const [live, setLive] = useState<LiveState>(() => emptyLive());
  const [status, setStatus] = useState<SocketStatus>('connecting');
  const [error, setError] = useState<unknown>(null);
  const seq = useRef(0);
  useEffect(() => {
    let stop: (() => void) | undefined;
    let cancelled = false;
    (async () => {
      try {
        const b = await api.batch(batchId);
        const rows = await api.results(batchId);
        if (cancelled) return;
        let state = withRows(emptyLive(b.last_seq), rows);
        seq.current = state.seq;
        setLive(state);
        stop = watch(
          batchId,
          () => seq.current,
          (ev) => {
            state = applyEvent(state, ev);
            seq.current = state.seq;
            setLive(state);
            if (ev.type === 'snapshot' || ev.type === 'progress' || ev.type === 'state') {
              // The socket feeds the query cache: the page header and the
              // batches list show the same state and counts.
              client.setQueryData<Batch>(['batch', batchId], (old) =>
                old && state.progress
                  ? {
                      ...old,
                      state: state.progress.state,
                      percent: state.progress.percent,
                      last_seq: state.seq,
                      counts: { ...old.counts, done: state.progress.done, failed: state.progress.failed, total: state.progress.total },
                      usage: state.progress.usage ?? old.usage,
                    }
                  : old,
              );
              if (ev.type === 'state') {
                client.invalidateQueries({ queryKey: ['batches'] });
                // Why it paused, and its budget, come with the batch.
                client.invalidateQueries({ queryKey: ['batch', batchId] });
              }
            }
          },
          setStatus,
        );
      } catch (e) {
        setError(e);
      }
    })();
    return () => {
      cancelled = true;
      stop?.();
    };
  }, [batchId, client]);
  return { live, status, error };
}

export function RunView({ batch }: { batch: Batch }) {
  const client = useQueryClient();
  const { live, status, error } = useLive(batch.id);
  const p = live.progress;
  const state = p?.state ?? batch.state;
  const failed = p?.failed ?? batch.counts.failed;
  const errors = useQuery({
    queryKey: ['errors', batch.id, failed],
    queryFn: () => api.errors(batch.id),
    enabled: failed > 0,
  });
  const control = useMutation({
    mutationFn: (action: 'pause' | 'resume' | 'cancel' | 'retryFailed') => api[action](batch.id),
    onSuccess: (b) => client.setQueryData(['batch', batch.id], b),
  });
  const exporting = useMutation({ mutationFn: (f: 'csv' | 'json' | 'jsonl' | 'xlsx') => downloadResults(batch, f) });
  const columns = batch.fields.filter((f) => f.active ?? true).map((f) => f.name);
  const percent = p?.percent ?? batch.percent;
  const done = p?.done ?? batch.counts.done;
  // The summary is read again as cards land (every 25), when the state
  // changes, and every few seconds while cross-checks are still to come.
  const quality = useQuery({
    queryKey: ['quality', batch.id, state, Math.floor(done / 25)],
    queryFn: () => api.batch(batch.id).then((b) => b.quality ?? null),
    refetchInterval: (q) => (q.state.data?.checks_pending ? 3000 : false),
  });
  const [flaggedOnly, setFlaggedOnly] = useState(false);
  return (
    <>
      <section className="panel">
        <h2>Progress</h2>
        <ProgressBar percent={percent} label="Batch progress" />
        <dl className="stats">
          <div>
            <dt>Done</dt>
            <dd data-testid="percent">{Math.floor(percent)}%</dd>
          </div>
          <div>
            <dt>Position</dt>
            <dd data-testid="position">{p?.position ?? '—'}</dd>
          </div>
          <div>
            <dt>Cards</dt>
            <dd data-testid="counts">
              {p?.done ?? batch.counts.done} done · {failed} failed · {p?.total ?? batch.counts.total} total
            </dd>
          </div>
          <div>
            <dt>Time left</dt>
            <dd>{state === 'running' ? formatEta(p?.eta_seconds) : '—'}</dd>
          </div>
          <div>
            <dt>Speed</dt>
            <dd>{p?.cards_per_minute ? `${Math.round(p.cards_per_minute)} cards/min` : '—'}</dd>
          </div>
          <div>
            <dt>Live</dt>
            <dd className={`socket ${status}`}>{status}</dd>
          </div>
        </dl>
        {batch.pause_reason && state === 'paused' && <p className="error">Paused: {batch.pause_reason}</p>}
        <div className="row actions">
          {state === 'running' && (
            <button type="button" onClick={() => control.mutate('pause')}>
              Pause
            </button>
          )}
          {state === 'paused' && (
            <button type="button" className="primary" onClick={() => control.mutate('resume')}>
              Resume
            </button>
          )}
          {(state === 'running' || state === 'paused') && (
            <button
              type="button"
              className="danger"
              onClick={() => confirm('Cancel this batch? Cards not yet read stay unread.') && control.mutate('cancel')}
            >
              Cancel
            </button>
          )}
          {done + failed > 0 && (
            <span className="review-link">
              <Link to={`/batches/${batch.id}/review`} className="button">
                Review
              </Link>{' '}
              <span className="muted small" data-testid="review-summary">
                {reviewCounts(batch, quality.data?.flagged_cards)}
              </span>
            </span>
          )}
          <span className="spacer" />
          <span className="muted">Export:</span>
          <button type="button" onClick={() => exporting.mutate('csv')}>
            CSV
          </button>
          <button type="button" onClick={() => exporting.mutate('json')}>
            JSON
          </button>
          <button type="button" onClick={() => exporting.mutate('jsonl')}>
            JSONL
          </button>
          <button type="button" onClick={() => exporting.mutate('xlsx')}>
            XLSX
          </button>
        </div>
        <ErrorNote error={error || control.error || exporting.error} />
      </section>
      {quality.data && done > 0 && (
        <QualityPanel quality={quality.data} done={done} onShowFlagged={() => setFlaggedOnly(true)} />
      )}
      <UsagePanel batch={batch} usage={p?.usage ?? batch.usage} />
      <section className="panel" id="results">
        <div className="row">
          <h2>
            Results <span className="muted small">({live.rows.size} rows)</span>
          </h2>
          <span className="spacer" />
          <label className="toggle">
            <input type="checkbox" checked={flaggedOnly} onChange={(e) => setFlaggedOnly(e.target.checked)} /> Flagged cards
            only
          </label>
        </div>
        <ResultsTable batchId={batch.id} rows={live.rows} version={live.version} columns={columns} flaggedOnly={flaggedOnly} />
      </section>
      {failed > 0 && (
        <section className="panel">
          <div className="row">
            <h2>Failed cards ({failed})</h2>
            <span className="spacer" />
            <button type="button" className="primary" disabled={state === 'running'} onClick={() => control.mutate('retryFailed')}>
              Retry failed cards
            </button>
          </div>
          <p className="muted small">Their images are in the batch's _errors folder, each with the reason beside it.</p>
          <ul className="failures" aria-label="Failed cards">
            {errors.data?.map((e) => (
              <li key={e.card_id}>
                <strong>{e.original_name}</strong>: {e.error?.message ?? 'failed'}{' '}
                <span className="muted small">
                  ({e.error?.code}, {e.attempts} attempt{e.attempts === 1 ? '' : 's'})
                </span>
              </li>
            ))}
          </ul>
        </section>
      )}
    </>
  );
}

const ROW_HEIGHT = 32;

/** How good the results look: flagged and empty cards, how often each field was found and how sure the engine was. */
function QualityPanel({ quality, done, onShowFlagged }: { quality: Quality; done: number; onShowFlagged: () => void }) {
  return (
    <section className="panel" aria-labelledby="quality-title">
      <h2 id="quality-title">Quality</h2>
      {quality.warning && (
        <p className="warning" role="alert">
          <strong>Check these cards:</strong> {quality.warning}
        </p>
      )}
      <p>
        {quality.flagged_cards > 0 ? (
          <a
            href="#results"
            onClick={(e) => {
              e.preventDefault();
              onShowFlagged();
              document.getElementById('results')?.scrollIntoView();
            }}
          >
            {quality.flagged_cards.toLocaleString()} of {done.toLocaleString()} cards flagged for a look
          </a>
        ) : (
          <span>No card flagged</span>
        )}
        {' · '}
        {quality.empty_cards.toLocaleString()} empty
      </p>
      {Object.keys(quality.flags).length > 0 && (
        <ul className="flag-counts" aria-label="Flags by kind">
          {Object.entries(quality.flags).map(([code, cards]) => (
            <li key={code}>
              {cards.toLocaleString()} {cards === 1 ? 'card' : 'cards'}: {FLAG_WORDS[code as FlagCode] ?? code}
            </li>
          ))}
        </ul>
      )}
      {quality.checks_pending > 0 && (
        <p className="muted" role="status">
          Cross-checking the model's values against each card's own text: {quality.checks_pending.toLocaleString()}{' '}
          {quality.checks_pending === 1 ? 'card' : 'cards'} to go. Values not written on the card will be flagged as they are found.
        </p>
      )}
      {quality.checks_skipped > 0 && (
        <p className="muted">
          {quality.checks_skipped === 1
            ? '1 card was not cross-checked: OCR could not read it well enough (handwriting or a poor scan) — check it by eye.'
            : `${quality.checks_skipped.toLocaleString()} cards were not cross-checked: OCR could not read them well enough (handwriting or a poor scan) — check those by eye.`}
        </p>
      )}
      <table className="list quality" aria-label="Fields found">
        <thead>
          <tr>
            <th>Field</th>
            <th>Found on</th>
            <th>Mean confidence</th>
          </tr>
        </thead>
        <tbody>
          {Object.entries(quality.fill_rate).map(([field, rate]) => {
            const confidence = quality.mean_confidence[field];
            return (
              <tr key={field}>
                <td>{field}</td>
                <td>
                  <div className="progress-cell">
                    <div className="bar" aria-hidden="true">
                      <div className="fill" style={{ width: `${rate * 100}%` }} />
                    </div>
                    <span>{Math.round(rate * 100)}% of cards</span>
                  </div>
                </td>
                <td>{confidence == null ? <span className="muted">not given by the engine</span> : confidence.toFixed(2)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}


/** Words for a field's flags, for its cell's tooltip. */
function flagText(flags: Flag[]): string {
  return flags.map((f) => f.message).join('; ');
}

/** Values under this confidence are marked as unsure, as the server flags them. */
const LOW_CONFIDENCE = 0.6;

/** The results so far; only the rows in view are in the page (10,000 rows stay fast). */
function ResultsTable({
  batchId,
  rows,
  version,
  columns,
  flaggedOnly,
}: {
  batchId: string;
  rows: Map<number, ResultRow>;
  version: number;
  columns: string[];
  flaggedOnly: boolean;
}) {
  const parent = useRef<HTMLDivElement>(null);
  const list = useRef<ResultRow[]>([]);
  const listVersion = useRef('');
  const key = `${version}:${flaggedOnly}`;
  if (listVersion.current !== key) {
    const all = [...rows.values()];
    list.current = flaggedOnly ? all.filter((r) => (r.flags?.length ?? 0) > 0) : all;
    listVersion.current = key;
  }
  const items = list.current;
  const virtual = useVirtualizer({
    count: items.length,
    getScrollElement: () => parent.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 10,
  });
  const template = `4rem minmax(10rem, 1.5fr) 6rem ${columns.map(() => 'minmax(8rem, 1fr)').join(' ')} minmax(8rem, 1fr)`;
  return (
    <div className="results" role="table" aria-label="Results" aria-rowcount={items.length + 1}>
      <div className="results-row header" role="row" style={{ gridTemplateColumns: template }}>
        <span role="columnheader">Card</span>
        <span role="columnheader">File</span>
        <span role="columnheader">State</span>
        {columns.map((c) => (
          <span role="columnheader" key={c}>
            {c}
          </span>
        ))}
        <span role="columnheader">Error</span>
      </div>
      <div ref={parent} className="results-body">
        {items.length === 0 && <p className="muted pad">No cards finished yet; rows appear here as they are read.</p>}
        <div style={{ height: virtual.getTotalSize(), position: 'relative' }}>
          {virtual.getVirtualItems().map((v) => {
            const r = items[v.index];
            return (
              <div
                key={r.card_id}
                role="row"
                data-testid="result-row"
                className={`results-row ${r.state}`}
                style={{ gridTemplateColumns: template, position: 'absolute', top: 0, left: 0, right: 0, height: ROW_HEIGHT, transform: `translateY(${v.start}px)` }}
              >
                <span role="cell">{r.card_id}</span>
                <span role="cell" title={r.original_name}>
                  {r.state === 'done' || r.state === 'failed' ? (
                    <Link to={`/batches/${batchId}/review?card=${r.card_id}`}>{r.original_name}</Link>
                  ) : (
                    r.original_name
                  )}
                </span>
                <RowState row={r} />
                {columns.map((c) => {
                  const flags = (r.flags ?? []).filter((f) => f.field === c);
                  const confidence = r.confidence?.[c];
                  const unsure = typeof confidence === 'number' && confidence < LOW_CONFIDENCE;
                  const value = show(r.result?.[c]);
                  const why = [flagText(flags), typeof confidence === 'number' ? `confidence ${confidence.toFixed(2)}` : '']
                    .filter(Boolean)
                    .join(' — ');
                  return (
                    <span
                      role="cell"
                      key={c}
                      className={flags.length > 0 ? 'flagged' : unsure ? 'unsure' : undefined}
                      title={why ? `${value} (${why})` : value}
                    >
                      {flags.length > 0 && <span aria-label="flagged: ">⚑ </span>}
                      {value}
                      {flags.length === 0 && unsure && <span className="sr-only"> (unsure)</span>}
                    </span>
                  );
                })}
                <span role="cell" title={r.error?.message ?? ''}>
                  {r.error?.message ?? ''}
                </span>
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}

/** The card's state, with its row-wide flags (empty, cut-off answer) in words. */
function RowState({ row }: { row: ResultRow }) {
  const flags = (row.flags ?? []).filter((f) => !f.field);
  const reviewed = row.review?.status === 'verified' ? ' ✓ verified' : row.review?.status === 'needs_attention' ? ' · needs attention' : '';
  if (flags.length === 0 || reviewed)
    return (
      <span role="cell" title={flags.length ? flagText(flags) : undefined}>
        {row.state}
        {reviewed}
      </span>
    );
  const label = flags[0].code === 'empty' ? 'empty' : 'check';
  return (
    <span role="cell" className="flagged" title={flagText(flags)}>
      ⚑ {label}
    </span>
  );
}

function show(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.join(', ');
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}
