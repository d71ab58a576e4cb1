import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import type { Batch, Card, Field } from '../api/client';
import { api, shortName, uploadFile } from '../api/client';
import { navigate } from '../router';
import { ErrorNote, StateBadge, useObjectUrl } from '../components/common';
import { FieldsEditor } from '../components/FieldsEditor';
import { isValid } from '../components/fields';
import { BudgetForm, EstimateBox } from '../components/usage';
import { RunView } from './RunView';

export function BatchPage({ id }: { id: string }) {
  const batch = useQuery({ queryKey: ['batch', id], queryFn: () => api.batch(id) });
  const client = useQueryClient();
  const remove = useMutation({
    mutationFn: () => api.deleteBatch(id),
    onSuccess: () => {
      client.invalidateQueries({ queryKey: ['batches'] });
      navigate('/');
    },
  });
  if (batch.isPending) return <p>Loading…</p>;
  if (!batch.data) return <ErrorNote error={batch.error} />;
  const b = batch.data;
  return (
    <>
      <section className="panel head">
        <div>
          <h1>{shortName(b.name)}</h1>
          <p className="muted">
            <StateBadge state={b.state} /> <code>{b.name}</code> · engine <strong>{b.engine}</strong>
            {b.sides === 2 && <> · two-sided, paired by {b.pairing === 'order' ? 'upload order' : 'name'}</>}
          </p>
        </div>
        {b.state !== 'running' && (
          <button
            type="button"
            className="danger"
            onClick={() => {
              if (confirm(`Delete the batch “${shortName(b.name)}” with its images and results?`)) remove.mutate();
            }}
          >
            Delete batch
          </button>
        )}
      </section>
      <ErrorNote error={remove.error} />
      {b.state === 'open' ? <Setup batch={b} /> : <RunView batch={b} />}
    </>
  );
}

/** The steps before start: images, fields, verification. */
function Setup({ batch }: { batch: Batch }) {
  const [fields, setFields] = useState<Field[]>(batch.fields);
  const client = useQueryClient();
  const cards = useQuery({ queryKey: ['cards', batch.id], queryFn: () => api.cards(batch.id) });
  // The batch in the cache holds the fields as the server has them.
  const dirty = JSON.stringify(fields) !== JSON.stringify(batch.fields);
  const save = async () => {
    if (!dirty) return;
    const stored = await api.putFields(batch.id, fields);
    client.setQueryData<Batch>(['batch', batch.id], (old) => old && { ...old, fields: stored });
  };
  return (
    <>
      <section className="panel">
        <h2>1. Card images</h2>
        <Upload batch={batch} cards={cards.data ?? []} />
      </section>
      <section className="panel">
        <h2>2. Fields to extract</h2>
        <FieldsStep fields={fields} setFields={setFields} save={save} dirty={dirty} />
      </section>
      <section className="panel">
        <h2>3. Check and start</h2>
        <Verify batch={batch} fields={fields} cards={cards.data ?? []} save={save} />
      </section>
    </>
  );
}

interface UploadItem {
  key: string;
  name: string;
  progress: number;
  status: 'waiting' | 'sending' | 'splitting' | 'added' | 'refused';
  message?: string;
}

/** PDFs and TIFFs may hold many pages: each becomes a card as the server splits the file. */
const mayHavePages = (name: string) => /\.(pdf|tiff?)$/i.test(name);

/** How many pages of `file` are in the batch so far (as fronts or backs). */
function pagesOf(cards: Card[], file: string): number {
  const prefix = `${file} p. `;
  return cards.reduce((n, c) => n + c.images.filter((i) => i.original_name.startsWith(prefix)).length, 0);
}

/** Whether a file name ends in a side mark before its extension (the server's `side_of_name`). */
const SIDE_MARK = /(?:.[_\-. ](?:front|back|recto|verso)|.-[12]|.[ab])$/i;
const hasSideMark = (name: string) => SIDE_MARK.test(name.replace(/\.[^.]*$/, ''));

