DROP TABLE schedule_snapshots;
DROP TABLE idempotency_keys;
DROP TABLE sms_outbox;
DROP TABLE records;
ALTER TABLE users DROP COLUMN mis_pcode;
