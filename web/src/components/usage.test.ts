import { describe, expect, it } from 'vitest';
import { estimateLine, formatCost, formatDuration, formatTokens, percentOff } from './usage';

describe('usage figures', () => {
  it('reads tokens, dollars and time at a glance', () => {
    expect(formatTokens(850)).toBe('850');
    expect(formatTokens(9_999)).toBe('9,999');
    expect(formatTokens(12_400)).toBe('12.4 k');
    expect(formatTokens(1_300_000)).toBe('1.3 M');
    expect(formatTokens(250_000_000)).toBe('250 M');
    expect(formatCost(0.41)).toBe('$0.41');
    expect(formatCost(0.0032)).toBe('$0.0032');
    expect(formatCost(0)).toBe('$0');
    expect(formatDuration(12)).toBe('12 s');
    expect(formatDuration(18 * 60)).toBe('18 min');
    expect(formatDuration(125 * 60)).toBe('2 h 5 min');
    expect(percentOff(108, 100)).toBe('8% more');
    expect(percentOff(97, 100)).toBe('3% less');
  });

  it('says the estimate in one line, leaving out what is unknown', () => {
    const e = {
      sample_cards: 3,
      tokens_per_card: 1070.9,
      prompt_tokens_per_card: 1000,
      completion_tokens_per_card: 70.9,
      seconds_per_card: 0.9,
      concurrency: 4,
      cards: 1214,
      total_tokens: 1_300_000,
      cost: 0.41,
      duration_seconds: 18 * 60,
      made_at: '2026-12-01T12:00:00Z',
    };
    expect(estimateLine(e)).toBe('≈ 1.3 M tokens · ≈ $0.41 · ≈ 18 min for 1,214 cards');
    expect(estimateLine({ ...e, total_tokens: 0, cost: null })).toBe('≈ 18 min for 1,214 cards');
  });
});
