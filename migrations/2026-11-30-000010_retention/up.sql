-- Deletion and retention (152-FZ art. 21): a patient's request to delete the account, the
-- anonymisation that follows once the grace period has passed, the indexes the daily
-- retention sweeps read by age, and the one way old audit rows may leave the trail.

-- When the owner asked for the account's deletion (the account was closed at that moment);
-- NULL when never asked, or when the clinic restored the account by enabling it again.
ALTER TABLE users ADD COLUMN deletion_requested_at TIMESTAMPTZ;
-- When the account's personal data was erased. The row itself stays: records, consents and
-- audit rows refer to it.
ALTER TABLE users ADD COLUMN anonymised_at TIMESTAMPTZ;
CREATE INDEX users_deletion_due_idx ON users (deletion_requested_at)
    WHERE deletion_requested_at IS NOT NULL AND anonymised_at IS NULL;

-- The retention sweeps select by age; without these each daily run reads whole tables.
CREATE INDEX sms_outbox_created_idx ON sms_outbox (created_at);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
CREATE INDEX schedule_snapshots_day_idx ON schedule_snapshots (day);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);
CREATE INDEX phone_verifications_expires_idx ON phone_verifications (expires_at);
-- The anonymiser deletes an account's codes by its phone.
CREATE INDEX phone_verifications_phone_idx ON phone_verifications (phone);

-- The audit trail stays append-only for everyone but the retention job: UPDATE is refused
-- always, and DELETE only of a row that occurred before the cutoff the deleting transaction
-- set for itself (`SET LOCAL sovamed.audit_retention_cutoff = '<timestamptz>'`, or
-- `set_config(..., true)`). Outside such a transaction the setting is missing (NULL) or,
-- once a transaction in this session has set and ended it, empty: both refuse.
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cutoff TEXT := current_setting('sovamed.audit_retention_cutoff', true);
BEGIN
    -- Nested, not one AND: SQL does not promise to evaluate left to right, and an empty
    -- setting must never reach the cast.
    IF TG_OP = 'DELETE' AND coalesce(cutoff, '') <> '' THEN
        IF OLD.occurred_at < cutoff::timestamptz THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
