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

-- The least confidence among a result's values (NULL: none given), so the
-- review queue can put the least sure cards first without reading JSON.
ALTER TABLE results ADD COLUMN min_confidence REAL;
UPDATE results SET min_confidence =
    (SELECT MIN(j.value) FROM json_each(results.confidence) j WHERE j.type IN ('real', 'integer'));
