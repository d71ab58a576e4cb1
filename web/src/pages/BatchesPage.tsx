import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, shortName, type Batch, type Pairing } from '../api/client';
import { navigate } from '../router';
import { ErrorNote, formatDate, Link, ProgressBar, StateBadge } from '../components/common';
import { formatCost, formatTokens } from '../components/usage';

/** The batches list, newest first, and the form that starts a new one. */
export function BatchesPage() {
  const batches = useQuery({
    queryKey: ['batches'],
    queryFn: api.batches,
    // Running batches move; the list follows them without a socket each.
    refetchInterval: (q) => (q.state.data?.some((b) => b.state === 'running') ? 2000 : false),
  });
  return (
    <>
      <NewBatch />
      <section className="panel">
        <h1>Batches</h1>
        <ErrorNote error={batches.error} />
        {batches.isPending ? (
          <p>Loading…</p>
        ) : batches.data && batches.data.length === 0 ? (
          <div className="empty">
            <p>
              <strong>No batches yet.</strong> A batch is one box of cards: give it a name above and press
              <em> Create batch</em>, then add the scanned images, say which fields to read from each card, and
              start.
            </p>
          </div>
        ) : (
          <table className="list">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">State</th>
                <th scope="col">Progress</th>
                <th scope="col">Done / failed / total</th>
                <th scope="col">Tokens · cost</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {batches.data?.map((b) => (
                <tr key={b.id}>
                  <td>
                    <Link to={`/batches/${b.id}`}>{shortName(b.name)}</Link>
                  </td>
                  <td>
                    <StateBadge state={b.state} />
                  </td>
                  <td className="progress-cell">
                    <ProgressBar percent={b.percent} label={`Progress of ${shortName(b.name)}`} />
                    <span className="muted">{Math.floor(b.percent)}%</span>
                  </td>
                  <td>
                    {b.counts.done} / {b.counts.failed} / {b.counts.total}
                  </td>
                  <td>{usageCell(b)}</td>
                  <td>{formatDate(b.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}

/** "1.3 M · $0.41", "1.3 M tokens", "—" before any card was read. */
function usageCell(b: Batch): string {
  const u = b.usage;
  if (u.requests === 0) return '—';
  if (b.engine !== 'vlm') return 'OCR, no tokens';
  const tokens = `${formatTokens(u.total_tokens)} tokens`;
  return u.cost != null ? `${tokens} · ${formatCost(u.cost)}` : tokens;
}

/** Names of common Tesseract language codes. */
const LANGUAGE_NAMES: Record<string, string> = {
  eng: 'English',
  deu: 'German',
  fra: 'French',
  ita: 'Italian',
  spa: 'Spanish',
  nld: 'Dutch',
  lat: 'Latin',
  por: 'Portuguese',
  dan: 'Danish',
  swe: 'Swedish',
};

/** The OCR language choices: each installed language, and each with English for mixed cards. */
function languageOptions(languages: string[]): { value: string; label: string }[] {
  const name = (l: string) => LANGUAGE_NAMES[l] ?? l;
  const single = languages.map((l) => ({ value: l, label: name(l) }));
  const mixed = languages.includes('eng')
    ? languages.filter((l) => l !== 'eng').map((l) => ({ value: `${l}+eng`, label: `${name(l)} and English` }))
    : [];
  return [...single, ...mixed];
}

function NewBatch() {
  const client = useQueryClient();
  const [name, setName] = useState('');
  const [template, setTemplate] = useState('');
  const [ocrLang, setOcrLang] = useState('');
  const [sides, setSides] = useState<'' | Pairing>('');
  const templates = useQuery({ queryKey: ['templates'], queryFn: api.templates });
  const engines = useQuery({ queryKey: ['engines'], queryFn: api.engines });
  const ocr = engines.data?.find((e) => e.name === 'ocr' && e.available);
  const create = useMutation({
    mutationFn: () =>
      api.createBatch(name.trim(), { templateId: template || undefined, ocrLang: ocrLang || undefined, pairing: sides || undefined }),
    onSuccess: (b) => {
      client.invalidateQueries({ queryKey: ['batches'] });
      navigate(`/batches/${b.id}`);
    },
  });
  return (
    <section className="panel">
      <h2>New batch</h2>
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <div className="field">
          <label htmlFor="batch-name">Batch name</label>
          <input
            id="batch-name"
            placeholder="e.g. Hemingway letters, box 3"
            value={name}
            onChange={(e) => setName(e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor="batch-template">Fields</label>
          <select id="batch-template" value={template} onChange={(e) => setTemplate(e.target.value)}>
            <option value="">Blank (define fields next)</option>
            {templates.data?.map((t) => (
              <option key={t.id} value={t.id}>
                From template: {t.name}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="batch-sides">Sides</label>
          <select id="batch-sides" value={sides} onChange={(e) => setSides(e.target.value as '' | Pairing)}>
            <option value="">One image per card</option>
            <option value="name">Front and back, paired by name (_front/_back, a/b, -1/-2)</option>
            <option value="order">Front and back, in upload order (duplex scans)</option>
          </select>
        </div>
        {ocr && (
          <div className="field">
            <label htmlFor="batch-ocr-lang">Language on the cards (OCR)</label>
            <select id="batch-ocr-lang" value={ocrLang} onChange={(e) => setOcrLang(e.target.value)}>
              <option value="">Server default ({ocr.default_language})</option>
              {languageOptions(ocr.languages).map((o) => (
                <option key={o.value} value={o.value}>
                  {o.label}
                </option>
              ))}
            </select>
          </div>
        )}
        <button type="submit" className="primary" disabled={!name.trim() || create.isPending}>
          Create batch
        </button>
      </form>
      <ErrorNote error={create.error} />
    </section>
  );
}
