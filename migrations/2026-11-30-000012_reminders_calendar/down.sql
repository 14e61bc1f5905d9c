DROP TABLE calendar_feeds;
DELETE FROM sms_outbox WHERE kind = 'reminder';
ALTER TABLE sms_outbox DROP CONSTRAINT sms_outbox_kind_check;
ALTER TABLE sms_outbox ADD CONSTRAINT sms_outbox_kind_check
    CHECK (kind IN ('booked', 'moved', 'cancelled', 'code', 'notice'));
DROP INDEX records_reminder_due_idx;
DROP TRIGGER records_drop_stale_reminders ON records;
DROP FUNCTION records_drop_stale_reminders();
DROP TRIGGER records_track_schedule ON records;
DROP FUNCTION records_track_schedule();
ALTER TABLE records DROP COLUMN calendar_sequence;
ALTER TABLE records DROP COLUMN reminder_token_hash;
ALTER TABLE records DROP COLUMN reminder_queued_at;
ALTER TABLE records DROP COLUMN scheduled_at;
