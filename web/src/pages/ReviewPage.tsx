// The review workspace (DESIGN §12): one card at a time, its image large
// beside its fields, keyboard first. The machine's values never change; a
// correction is saved with the review, kept apart, and exported.
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import type { CardReview, Flag, QueueCard, QueueFilter, ReviewStatus, Side } from '../api/client';
import { ApiError, api, shortName } from '../api/client';
import { watch } from '../api/live';
import { ErrorNote, Link, useObjectUrl } from '../components/common';
import { FLAG_WORDS, reviewCounts } from '../components/words';

const FILTERS: { value: QueueFilter; label: string }[] = [
  { value: 'unreviewed', label: 'Not reviewed yet' },
  { value: 'needs_attention', label: 'Needs attention' },
  { value: 'flagged', label: 'Flagged' },
  { value: 'failed', label: 'Failed' },
  { value: 'all', label: 'All cards' },
];

const STATUS_WORDS: Record<ReviewStatus, string> = {
  unreviewed: 'not reviewed',
  verified: 'verified',
  needs_attention: 'needs attention',
};

/** A review as it was before one was recorded, to undo it. */
interface Undo {
  cardId: number;
  name: string;
  status: ReviewStatus;
  corrections: Record<string, unknown>;
  note: string;
}

/** A field's value as the form shows it: lists joined by `; `. */
export function asText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.join('; ');
  return String(v);
}

/** A typed-in value as sent: empty is "the card has none"; lists split on `;`. */
export function fromText(text: string, type: string): unknown {
  const t = text.trim();
  if (!t) return null;
  if (type === 'list') return t.split(';').map((s) => s.trim()).filter(Boolean);
  return t;
}

/**
 * The card's corrections once the form's edits are in: a field typed back
 * to the machine's value has no correction; one typed otherwise has one.
 */
export function correctionsWith(
  detail: Pick<CardReview, 'machine' | 'corrections' | 'values'>,
  draft: Record<string, string>,
  types: Record<string, string>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...detail.corrections };
  for (const [field, text] of Object.entries(draft)) {
    if (text === asText(detail.values[field])) continue;
    if (text.trim() === asText(detail.machine?.[field]).trim()) delete out[field];
    else out[field] = fromText(text, types[field] ?? 'text');
  }
  return out;
}