/** What a two-sided card still lacks, or null when it is complete (or the batch is one-sided). */
export function missingSide(card: Card, pairing?: Batch['pairing']): string | null {
  if (!card.side || card.images.length > 1) return null;
  if (pairing === 'name' && !hasSideMark(card.original_name)) {
    return 'no side mark in its name (_front/_back, _recto/_verso, a/b, -1/-2): nothing pairs with it';
  }
  return card.side === 'back' ? 'back only: its front is missing' : 'front only: its back is missing';
}

function Upload({ batch, cards }: { batch: Batch; cards: Card[] }) {
  const batchId = batch.id;
  const client = useQueryClient();
  const [items, setItems] = useState<UploadItem[]>([]);
  const [over, setOver] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const remove = useMutation({
    mutationFn: (cardId: number) => api.deleteCard(batchId, cardId),
    onSuccess: () => client.invalidateQueries({ queryKey: ['cards', batchId] }),
  });
  // While the server splits a PDF or TIFF, its pages appear in the card
  // list one by one: follow them.
  const splitting = items.some((it) => it.status === 'splitting');
  useEffect(() => {
    if (!splitting) return;
    const timer = setInterval(() => client.invalidateQueries({ queryKey: ['cards', batchId] }), 1000);
    return () => clearInterval(timer);
  }, [splitting, client, batchId]);

  // Paired by upload order, the order is the pairing: every choice of
  // files waits for the one before it, and goes one file at a time.
  const inOrder = batch.pairing === 'order';
  const queue = useRef<Promise<void>>(Promise.resolve());
  const [shifted, setShifted] = useState(false);
  const send = (chosen: File[]) => {
    if (!inOrder) return sendNow(chosen);
    queue.current = queue.current.then(() => sendNow(chosen));
    return queue.current;
  };
  const sendNow = async (chosen: File[]) => {
    // In name order (scanners number their files).
    const files = inOrder
      ? [...chosen].sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }))
      : chosen;
    const base = Date.now();
    const queued: UploadItem[] = files.map((f, i) => ({ key: `${base}-${i}`, name: f.name, progress: 0, status: 'waiting' }));
    setItems((old) => [...queued, ...old.filter((o) => o.status !== 'added')]);
    const update = (key: string, patch: Partial<UploadItem>) =>
      setItems((old) => old.map((o) => (o.key === key ? { ...o, ...patch } : o)));
    // A few at a time: each file gets its own request and its own report.
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        const i = next++;
        const { key, name } = queued[i];
        update(key, { status: 'sending' });
        try {
          const report = await uploadFile(batchId, files[i], (p) =>
            update(key, p >= 1 && mayHavePages(name) ? { progress: 1, status: 'splitting' } : { progress: p }),
          );
          const pages = report.accepted.some((c) => c.page != null);
          const refused = report.rejected.map((r) => `${r.original_name}: ${r.error.message}`);
          if (inOrder && report.rejected.length) setShifted(true);
          if (report.accepted.length) {
            const added = pages ? `${pagesOf(report.accepted, name)} pages added` : undefined;
            const notes = [added, ...refused].filter(Boolean).join(' · ');
            update(key, { status: 'added', progress: 1, message: notes || undefined });
          } else {
            update(key, { status: 'refused', message: refused[0] ?? 'refused' });
          }
        } catch (e) {
          if (inOrder) setShifted(true);
          update(key, { status: 'refused', message: e instanceof Error ? e.message : String(e) });
        }
        client.invalidateQueries({ queryKey: ['cards', batchId] });
      }
    };
    await Promise.all(inOrder ? [worker()] : [worker(), worker(), worker()]);
    client.invalidateQueries({ queryKey: ['batch', batchId] });
  };

  const incomplete = cards.filter((c) => missingSide(c) !== null).length;
  return (
    <>
      <div
        className={`dropzone ${over ? 'over' : ''}`}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => {
          e.preventDefault();
          setOver(false);
          send([...e.dataTransfer.files]);
        }}
      >
        <p>Drop scanned card images here (JPEG, PNG, TIFF, WebP, GIF), or PDFs and multi-page TIFFs: one card per page</p>
        {batch.pairing === 'name' && (
          <p className="muted small">
            Front and back pair by name: <code>0012_front.jpg</code> with <code>0012_back.jpg</code> (also{' '}
            <code>_recto</code>/<code>_verso</code>, <code>a</code>/<code>b</code>, <code>-1</code>/<code>-2</code>).
          </p>
        )}
        {batch.pairing === 'order' && (
          <p className="muted small">
            Front and back pair in upload order: each card's front, then its back (files are sent one at a time, in name
            order; a duplex PDF's pages in page order).
          </p>
        )}
        <button type="button" onClick={() => input.current?.click()}>
          Choose files…
        </button>
        <input
          ref={input}
          type="file"
          multiple
          accept="image/*,.tif,.tiff,.pdf,application/pdf"
          aria-label="Card images"
          hidden
          onChange={(e) => {
            send([...(e.target.files ?? [])]);
            e.target.value = '';
          }}
        />
      </div>
      {items.length > 0 && (
        <ul className="uploads" aria-label="Uploads">
          {items.map((it) => (
            <li key={it.key} className={it.status}>
              <span className="name">{it.name}</span>
              {it.status === 'refused' ? (
                <span className="error small">{it.message}</span>
              ) : it.status === 'splitting' ? (
                <span className="small" role="status">
                  splitting into cards: {pagesOf(cards, it.name)} pages so far…
                </span>
              ) : it.message ? (
                <span className="small">{it.message}</span>
              ) : (
                <progress max={1} value={it.progress} aria-label={`Upload of ${it.name}`} />
              )}
              <span className="muted small">{it.status}</span>
            </li>
          ))}
        </ul>
      )}
      {shifted && (
        <p className="warn" role="alert">
          An image was refused: paired by upload order, every pair after it may be off by one. Check the pairs below, and
          remove and upload again where a front went with the wrong back.
        </p>
      )}
      <p>
        <strong>{cards.length}</strong> card{cards.length === 1 ? '' : 's'} in this batch
        {incomplete > 0 && (
          <>
            , <strong className="warn">{incomplete}</strong> with one side only
          </>
        )}
        . You can add more until you start.
      </p>
      {cards.length > 0 && (
        <ul className="cards" aria-label="Cards in the batch">
          {cards.map((c) => {
            const missing = missingSide(c, batch.pairing);
            return (
              <li key={c.id} className={missing ? 'unpaired' : undefined}>
                <span className="name">{c.images.map((i) => i.original_name).join(' + ')}</span>
                <span className="muted small">
                  {missing ? (
                    <span className="warn">{missing}</span>
                  ) : (
                    c.images.map((i) => `${i.width}×${i.height} · ${(i.size_bytes / 1024).toFixed(0)} KB`).join(' + ')
                  )}
                </span>
                <button type="button" aria-label={`Remove ${c.original_name}`} onClick={() => remove.mutate(c.id)}>
                  Remove
                </button>
              </li>
            );
          })}
        </ul>
      )}
      <ErrorNote error={remove.error} />
    </>
  );
}

