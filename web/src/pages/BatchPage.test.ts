import { describe, expect, it } from 'vitest';
import type { Card } from '../api/client';
import { missingSide } from './BatchPage';

/** A card of a two-sided batch with these images (the first is its own). */
function card(side: 'front' | 'back', ...names: string[]): Card {
  const image = (name: string, i: number) => ({
    side: i === 0 ? side : ('back' as const),
    original_name: name,
    source_name: name,
    page: null,
    stored_name: `${i}.jpg`,
    size_bytes: 1,
    sha256: String(i),
    format: 'jpeg',
    width: 1,
    height: 1,
  });
  return {
    id: 1,
    original_name: names[0],
    source_name: names[0],
    page: null,
    stored_name: '0.jpg',
    size_bytes: 1,
    sha256: '0',
    format: 'jpeg',
    width: 1,
    height: 1,
    state: 'uploaded',
    created_at: '',
    side,
    images: names.map(image),
  };
}

describe('missingSide', () => {
  it('says what a two-sided card lacks, and why nothing pairs with a name without a side mark', () => {
    expect(missingSide(card('front', '12_front.jpg', '12_back.jpg'), 'name')).toBeNull();
    expect(missingSide(card('front', '12_front.jpg'), 'name')).toMatch(/its back is missing/);
    expect(missingSide(card('back', '12b.jpg'), 'name')).toMatch(/its front is missing/);
    expect(missingSide(card('front', 'card-1.jpg'), 'name')).toMatch(/its back is missing/);
    for (const name of ['loose.jpg', 'front.jpg', 'storefront.jpg', 'card-3.jpg', 'box.pdf p. 3']) {
      expect(missingSide(card('front', name), 'name'), name).toMatch(/no side mark/);
    }
    // By upload order a lone image waits for the next one, whatever its name.
    expect(missingSide(card('front', 'loose.jpg'), 'order')).toMatch(/its back is missing/);
    // One-sided cards lack nothing.
    expect(missingSide({ ...card('front', 'a.jpg'), side: null }, null)).toBeNull();
  });
});