export function ReviewPage({ id }: { id: string }) {
  const client = useQueryClient();
  const batch = useQuery({ queryKey: ['batch', id], queryFn: () => api.batch(id) });
  const [filter, setFilter] = useState<QueueFilter>('unreviewed');
  const [list, setList] = useState<QueueCard[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [cardId, setCardId] = useState<number | null>(() => Number(new URLSearchParams(location.search).get('card')) || null);
  const [message, setMessage] = useState('');
  const [error, setError] = useState<unknown>(null);
  const undo = useRef<Undo[]>([]);
  const form = useRef<HTMLDivElement>(null);

  // The queue, a page at a time.
  useEffect(() => {
    let cancelled = false;
    setLoading(true);
    api
      .reviewQueue(id, filter)
      .then((page) => {
        if (cancelled) return;
        setList(page.cards);
        setNext(page.next ?? null);
        setCardId((c) => c ?? page.cards[0]?.card_id ?? null);
      })
      .catch(setError)
      .finally(() => !cancelled && setLoading(false));
    return () => {
      cancelled = true;
    };
  }, [id, filter]);
  const position = list.findIndex((c) => c.card_id === cardId);
  useEffect(() => {
    // Near the end of what is loaded: the next page.
    if (!next || position < list.length - 5) return;
    const after = next;
    let cancelled = false;
    setNext(null);
    api.reviewQueue(id, filter, after).then((page) => {
      // A page for a filter no longer shown is dropped.
      if (cancelled) return;
      setList((old) => [...old, ...page.cards.filter((c) => !old.some((o) => o.card_id === c.card_id))]);
      setNext(page.next ?? null);
    }, setError);
    return () => {
      cancelled = true;
    };
  }, [position, list.length, next, id, filter]);
  useEffect(() => {
    if (cardId !== null) history.replaceState(null, '', `/batches/${id}/review?card=${cardId}`);
  }, [id, cardId]);

  const detail = useQuery({
    queryKey: ['review-card', id, cardId],
    queryFn: () => api.reviewCard(id, cardId!),
    enabled: cardId !== null,
  });
  const nextId = list[position + 1]?.card_id ?? (position < 0 ? list[0]?.card_id : undefined);
  // The next card is fetched ahead, so moving on is instant.
  useEffect(() => {
    if (nextId === undefined) return;
    client.prefetchQuery({ queryKey: ['review-card', id, nextId], queryFn: () => api.reviewCard(id, nextId) });
    client.prefetchQuery({
      queryKey: ['card-preview', id, nextId],
      queryFn: () => api.cardPreview(id, nextId),
      staleTime: Infinity,
    });
  }, [client, id, nextId]);

  const fields = (batch.data?.fields ?? []).filter((f) => f.active ?? true);
  const types = Object.fromEntries(fields.map((f) => [f.name, f.type]));
  const [draft, setDraft] = useState<Record<string, string>>({});
  // The form is filled once per card and review as the server has it, so
  // typing is never overwritten, and a review from elsewhere shows. It is
  // filled before the browser paints the card, so no key can act on a new
  // card holding the last card's edits.
  const loadedFor = useRef<string | null>(null);
  useLayoutEffect(() => {
    const d = detail.data;
    const key = d ? `${d.card.id}@${d.review?.at ?? ''}` : null;
    if (!d || !batch.data || loadedFor.current === key) return;
    loadedFor.current = key;
    setDraft(Object.fromEntries(fields.map((f) => [f.name, asText(d.values[f.name])])));
  }, [detail.data, batch.data, fields]);
  const focused = useRef(false);
  useLayoutEffect(() => {
    // The first card shown takes the focus, so the keys work at once.
    if (detail.data && !focused.current) {
      focused.current = true;
      form.current?.focus();
    }
  }, [detail.data]);
  const dirty = !!detail.data && fields.some((f) => (draft[f.name] ?? '') !== asText(detail.data!.values[f.name]));

  const go = useCallback(
    (to: number | undefined) => {
      if (to === undefined) return;
      loadedFor.current = null;
      setCardId(to);
      form.current?.focus();
    },
    [],
  );

  const saving = useRef(false);
  // Our own reviews come back over the stream too: the card being saved,
  // and the times of the reviews saved here, tell them from others'.
  const savingCard = useRef<number | null>(null);
  const mine = useRef(new Set<string>());
  /** Records a review of the card shown; false when it could not be. */
  const record = useCallback(
    async (status: ReviewStatus, then: 'next' | 'stay'): Promise<boolean> => {
      const d = detail.data;
      if (!d || saving.current) return false;
      saving.current = true;
      setError(null);
      try {
        const corrections = correctionsWith(d, draft, types);
        savingCard.current = d.card.id;
        const saved = await api.review(id, d.card.id, { status, corrections });
        if (saved.review) mine.current.add(saved.review.at);
        undo.current.push({
          cardId: d.card.id,
          name: d.card.original_name,
          status: d.review?.status ?? 'unreviewed',
          corrections: d.corrections,
          note: d.review?.note ?? '',
        });
        client.setQueryData(['review-card', id, d.card.id], saved);
        setList((old) => old.map((c) => (c.card_id === d.card.id ? { ...c, status } : c)));
        client.invalidateQueries({ queryKey: ['batch', id] });
        const corrected = Object.keys(saved.corrections).length;
        setMessage(
          `${d.card.original_name}: ${STATUS_WORDS[status]}${corrected ? `, ${corrected} correction${corrected === 1 ? '' : 's'}` : ''}.`,
        );
        if (then === 'next') go(nextId);
        return true;
      } catch (e) {
        // The edits stay in the form, to be put right, starting with the
        // field the server refused.
        setError(e);
        if (e instanceof ApiError && e.field) document.getElementById(`review-${e.field}`)?.focus();
        return false;
      } finally {
        saving.current = false;
        savingCard.current = null;
      }
    },
    [client, detail.data, draft, go, id, nextId, types],
  );

  /** Moves on; edits not yet saved are saved first, the status kept. */
  const move = useCallback(
    async (to: number | undefined) => {
      if (to === undefined) return;
      if (dirty && detail.data && !(await record(detail.data.review?.status ?? 'unreviewed', 'stay'))) return;
      go(to);
    },
    [detail.data, dirty, go, record],
  );

  /** Saves the card's edits, if any, before something else is shown. */
  const saveEdits = useCallback(
    async () => !dirty || !detail.data || record(detail.data.review?.status ?? 'unreviewed', 'stay'),
    [detail.data, dirty, record],
  );
  useEffect(() => {
    if (!dirty) return;
    const warn = (e: BeforeUnloadEvent) => e.preventDefault();
    window.addEventListener('beforeunload', warn);
    return () => window.removeEventListener('beforeunload', warn);
  }, [dirty]);

  const undoLast = useCallback(async () => {
    if (!undo.current.length) {
      setMessage('Nothing to undo.');
      return;
    }
    if (!(await saveEdits())) return;
    const last = undo.current.pop()!;
    try {
      savingCard.current = last.cardId;
      const saved = await api.review(id, last.cardId, { status: last.status, corrections: last.corrections, note: last.note });
      savingCard.current = null;
      if (saved.review) mine.current.add(saved.review.at);
      client.setQueryData(['review-card', id, last.cardId], saved);
      setList((old) => old.map((c) => (c.card_id === last.cardId ? { ...c, status: last.status } : c)));
      client.invalidateQueries({ queryKey: ['batch', id] });
      setMessage(`Undone: ${last.name} is ${STATUS_WORDS[last.status]} again.`);
      go(last.cardId);
    } catch (e) {
      savingCard.current = null;
      setError(e);
    }
  }, [client, go, id, saveEdits]);

  const [zoom, setZoom] = useState({ scale: 1, x: 0, y: 0 });
  // A two-sided card shows one side at a time: the front first.
  const [side, setSide] = useState<Side>('front');
  // Before the next card is painted, so its back is never asked for first.
  useLayoutEffect(() => {
    setZoom({ scale: 1, x: 0, y: 0 });
    setSide('front');
  }, [cardId]);
  const twoSided = (detail.data?.card.images.length ?? 0) > 1;
  const zoomBy = useCallback(
    (f: number) => setZoom((z) => ({ ...z, scale: Math.min(8, Math.max(1, z.scale * f)) })),
    [],
  );

  // The keys, shown on the page. The handler is this render's, put in
  // place before the browser paints it (a layout effect), so a key pressed
  // as soon as a card shows acts on that card, never on the one before.
  const onKey = useRef<(e: KeyboardEvent) => void>(() => {});
  useLayoutEffect(() => {
    onKey.current = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      const typing = t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT';
      if (e.isComposing || e.altKey || e.ctrlKey || e.metaKey) return;
      if (e.key === 'Enter') {
        // Buttons, links, the filter and the open/close of Keys keep their own Enter.
        if (['BUTTON', 'A', 'SELECT', 'SUMMARY'].includes(t.tagName)) return;
        e.preventDefault();
        if (!e.repeat) record(e.shiftKey ? 'needs_attention' : 'verified', 'next');
      } else if (e.key === 'Escape') {
        if (detail.data) {
          setDraft(Object.fromEntries(fields.map((f) => [f.name, asText(detail.data!.values[f.name])])));
          setError(null);
          setMessage('Edits dropped.');
          form.current?.focus();
        }
      } else if (typing) {
        return;
      } else if (e.shiftKey && e.key.startsWith('Arrow')) {
        // Shift and the arrows move a zoomed image.
        e.preventDefault();
        const by = 80;
        const [dx, dy] = { ArrowLeft: [by, 0], ArrowRight: [-by, 0], ArrowUp: [0, by], ArrowDown: [0, -by] }[e.key] ?? [0, 0];
        setZoom((z) => (z.scale > 1 ? { ...z, x: z.x + dx, y: z.y + dy } : z));
      } else if (e.key === 'j' || e.key === 'ArrowDown' || e.key === 'ArrowRight') {
        e.preventDefault();
        move(nextId);
      } else if (e.key === 'k' || e.key === 'ArrowUp' || e.key === 'ArrowLeft') {
        e.preventDefault();
        move(list[position - 1]?.card_id);
      } else if (e.key === 'u') {
        undoLast();
      } else if (e.key === '+' || e.key === '=') {
        zoomBy(1.25);
      } else if (e.key === '-') {
        zoomBy(0.8);
      } else if (e.key === '0') {
        setZoom({ scale: 1, x: 0, y: 0 });
      } else if (e.key === 'f' && twoSided) {
        setSide((s) => (s === 'front' ? 'back' : 'front'));
        setZoom({ scale: 1, x: 0, y: 0 });
      }
    };
  });
  useEffect(() => {
    const listener = (e: KeyboardEvent) => onKey.current(e);
    window.addEventListener('keydown', listener);
    return () => window.removeEventListener('keydown', listener);
  }, []);

  // Reviews from other windows arrive live.
  const seq = useRef(0);
  const [lastSeq, setLastSeq] = useState<number | null>(null);
  useEffect(() => {
    if (batch.data && lastSeq === null) setLastSeq(batch.data.last_seq);
  }, [batch.data, lastSeq]);
  const current = useRef<{ id: number | null; at?: string; dirty: boolean }>({ id: null, dirty: false });
  current.current = { id: cardId, at: detail.data?.review?.at, dirty };
  useEffect(() => {
    if (lastSeq === null) return;
    seq.current = lastSeq;
    return watch(
      id,
      () => seq.current,
      (ev) => {
        if (typeof ev.seq === 'number' && ev.seq > seq.current) seq.current = ev.seq;
        if (ev.type !== 'card_reviewed') return;
        setList((old) => old.map((c) => (c.card_id === ev.card_id ? { ...c, status: ev.review.status } : c)));
        client.invalidateQueries({ queryKey: ['batch', id] });
        const here = current.current;
        const ours = ev.card_id === savingCard.current || mine.current.has(ev.review.at);
        if (ours) return;
        if (ev.card_id === here.id && ev.review.at !== here.at) {
          if (!here.dirty) client.invalidateQueries({ queryKey: ['review-card', id, ev.card_id] });
          setMessage(`This card was just reviewed elsewhere: ${STATUS_WORDS[ev.review.status as ReviewStatus]}.`);
        } else if (ev.card_id !== here.id) {
          client.invalidateQueries({ queryKey: ['review-card', id, ev.card_id] });
        }
      },
      () => {},
    );
  }, [client, id, lastSeq]);

  const b = batch.data;
  const d = detail.data;
  return (
    <div className="review">
      <section className="panel review-head">
        <div className="row">
          <h1>Review {b ? shortName(b.name) : ''}</h1>
          <span className="spacer" />
          {b && <Link to={`/batches/${id}`}>Back to the batch</Link>}
        </div>
        {b && <p data-testid="review-counts">{reviewCounts(b)}</p>}
        <div className="row">
          <div className="field">
            <label htmlFor="review-filter">Show</label>
            <select
              id="review-filter"
              value={filter}
              onChange={async (e) => {
                const to = e.target.value as QueueFilter;
                if (!(await saveEdits())) return;
                setCardId(null);
                setFilter(to);
              }}
            >
              {FILTERS.map((f) => (
                <option key={f.value} value={f.value}>
                  {f.label}
                </option>
              ))}
            </select>
          </div>
          <span className="muted">
            {position >= 0 ? `card ${position + 1} of ${list.length}${next ? '+' : ''} in this list` : loading ? 'Loading…' : `${list.length} in this list`}
          </span>
        </div>
        <p role="status" aria-live="polite" className="review-status">
          {message}
        </p>
        {/* A refused correction is shown under its field instead. */}
        <ErrorNote error={(error instanceof ApiError && error.field ? null : error) || detail.error || batch.error} />
      </section>
      {!loading && list.length === 0 && cardId === null ? (
        <section className="panel">
          <p>
            <strong>Nothing to review here.</strong> {filter === 'unreviewed' ? 'Every finished card has been reviewed.' : 'No card matches this filter.'}
          </p>
        </section>
      ) : (
        <div className="review-layout">
          <Viewer
            batchId={id}
            cardId={cardId}
            name={d?.card.original_name}
            zoom={zoom}
            setZoom={setZoom}
            zoomBy={zoomBy}
            side={twoSided ? side : null}
            setSide={(to) => (setSide(to), setZoom({ scale: 1, x: 0, y: 0 }))}
          />
          <section className="panel review-form" aria-labelledby="review-card-title">
            <div ref={form} tabIndex={-1} className="review-focus" role="group" aria-labelledby="review-card-title">
              <h2 id="review-card-title">
                {d ? d.card.images.map((i) => i.original_name).join(' + ') : 'Loading…'}{' '}
                {d && (
                  <span className="muted small" data-testid="review-state">
                    ({d.state}, {STATUS_WORDS[d.review?.status ?? 'unreviewed']})
                  </span>
                )}
              </h2>
              {d?.error?.message && <p className="error">This card failed: {d.error.message}. Type its values to transcribe it by hand.</p>}
              {d?.flags.filter((f) => !f.field).map((f, i) => <p key={i} className="flag-note">⚑ {flagWords(f)}</p>)}
              {d &&
                fields.map((f, i) => (
                  <FieldRow
                    key={f.name}
                    name={f.name}
                    description={f.description ?? ''}
                    detail={d}
                    value={draft[f.name] ?? ''}
                    onChange={(v) => setDraft((old) => ({ ...old, [f.name]: v }))}
                    first={i === 0}
                    refused={error instanceof ApiError && error.field === f.name ? error.message : undefined}
                  />
                ))}
              <div className="row actions">
                <button type="button" className="primary" onClick={() => record('verified', 'next')} disabled={!d} aria-keyshortcuts="Enter">
                  Verify and next <kbd>Enter</kbd>
                </button>
                <button type="button" onClick={() => record('needs_attention', 'next')} disabled={!d} aria-keyshortcuts="Shift+Enter">
                  Needs attention <kbd>Shift+Enter</kbd>
                </button>
                <button type="button" onClick={() => move(list[position - 1]?.card_id)} disabled={position <= 0} aria-keyshortcuts="k ArrowUp">
                  Previous <kbd>k</kbd>
                </button>
                <button type="button" onClick={() => move(nextId)} disabled={nextId === undefined} aria-keyshortcuts="j ArrowDown">
                  Next <kbd>j</kbd>
                </button>
                <button type="button" onClick={() => undoLast()} aria-keyshortcuts="u">
                  Undo <kbd>u</kbd>
                </button>
              </div>
              {dirty && <p className="muted small">Edited, not saved yet: saved with the review, or when you move on. Esc drops the edits.</p>}
            </div>
            <details className="keys" open>
              <summary>Keys</summary>
              <dl>
                <dt>Enter</dt>
                <dd>verify (with your corrections) and go to the next card</dd>
                <dt>Shift+Enter</dt>
                <dd>mark as needing attention and go on</dd>
                <dt>j / k, arrows</dt>
                <dd>next / previous card (edits are saved first)</dd>
                <dt>Tab</dt>
                <dd>between the fields</dd>
                <dt>Esc</dt>
                <dd>drop this card's unsaved edits</dd>
                <dt>u</dt>
                <dd>undo the last review</dd>
                <dt>f</dt>
                <dd>turn a two-sided card over (front, back)</dd>
                <dt>+ / − / 0, wheel</dt>
                <dd>zoom in, out, fit</dd>
                <dt>Shift+arrows, drag</dt>
                <dd>move the zoomed image</dd>
              </dl>
            </details>
            {d && d.history.length > 0 && (
              <details>
                <summary>History ({d.history.length})</summary>
                <ol className="small">
                  {d.history.map((h, i) => (
                    <li key={i}>
                      {new Date(h.at).toLocaleString()}: {STATUS_WORDS[h.status]}
                      {Object.keys(h.corrections).length ? `, corrected ${Object.keys(h.corrections).join(', ')}` : ''}
                      {h.note ? ` — “${h.note}”` : ''}
                    </li>
                  ))}
                </ol>
              </details>
            )}
          </section>
        </div>
      )}
    </div>
  );
}