function FieldsStep({
  fields,
  setFields,
  save,
  dirty,
}: {
  fields: Field[];
  setFields: (f: Field[]) => void;
  save: () => Promise<void>;
  dirty: boolean;
}) {
  const client = useQueryClient();
  const templates = useQuery({ queryKey: ['templates'], queryFn: api.templates });
  const [templateName, setTemplateName] = useState('');
  const [message, setMessage] = useState<string | null>(null);
  const saveFields = useMutation({ mutationFn: save, onSuccess: () => setMessage('Fields saved.') });
  const saveTemplate = useMutation({
    mutationFn: () => api.createTemplate(templateName.trim(), fields),
    onSuccess: (t) => {
      client.invalidateQueries({ queryKey: ['templates'] });
      setMessage(`Saved as template “${t.name}”.`);
      setTemplateName('');
    },
  });
  return (
    <>
      <FieldsEditor fields={fields} onChange={(f) => (setFields(f), setMessage(null))} />
      <div className="row actions">
        <button type="button" className="primary" disabled={!dirty || !isValid(fields)} onClick={() => saveFields.mutate()}>
          {dirty ? 'Save fields' : 'Fields saved'}
        </button>
        <div className="field">
          <label htmlFor="load-template">Load a template</label>
          <select
            id="load-template"
            value=""
            onChange={(e) => {
              const t = templates.data?.find((x) => x.id === e.target.value);
              if (t) setFields(t.fields);
            }}
          >
            <option value="">Choose…</option>
            {templates.data?.map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
              </option>
            ))}
          </select>
        </div>
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            saveTemplate.mutate();
          }}
        >
          <div className="field">
            <label htmlFor="template-name">Save as template</label>
            <input id="template-name" placeholder="Template name" value={templateName} onChange={(e) => setTemplateName(e.target.value)} />
          </div>
          <button type="submit" disabled={!templateName.trim() || fields.length === 0 || !isValid(fields)}>
            Save template
          </button>
        </form>
      </div>
      {message && <p className="ok" role="status">{message}</p>}
      <ErrorNote error={saveFields.error || saveTemplate.error} />
    </>
  );
}

