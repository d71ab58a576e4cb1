// Field rules, the same as the server's (cardex-core/src/field.rs), so
// mistakes show while typing rather than after saving.
import type { Field, FieldType } from '../api/client';

export const FIELD_TYPES: FieldType[] = ['text', 'number', 'integer', 'date', 'boolean', 'list'];
export const MAX_FIELDS = 100;
export const MAX_NAME_LEN = 64;
export const MAX_DESCRIPTION_CHARS = 1000;

/** The problem with each field (by index), if any; `list` is for the whole list. */
export function fieldProblems(fields: Field[]): { byIndex: (string | null)[]; list: string | null } {
  const seen = new Map<string, number>();
  const byIndex = fields.map((f, i) => {
    if (!f.name) return 'A name is needed.';
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(f.name))
      return "Use a letter, then letters, digits or '_' (no spaces).";
    if (f.name.length > MAX_NAME_LEN) return `At most ${MAX_NAME_LEN} characters.`;
    if (seen.has(f.name)) return `Same name as field ${seen.get(f.name)! + 1}.`;
    seen.set(f.name, i);
    if ([...(f.description ?? '')].length > MAX_DESCRIPTION_CHARS)
      return `The description is over ${MAX_DESCRIPTION_CHARS} characters.`;
    return null;
  });
  const list = fields.length > MAX_FIELDS ? `At most ${MAX_FIELDS} fields.` : null;
  return { byIndex, list };
}

export function isValid(fields: Field[]): boolean {
  const p = fieldProblems(fields);
  return !p.list && p.byIndex.every((x) => x === null);
}

export function newField(existing: Field[]): Field {
  let n = existing.length + 1;
  while (existing.some((f) => f.name === `field_${n}`)) n++;
  return { name: `field_${n}`, description: '', type: 'text', active: true };
}

export function move<T>(list: T[], from: number, to: number): T[] {
  if (to < 0 || to >= list.length) return list;
  const next = list.slice();
  const [item] = next.splice(from, 1);
  next.splice(to, 0, item);
  return next;
}
