import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import type { Field, Template } from '../api/client';
import { api, getToken, setToken } from '../api/client';
import { ErrorNote } from '../App';
import { formatDate } from './common';
import { FieldsEditor } from './FieldsEditor';
import { isValid } from './fields';

/** Saved field lists: create, edit, delete. */
export function TemplatesPage() {
  const templates = useQuery({ queryKey: ['templates'], queryFn: api.templates });
  const [editing, setEditing] = useState<Template | 'new' | null>(null);
  return (
    <section className="panel">
      <div className="row">
        <h1>Templates</h1>
        <span className="spacer" />
        <button type="button" className="primary" onClick={() => setEditing('new')}>
          New template
        </button>
      </div>
      <p className="muted">A template is a saved list of fields, to start new batches from.</p>
      <ErrorNote error={templates.error} />
      {editing && <TemplateEditor template={editing === 'new' ? null : editing} onDone={() => setEditing(null)} />}
      {templates.data?.length === 0 && !editing && (
        <p className="empty">No templates yet. Make one here, or save a batch's fields as a template.</p>
      )}
      <ul className="templates">
        {templates.data?.map((t) => (
          <li key={t.id}>
            <strong>{t.name}</strong>
            <span className="muted small">
              {t.fields.map((f) => f.name).join(', ')} · {formatDate(t.created_at)}
            </span>
            <button type="button" onClick={() => setEditing(t)} aria-label={`Edit ${t.name}`}>
              Edit
            </button>
            <DeleteTemplate template={t} />
          </li>
        ))}
      </ul>
    </section>
  );
}

function DeleteTemplate({ template }: { template: Template }) {
  const client = useQueryClient();
  const remove = useMutation({
    mutationFn: () => api.deleteTemplate(template.id),
    onSuccess: () => client.invalidateQueries({ queryKey: ['templates'] }),
  });
  return (
    <>
      <button
        type="button"
        className="danger"
        aria-label={`Delete ${template.name}`}
        onClick={() => confirm(`Delete the template “${template.name}”?`) && remove.mutate()}
      >
        Delete
      </button>
      <ErrorNote error={remove.error} />
    </>
  );
}

function TemplateEditor({ template, onDone }: { template: Template | null; onDone: () => void }) {
  const client = useQueryClient();
  const [name, setName] = useState(template?.name ?? '');
  const [fields, setFields] = useState<Field[]>(template?.fields ?? []);
  const save = useMutation({
    mutationFn: () => (template ? api.updateTemplate(template.id, name.trim(), fields) : api.createTemplate(name.trim(), fields)),
    onSuccess: () => {
      client.invalidateQueries({ queryKey: ['templates'] });
      onDone();
    },
  });
  return (
    <div className="editor">
      <div className="field">
        <label htmlFor="tpl-name">Template name</label>
        <input id="tpl-name" value={name} onChange={(e) => setName(e.target.value)} />
      </div>
      <FieldsEditor fields={fields} onChange={setFields} />
      <div className="row actions">
        <button type="button" className="primary" disabled={!name.trim() || fields.length === 0 || !isValid(fields)} onClick={() => save.mutate()}>
          Save template
        </button>
        <button type="button" onClick={onDone}>
          Close
        </button>
      </div>
      <ErrorNote error={save.error} />
    </div>
  );
}

/** The engines this server has, whether they answer, and the API token. */
export function SettingsPage() {
  const engines = useQuery({ queryKey: ['engines'], queryFn: api.engines });
  const health = useQuery({ queryKey: ['health'], queryFn: api.health });
  const [token, setTokenValue] = useState(getToken() ?? '');
  return (
    <>
      <section className="panel">
        <h1>Engines</h1>
        <p className="muted">
          New batches use the default engine. Point cardex at a model server with <code>--vlm-url</code> and{' '}
          <code>--vlm-model</code> (Ollama, vLLM, llama.cpp, LM Studio or a hosted API); without one, the embedded OCR
          engine reads the cards.
        </p>
        <ErrorNote error={engines.error} />
        <table className="list">
          <thead>
            <tr>
              <th scope="col">Engine</th>
              <th scope="col">Default</th>
              <th scope="col">Reachable</th>
              <th scope="col">Details</th>
            </tr>
          </thead>
          <tbody>
            {engines.data?.map((e) => (
              <tr key={e.name}>
                <td>
                  <strong>{e.name}</strong> {e.model && <span className="muted">({e.model})</span>}
                </td>
                <td>{e.default ? 'yes' : ''}</td>
                <td className={e.reachable ? 'ok' : 'error'}>{e.reachable ? 'yes' : 'no'}</td>
                <td className="small">
                  {e.base_url && <code>{e.base_url}</code>} {e.detail}
                  {e.concurrency != null && <> · {e.concurrency} requests at once</>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {health.data && <p className="muted small">cardex {health.data.version}</p>}
      </section>
      <section className="panel narrow">
        <h2>API token</h2>
        <p className="muted">Only needed when the server was started with --api-token. Kept in this browser.</p>
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            setToken(token.trim() || null);
          }}
        >
          <div className="field">
            <label htmlFor="settings-token">Token</label>
            <input id="settings-token" type="password" value={token} onChange={(e) => setTokenValue(e.target.value)} />
          </div>
          <button type="submit">Save token</button>
        </form>
      </section>
    </>
  );
}
