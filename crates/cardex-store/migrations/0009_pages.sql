-- Multi-page files (DESIGN §16): each page of a PDF or multi-page TIFF is
-- a card of its own. `source_name` is the name of the file the client sent
-- (for an ordinary image the same as `original_name`); `page` is the
-- page's number in it, from 1, NULL for an ordinary single image.
ALTER TABLE cards ADD COLUMN source_name TEXT NOT NULL DEFAULT '';
ALTER TABLE cards ADD COLUMN page INTEGER;
UPDATE cards SET source_name = original_name;
