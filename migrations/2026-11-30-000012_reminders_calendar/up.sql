-- Reminders and calendars (issue 11): one reminder SMS per visit time, queued exactly once
-- whatever the number of replicas; the iCalendar SEQUENCE of each visit; the private
-- calendar feed of a patient.

-- When the visit got its current start: booked, or last moved. A reminder goes only to a
-- visit whose start was set at least REMINDER_HOURS_BEFORE ahead (a visit booked for this
-- afternoon needs none).
ALTER TABLE records ADD COLUMN scheduled_at TIMESTAMPTZ;
UPDATE records SET scheduled_at = created_at;
ALTER TABLE records ALTER COLUMN scheduled_at SET NOT NULL;
ALTER TABLE records ALTER COLUMN scheduled_at SET DEFAULT now();

-- When the reminder of the visit's current start was queued; NULL: not yet. Set by
-- `UPDATE ... WHERE reminder_queued_at IS NULL` in the transaction that inserts the SMS, so
-- of several replicas exactly one queues it (the others' UPDATE finds the row taken).
ALTER TABLE records ADD COLUMN reminder_queued_at TIMESTAMPTZ;

-- The SHA-256 of a second visit link, the one in the reminder of a visit booked without an
-- account: the booking SMS's token is never stored, so the reminder carries a new one. Both
-- links open the same visit.
ALTER TABLE records ADD COLUMN reminder_token_hash TEXT UNIQUE;

-- The iCalendar SEQUENCE of the visit: one more at every change of its time or status, so a
-- calendar app updates the event instead of keeping a ghost.
ALTER TABLE records ADD COLUMN calendar_sequence INTEGER NOT NULL DEFAULT 0;

-- Every path that changes a visit (the patient, the desk, the MIS change feed, the
-- reconciler, a person with psql) goes through this trigger, so none can forget it: a new
-- start is a new reminder, and any change of time or status a new SEQUENCE. The time of the
-- change is the clock's, not the transaction's start: a move that waited for a reminder's
-- transaction is later than that reminder (the outbox worker compares the two).
CREATE FUNCTION records_track_schedule() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.starts_at IS DISTINCT FROM OLD.starts_at THEN
        NEW.scheduled_at := clock_timestamp();
        NEW.reminder_queued_at := NULL;
    END IF;
    IF NEW.starts_at IS DISTINCT FROM OLD.starts_at
       OR NEW.ends_at IS DISTINCT FROM OLD.ends_at
       OR NEW.status IS DISTINCT FROM OLD.status THEN
        NEW.calendar_sequence := OLD.calendar_sequence + 1;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER records_track_schedule BEFORE UPDATE ON records
    FOR EACH ROW EXECUTE FUNCTION records_track_schedule();

-- A reminder still waiting in the outbox when its visit is cancelled, moved or marked is
-- dropped: it would announce a visit that no longer is. One the worker has claimed
-- (`sending`) is in the gateway's hands already and is left alone; the DELETE waits for the
-- worker's claim, so a message is either dropped or sent, never both.
CREATE FUNCTION records_drop_stale_reminders() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sms_outbox
     WHERE record_id = NEW.id AND kind = 'reminder' AND status = 'pending';
    RETURN NULL;
END;
$$;
CREATE TRIGGER records_drop_stale_reminders AFTER UPDATE OF status, starts_at ON records
    FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status OR NEW.starts_at IS DISTINCT FROM OLD.starts_at)
    EXECUTE FUNCTION records_drop_stale_reminders();

-- The reminder job's question: booked visits without a reminder, by start.
CREATE INDEX records_reminder_due_idx ON records (starts_at)
    WHERE status = 'booked' AND reminder_queued_at IS NULL;

ALTER TABLE sms_outbox DROP CONSTRAINT sms_outbox_kind_check;
ALTER TABLE sms_outbox ADD CONSTRAINT sms_outbox_kind_check
    CHECK (kind IN ('booked', 'moved', 'cancelled', 'code', 'notice', 'reminder'));

-- A patient's private calendar feed (`/calendar/<token>.ics`): one per account; a new token
-- replaces the old one, which stops working at once. The token is kept as well as its hash:
-- it only reads visit times that this database holds anyway, so whoever can read this table
-- can read the visits themselves, and keeping it lets the patient copy the address again
-- later. Look-ups go by the hash, so the comparison never runs over the secret itself.
CREATE TABLE calendar_feeds (
    user_id     BIGINT      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    token       TEXT        NOT NULL,
    token_hash  TEXT        NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
