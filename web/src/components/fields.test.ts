import { describe, expect, it } from 'vitest';
import type { Field } from '../api/client';
import { fieldProblems, isValid, move, newField } from './fields';

const f = (name: string, description = ''): Field => ({ name, description, type: 'text', active: true });

describe('field rules (as the server checks them)', () => {
  it('accepts identifiers', () => {
    expect(isValid([f('title'), f('year_2'), f('A')])).toBe(true);
  });
  it('refuses names that are not identifiers, duplicates and long descriptions', () => {
    const p = fieldProblems([f('my title'), f('2nd'), f('title'), f('title'), f('x', 'd'.repeat(1001)), f('')]);
    expect(p.byIndex[0]).toMatch(/letter/);
    expect(p.byIndex[1]).toMatch(/letter/);
    expect(p.byIndex[2]).toBeNull();
    expect(p.byIndex[3]).toMatch(/Same name as field 3/);
    expect(p.byIndex[4]).toMatch(/1000/);
    expect(p.byIndex[5]).toMatch(/name is needed/);
    expect(fieldProblems([f('a'.repeat(65))]).byIndex[0]).toMatch(/64/);
    expect(fieldProblems(Array.from({ length: 101 }, (_, i) => f(`f${i}`))).list).toMatch(/100/);
  });
  it('names new fields without clashes and reorders', () => {
    expect(newField([f('field_2'), f('x')]).name).toBe('field_3');
    expect(move([1, 2, 3], 2, 0)).toEqual([3, 1, 2]);
    expect(move([1, 2, 3], 0, -1)).toEqual([1, 2, 3]);
  });
});