function Verify({ batch, fields, cards, save }: { batch: Batch; fields: Field[]; cards: Card[]; save: () => Promise<void> }) {
  const client = useQueryClient();
  const active = fields.filter((f) => f.active ?? true);
  const valid = isValid(fields);
  const prompt = useQuery({
    queryKey: ['prompt-preview', JSON.stringify(fields), batch.sides],
    queryFn: () => api.previewPrompt(fields, batch.sides),
    enabled: valid && fields.length > 0,
  });
  const [cardId, setCardId] = useState<number | undefined>();
  // The picked card, or the first while none is picked (or it was removed).
  const chosen = cards.some((c) => c.id === cardId) ? cardId : cards[0]?.id;
  const test = useMutation({
    mutationFn: async () => {
      await save();
      return api.test(batch.id, chosen);
    },
  });
  const incomplete = cards.filter((c) => missingSide(c) !== null).length;
  const [acceptSingles, setAcceptSingles] = useState(false);
  const start = useMutation({
    mutationFn: async () => {
      await save();
      return api.start(batch.id, acceptSingles);
    },
    onSuccess: (b) => {
      client.setQueryData(['batch', batch.id], b);
      client.invalidateQueries({ queryKey: ['batches'] });
    },
  });
  useEffect(() => test.reset(), [chosen]); // eslint-disable-line react-hooks/exhaustive-deps
  const blocker =
    cards.length === 0
      ? 'Add at least one card image.'
      : active.length === 0
        ? 'Make at least one field active.'
        : !valid
          ? 'Fix the fields marked above.'
          : null;
  const startBlocker =
    blocker ?? (incomplete > 0 && !acceptSingles ? `${incomplete} card${incomplete === 1 ? ' has' : 's have'} one side only.` : null);
  const card = cards.find((c) => c.id === chosen);
  const preview = useQuery({
    // A two-sided card's front can change while the batch is open (a
    // front that arrives after its back): the key names the image.
    queryKey: ['card-preview', batch.id, chosen, card?.images[0].sha256],
    queryFn: () => api.cardPreview(batch.id, chosen!),
    enabled: chosen !== undefined,
    staleTime: Infinity,
  });
  const image = useObjectUrl(preview.data);
  const hasBack = (card?.images.length ?? 0) > 1;
  const backPreview = useQuery({
    queryKey: ['card-preview', batch.id, chosen, 'back', card?.images[1]?.sha256],
    queryFn: () => api.cardPreview(batch.id, chosen!, 'back'),
    enabled: chosen !== undefined && hasBack,
    staleTime: Infinity,
  });
  const backImage = useObjectUrl(backPreview.data);
  return (
    <>
      <details open>
        <summary>The prompt and JSON Schema sent with every card</summary>
        <ErrorNote error={prompt.error} />
        {prompt.data ? (
          <div className="prompt">
            <h3>System</h3>
            <pre>{prompt.data.system}</pre>
            <h3>User</h3>
            <pre>{prompt.data.user}</pre>
            <h3>JSON Schema</h3>
            <pre>{JSON.stringify(prompt.data.json_schema, null, 2)}</pre>
          </div>
        ) : (
          <p className="muted">Add a valid field to see the prompt.</p>
        )}
      </details>
      <div className="test">
        <div className="row">
          <div className="field">
            <label htmlFor="test-card">Card to test</label>
            <select id="test-card" value={chosen ?? ''} onChange={(e) => setCardId(Number(e.target.value))} disabled={cards.length === 0}>
              {cards.map((c) => (
                <option key={c.id} value={c.id}>
                  {c.images.map((i) => i.original_name).join(' + ')}
                </option>
              ))}
            </select>
          </div>
          <button type="button" disabled={!!blocker || test.isPending} onClick={() => test.mutate()}>
            {test.isPending ? 'Testing…' : 'Test one card'}
          </button>
        </div>
        <ErrorNote error={test.error} />
        {card && (
          <div className="side-by-side">
            <div>
              {hasBack && <h3>Front</h3>}
              {image ? (
                <img src={image} alt={`Card ${card.original_name}${hasBack ? ', front' : ''}`} />
              ) : preview.error ? (
                <ErrorNote error={preview.error} />
              ) : (
                <p className="muted">Loading the image…</p>
              )}
              {hasBack && (
                <>
                  <h3>Back</h3>
                  {backImage ? (
                    <img src={backImage} alt={`Card ${card.original_name}, back`} />
                  ) : backPreview.error ? (
                    <ErrorNote error={backPreview.error} />
                  ) : (
                    <p className="muted">Loading the image…</p>
                  )}
                </>
              )}
              <p className="muted small">
                As the model receives {hasBack ? 'them, front then back, in one request' : 'it'}: upright, first page, scaled.
              </p>
            </div>
            {test.data ? (
              <div>
                <h3>Extracted from {test.data.original_name}</h3>
                <pre data-testid="test-result">{JSON.stringify(test.data.result, null, 2)}</pre>
                <p className="muted small">
                  {test.data.total_ms} ms, {test.data.attempts} attempt{test.data.attempts === 1 ? '' : 's'}
                </p>
              </div>
            ) : (
              <p className="muted">Test this card to see what the model extracts from it, before starting the batch.</p>
            )}
          </div>
        )}
      </div>
      <EstimateBox batch={batch} disabled={!!blocker} prepare={save} />
      <details className="budget-box">
        <summary>Budget (optional): stop when the batch has used so many tokens or dollars</summary>
        <BudgetForm batch={batch} />
        <p className="muted small">
          The batch pauses at either bound; the cards being read then finish and are kept. Raise the budget and resume
          to go on.
        </p>
      </details>
      {incomplete > 0 && (
        <label className="check">
          <input type="checkbox" checked={acceptSingles} onChange={(e) => setAcceptSingles(e.target.checked)} /> Read the{' '}
          {incomplete} card{incomplete === 1 ? '' : 's'} with one side only as {incomplete === 1 ? 'it is' : 'they are'}
        </label>
      )}
      <div className="row actions">
        <button type="button" className="primary big" disabled={!!startBlocker || start.isPending} onClick={() => start.mutate()}>
          Start processing {cards.length} card{cards.length === 1 ? '' : 's'}
        </button>
        {startBlocker && <span className="muted">{startBlocker}</span>}
      </div>
      <p className="muted small">Starting locks the batch: no more images or field changes.</p>
      <ErrorNote error={start.error} />
    </>
  );
}
