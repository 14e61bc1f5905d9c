DROP INDEX sms_outbox_unknown_idx;
DROP INDEX sms_outbox_check_idx;
ALTER TABLE sms_outbox DROP COLUMN next_check_at;
ALTER TABLE sms_outbox DROP COLUMN delivered_at;
ALTER TABLE sms_outbox DROP COLUMN delivery_code;
ALTER TABLE sms_outbox DROP COLUMN delivery;
-- A message whose outcome was never settled goes back to the old 'sending'.
UPDATE sms_outbox SET status = 'sending' WHERE status = 'unknown';
ALTER TABLE sms_outbox DROP CONSTRAINT sms_outbox_status_check;
ALTER TABLE sms_outbox ADD CONSTRAINT sms_outbox_status_check
    CHECK (status IN ('pending', 'sending', 'sent', 'failed'));
