DROP INDEX sms_outbox_phone_idx;
DELETE FROM sms_outbox WHERE kind IN ('code', 'notice');
ALTER TABLE sms_outbox DROP CONSTRAINT sms_outbox_kind_check;
ALTER TABLE sms_outbox ADD CONSTRAINT sms_outbox_kind_check
    CHECK (kind IN ('booked', 'moved', 'cancelled'));
DROP INDEX records_anonymous_phone_idx;
ALTER TABLE records DROP COLUMN manage_token_hash;
ALTER TABLE users DROP COLUMN phone_verified_at;
DROP TABLE consents;
DROP TABLE consent_texts;
DROP TABLE phone_verifications;
