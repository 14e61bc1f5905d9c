CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
DROP INDEX phone_verifications_phone_idx;
DROP INDEX phone_verifications_expires_idx;
DROP INDEX refresh_tokens_expires_idx;
DROP INDEX schedule_snapshots_day_idx;
DROP INDEX idempotency_keys_created_idx;
DROP INDEX sms_outbox_created_idx;
DROP INDEX users_deletion_due_idx;
ALTER TABLE users DROP COLUMN anonymised_at;
ALTER TABLE users DROP COLUMN deletion_requested_at;