/** A flag's reason in words (its kind where it gives none). */
function flagWords(f: Flag): string {
  return f.message || FLAG_WORDS[f.code] || f.code;
}

function FieldRow({
  name,
  description,
  detail,
  value,
  onChange,
  first,
  refused,
}: {
  name: string;
  description: string;
  detail: CardReview;
  value: string;
  onChange: (v: string) => void;
  first: boolean;
  /** Why the server refused this field's correction, until it is saved. */
  refused?: string;
}) {
  const machine = detail.machine?.[name];
  const corrected = name in detail.corrections;
  const confidence = detail.confidence[name];
  const flags = detail.flags.filter((f) => f.field === name);
  const hint = `review-${name}-hint`;
  return (
    <div className={`review-field${corrected ? ' corrected' : ''}${flags.length ? ' flagged' : ''}`}>
      <label htmlFor={`review-${name}`}>
        <strong>{name}</strong> {description && <span className="muted">— {description}</span>}
      </label>
      <input
        id={`review-${name}`}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        aria-describedby={refused ? `${hint}-refused ${hint}` : hint}
        aria-invalid={refused ? true : undefined}
        autoComplete="off"
        data-first={first || undefined}
      />
      {refused && (
        <p id={`${hint}-refused`} className="error small">
          Not saved: {refused}
        </p>
      )}
      <div id={hint} className="small muted">
        {detail.machine ? <>Machine read: “{asText(machine) || '(nothing)'}”</> : 'No machine reading.'}
        {typeof confidence === 'number' && <> · confidence {confidence.toFixed(2)}</>}
        {corrected && <strong className="corrected-tag"> · corrected</strong>}
        {flags.map((f, i) => (
          <span key={i} className="flag-note">
            {' '}
            · ⚑ {flagWords(f)}
          </span>
        ))}
      </div>
    </div>
  );
}

