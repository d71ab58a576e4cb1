-- Review and corrections (DESIGN §12). The machine's values in `results`
-- never change; a person's review is a layer of its own.
CREATE TABLE reviews (
    card_id     INTEGER PRIMARY KEY REFERENCES cards (id) ON DELETE CASCADE,
    batch_id    TEXT NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    status      TEXT NOT NULL,                -- unreviewed | verified | needs_attention
    corrections TEXT NOT NULL DEFAULT '{}',   -- JSON {field: value}, over the machine's
    note        TEXT,
    updated_at  TEXT NOT NULL
);
CREATE INDEX reviews_batch_status ON reviews (batch_id, status);

-- Every review as it was recorded, oldest first.
CREATE TABLE review_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    card_id     INTEGER NOT NULL REFERENCES cards (id) ON DELETE CASCADE,
    batch_id    TEXT NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    status      TEXT NOT NULL,
    corrections TEXT NOT NULL,
    note        TEXT,
    at          TEXT NOT NULL
);
CREATE INDEX review_history_card ON review_history (card_id, id);

-- The least confidence among a result's values (NULL: none given).
ALTER TABLE results ADD COLUMN min_confidence REAL;
UPDATE results SET min_confidence =
    (SELECT MIN(j.value) FROM json_each(results.confidence) j WHERE j.type IN ('real', 'integer'));

-- A finished card's place in the review queue, fixed when its outcome is
-- committed (so a later cross-check cannot move it between two pages):
-- tier 0 failed, 1 flagged, 2 the rest; then the least confidence (2.0
-- where none); then the id. NULL while the card is not finished.
ALTER TABLE cards ADD COLUMN queue_tier INTEGER;
ALTER TABLE cards ADD COLUMN queue_conf REAL;
UPDATE cards SET queue_tier = 0, queue_conf = 2.0 WHERE state = 'failed';
UPDATE cards SET
    queue_tier = CASE WHEN (SELECT json_array_length(r.flags) FROM results r WHERE r.card_id = cards.id) > 0
                      THEN 1 ELSE 2 END,
    queue_conf = COALESCE((SELECT r.min_confidence FROM results r WHERE r.card_id = cards.id), 2.0)
  WHERE state = 'done';
CREATE INDEX cards_review_queue ON cards (batch_id, queue_tier, queue_conf, id)
  WHERE queue_tier IS NOT NULL;
