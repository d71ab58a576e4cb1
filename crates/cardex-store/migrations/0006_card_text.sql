-- The card's own OCR text (DESIGN §13): read by the OCR engine, or by the
-- cross-check for cards a model read. NULL = not read.
ALTER TABLE results ADD COLUMN text TEXT;
-- The cross-check of a model's result: 'pending' (waiting for the OCR
-- workers), 'done', 'skipped' (could not be read; check_note says why);
-- NULL = no cross-check for this card.
ALTER TABLE results ADD COLUMN check_state TEXT;
ALTER TABLE results ADD COLUMN check_note TEXT;
CREATE INDEX results_check_pending ON results (card_id) WHERE check_state = 'pending';
-- Results of the OCR engine kept the card's text as a `_text` field; it is
-- the row's text now.
UPDATE results SET text = json_extract(result, '$._text'),
                   result = json_remove(result, '$._text')
 WHERE json_type(result, '$._text') = 'text';
