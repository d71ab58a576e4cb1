-- Two-sided cards (DESIGN §16). A two-sided batch has `pairing` set
-- ('name' or 'order'); a one-sided batch has it NULL. In a two-sided batch
-- every card has a `side`: 'front' for a card whose image is its front
-- (with its back in the `back_*` columns once it is paired), 'back' for a
-- back whose front has not come yet. `pair_key` is what pairing by name
-- matches on (cardex_core::sides::side_of_name), NULL without a side mark.
ALTER TABLE batches ADD COLUMN pairing TEXT;
ALTER TABLE cards ADD COLUMN side TEXT;
ALTER TABLE cards ADD COLUMN pair_key TEXT;
ALTER TABLE cards ADD COLUMN back_original_name TEXT;
ALTER TABLE cards ADD COLUMN back_source_name TEXT;
ALTER TABLE cards ADD COLUMN back_page INTEGER;
ALTER TABLE cards ADD COLUMN back_stored_name TEXT;
ALTER TABLE cards ADD COLUMN back_size_bytes INTEGER;
ALTER TABLE cards ADD COLUMN back_sha256 TEXT;
ALTER TABLE cards ADD COLUMN back_format TEXT;
ALTER TABLE cards ADD COLUMN back_width INTEGER;
ALTER TABLE cards ADD COLUMN back_height INTEGER;
CREATE INDEX cards_pair_key ON cards (batch_id, pair_key) WHERE pair_key IS NOT NULL;
CREATE INDEX cards_back_sha256 ON cards (batch_id, back_sha256) WHERE back_sha256 IS NOT NULL;
