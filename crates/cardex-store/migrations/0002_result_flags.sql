-- Flags on a result (DESIGN §13): JSON array of {code, field?, message}.
ALTER TABLE results ADD COLUMN flags TEXT NOT NULL DEFAULT '[]';