function Viewer({
  batchId,
  cardId,
  name,
  zoom,
  setZoom,
  zoomBy,
  side,
  setSide,
}: {
  batchId: string;
  cardId: number | null;
  name?: string;
  zoom: { scale: number; x: number; y: number };
  setZoom: React.Dispatch<React.SetStateAction<{ scale: number; x: number; y: number }>>;
  zoomBy: (f: number) => void;
  /** The side shown of a two-sided card; null for a card of one image. */
  side: Side | null;
  setSide: (side: Side) => void;
}) {
  const shown = side ?? 'front';
  const preview = useQuery({
    queryKey: side === 'back' ? ['card-preview', batchId, cardId, 'back'] : ['card-preview', batchId, cardId],
    queryFn: () => api.cardPreview(batchId, cardId!, shown),
    enabled: cardId !== null,
    staleTime: Infinity,
  });
  const url = useObjectUrl(preview.data);
  const drag = useRef<{ x: number; y: number } | null>(null);
  const frame = useRef<HTMLDivElement>(null);
  useEffect(() => {
    // Not passive, so the page does not scroll while the wheel zooms.
    const el = frame.current;
    if (!el) return;
    const onWheel = (e: WheelEvent) => {
      e.preventDefault();
      zoomBy(e.deltaY < 0 ? 1.2 : 1 / 1.2);
    };
    el.addEventListener('wheel', onWheel, { passive: false });
    return () => el.removeEventListener('wheel', onWheel);
  }, [zoomBy]);
  return (
    <section className="panel viewer" aria-label="The card's image">
      <div className="row">
        <button type="button" onClick={() => zoomBy(1.25)} aria-label="Zoom in">
          +
        </button>
        <button type="button" onClick={() => zoomBy(0.8)} aria-label="Zoom out">
          −
        </button>
        <button type="button" onClick={() => setZoom({ scale: 1, x: 0, y: 0 })}>
          Fit
        </button>
        <span className="muted small">{Math.round(zoom.scale * 100)}%</span>
        {side && (
          <div className="sides" role="group" aria-label="Side of the card" aria-keyshortcuts="f">
            {(['front', 'back'] as const).map((s) => (
              <button key={s} type="button" aria-pressed={side === s} onClick={() => setSide(s)}>
                {s === 'front' ? 'Front' : 'Back'}
              </button>
            ))}
          </div>
        )}
      </div>
      <div
        className="viewer-frame"
        ref={frame}
        onPointerDown={(e) => {
          drag.current = { x: e.clientX - zoom.x, y: e.clientY - zoom.y };
          (e.target as HTMLElement).setPointerCapture?.(e.pointerId);
        }}
        onPointerMove={(e) => {
          if (drag.current && zoom.scale > 1) setZoom((z) => ({ ...z, x: e.clientX - drag.current!.x, y: e.clientY - drag.current!.y }));
        }}
        onPointerUp={() => (drag.current = null)}
      >
        {url ? (
          <img
            src={url}
            alt={`${name ? `Card ${name}` : 'Card'}${side ? `, ${side}` : ''}`}
            draggable={false}
            style={{ transform: `translate(${zoom.x}px, ${zoom.y}px) scale(${zoom.scale})` }}
          />
        ) : preview.error ? (
          <ErrorNote error={preview.error} />
        ) : (
          <p className="muted">Loading the image…</p>
        )}
      </div>
    </section>
  );
}
