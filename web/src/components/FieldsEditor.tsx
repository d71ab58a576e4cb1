import type { Field, FieldType } from '../api/client';
import { FIELD_TYPES, fieldProblems, move, newField } from './fields';

/** Edits a field list: add, remove, reorder, name, type, description, active. */
export function FieldsEditor({ fields, onChange }: { fields: Field[]; onChange: (f: Field[]) => void }) {
  const problems = fieldProblems(fields);
  const set = (i: number, patch: Partial<Field>) =>
    onChange(fields.map((f, j) => (j === i ? { ...f, ...patch } : f)));
  return (
    <div className="fields-editor">
      {fields.length === 0 && (
        <p className="muted">
          No fields yet. Add one for each thing to read from every card, e.g. <code>title</code>,{' '}
          <code>author</code>, <code>year</code>.
        </p>
      )}
      <ol className="fields">
        {fields.map((f, i) => {
          const problem = problems.byIndex[i];
          const id = `field-${i}`;
          return (
            <li key={i} className={problem ? 'invalid' : ''}>
              <div className="field-row">
                <div className="field name">
                  <label htmlFor={`${id}-name`}>Name</label>
                  <input
                    id={`${id}-name`}
                    value={f.name}
                    aria-invalid={!!problem}
                    aria-describedby={problem ? `${id}-problem` : undefined}
                    onChange={(e) => set(i, { name: e.target.value })}
                  />
                </div>
                <div className="field type">
                  <label htmlFor={`${id}-type`}>Type</label>
                  <select id={`${id}-type`} value={f.type} onChange={(e) => set(i, { type: e.target.value as FieldType })}>
                    {FIELD_TYPES.map((t) => (
                      <option key={t}>{t}</option>
                    ))}
                  </select>
                </div>
                <div className="field description">
                  <label htmlFor={`${id}-description`}>What it is (tells the model what to look for)</label>
                  <input
                    id={`${id}-description`}
                    value={f.description ?? ''}
                    placeholder="e.g. the book's title as printed on the card"
                    onChange={(e) => set(i, { description: e.target.value })}
                  />
                </div>
                <label className="toggle">
                  <input type="checkbox" checked={f.active ?? true} onChange={(e) => set(i, { active: e.target.checked })} />
                  Active
                </label>
                <div className="buttons">
                  <button type="button" aria-label={`Move ${f.name || 'field'} up`} disabled={i === 0} onClick={() => onChange(move(fields, i, i - 1))}>
                    ↑
                  </button>
                  <button
                    type="button"
                    aria-label={`Move ${f.name || 'field'} down`}
                    disabled={i === fields.length - 1}
                    onClick={() => onChange(move(fields, i, i + 1))}
                  >
                    ↓
                  </button>
                  <button type="button" aria-label={`Remove ${f.name || 'field'}`} onClick={() => onChange(fields.filter((_, j) => j !== i))}>
                    ✕
                  </button>
                </div>
              </div>
              {problem && (
                <p className="error small" id={`${id}-problem`}>
                  {problem}
                </p>
              )}
            </li>
          );
        })}
      </ol>
      {problems.list && <p className="error">{problems.list}</p>}
      <button type="button" onClick={() => onChange([...fields, newField(fields)])}>
        + Add field
      </button>
    </div>
  );
}
