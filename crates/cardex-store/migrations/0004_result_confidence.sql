-- Confidence per field of a result (DESIGN §13): JSON object field -> 0..1 or null.
ALTER TABLE results ADD COLUMN confidence TEXT NOT NULL DEFAULT '{}';
