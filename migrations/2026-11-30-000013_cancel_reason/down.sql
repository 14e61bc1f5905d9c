ALTER TABLE records DROP COLUMN cancel_reason;
