import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import type { Field, Template } from '../api/client';
import { api } from '../api/client';
import { ErrorNote, formatDate } from '../components/common';
import { FieldsEditor } from '../components/FieldsEditor';
import { isValid } from '../components/fields';

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
