import { fireEvent, render, screen } from '@testing-library/react';
import { useState } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from '@testing-library/react';
import type { Field } from '../api/client';
import { FieldsEditor } from './FieldsEditor';

afterEach(cleanup);

function Harness({ initial, seen }: { initial: Field[]; seen: { fields: Field[] } }) {
  const [fields, setFields] = useState(initial);
  seen.fields = fields;
  return <FieldsEditor fields={fields} onChange={setFields} />;
}

describe('FieldsEditor', () => {
  it('adds, renames, reorders and removes fields with labelled controls', () => {
    const seen = { fields: [] as Field[] };
    render(<Harness initial={[]} seen={seen} />);
    expect(screen.getByText(/No fields yet/)).toBeTruthy();
    fireEvent.click(screen.getByText('+ Add field'));
    fireEvent.click(screen.getByText('+ Add field'));
    const names = screen.getAllByLabelText('Name') as HTMLInputElement[];
    fireEvent.change(names[0], { target: { value: 'title' } });
    fireEvent.change(names[1], { target: { value: 'year' } });
    fireEvent.change(screen.getAllByLabelText('Type')[1], { target: { value: 'integer' } });
    fireEvent.click(screen.getByLabelText('Move year up'));
    expect(seen.fields.map((x) => [x.name, x.type])).toEqual([
      ['year', 'integer'],
      ['title', 'text'],
    ]);
    fireEvent.click(screen.getAllByLabelText('Active')[1]);
    expect(seen.fields[1].active).toBe(false);
    fireEvent.click(screen.getByLabelText('Remove year'));
    expect(seen.fields.map((x) => x.name)).toEqual(['title']);
  });

  it('shows a problem beside the field while typing', () => {
    const seen = { fields: [] as Field[] };
    render(<Harness initial={[{ name: 'ok', description: '', type: 'text', active: true }]} seen={seen} />);
    fireEvent.change(screen.getByLabelText('Name'), { target: { value: 'not ok' } });
    expect(screen.getByText(/no spaces/)).toBeTruthy();
    expect(screen.getByLabelText('Name').getAttribute('aria-invalid')).toBe('true');
  });
});
