// Words for what the API gives as codes and counts, shared by the pages.
import type { Batch, FlagCode } from '../api/client';
/** What each kind of flag means, in a few words. */
export const FLAG_WORDS: Record<FlagCode, string> = {
  empty: 'no field found',
  low_confidence: 'a value the engine is unsure of',
  not_in_text: "a value not written on the card (cross-check with the card's own text)",
  invalid_value: "a value not of its field's type, kept as written",
  truncated_answer: "the model's answer was cut off",
  repetition: "the model's answer repeats itself",
};

/** "37 of 1,200 verified · 14 flagged · 3 need attention · 5 corrected". */
export function reviewCounts(b: Batch, flagged?: number): string {
  const c = b.counts;
  const parts = [`${c.verified.toLocaleString('en-US')} of ${c.total.toLocaleString('en-US')} verified`];
  const f = flagged ?? b.quality?.flagged_cards;
  if (f) parts.push(`${f.toLocaleString('en-US')} flagged`);
  if (c.needs_attention) parts.push(`${c.needs_attention} need${c.needs_attention === 1 ? 's' : ''} attention`);
  if (c.corrected) parts.push(`${c.corrected} corrected`);
  return parts.join(' · ');
}
