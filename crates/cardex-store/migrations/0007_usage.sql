-- What reading the cards cost (DESIGN §14).
-- Each result's usage: JSON {prompt_tokens, completion_tokens, total_tokens,
-- cached_tokens, requests, ms}, every attempt summed; and its provenance:
-- JSON {engine, model, endpoint, prompt_sha256, response_mode}.
ALTER TABLE results ADD COLUMN usage TEXT;
ALTER TABLE results ADD COLUMN provenance TEXT;
-- A batch's running totals, done and failed cards alike, added in the same
-- transaction as each card's outcome: a card is counted once, with it.
ALTER TABLE batches ADD COLUMN prompt_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batches ADD COLUMN completion_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batches ADD COLUMN total_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batches ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batches ADD COLUMN requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batches ADD COLUMN engine_ms INTEGER NOT NULL DEFAULT 0;
-- The budget: reaching either pauses the batch (NULL = no bound).
ALTER TABLE batches ADD COLUMN max_tokens INTEGER;
ALTER TABLE batches ADD COLUMN max_cost REAL;
-- The last estimate made for the batch, JSON as the API answered it.
ALTER TABLE batches ADD COLUMN estimate TEXT;
