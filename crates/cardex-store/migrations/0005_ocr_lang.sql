-- The OCR language(s) of a batch (Tesseract codes, `deu+eng`); NULL = the
-- server's default.
ALTER TABLE batches ADD COLUMN ocr_lang TEXT;
