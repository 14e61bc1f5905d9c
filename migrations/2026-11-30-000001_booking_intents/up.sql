-- Booking intents: every booking, move and cancel is written down, in its own committed
-- transaction, before the MIS is asked to change anything, and is resolved afterwards to
-- `done` (both sides changed) or `failed` (neither). An intent left `pending` (a crash, or an
-- MIS answer that never came) is resolved by the reconciler, which asks the MIS what really
-- happened: the MIS is the system of record.
CREATE TABLE booking_intents (
    id                 BIGSERIAL   PRIMARY KEY,
    kind               TEXT        NOT NULL CHECK (kind IN ('book', 'move', 'cancel')),
    state              TEXT        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    -- The record moved or cancelled; for a booking, the record once written.
    record_id          BIGINT      REFERENCES records (id),
    specialist_id      BIGINT      NOT NULL REFERENCES specialists (id),
    branch_id          BIGINT      NOT NULL REFERENCES branches (id),
    -- The slot booked or moved to (for a cancel, the record's slot).
    starts_at          TIMESTAMPTZ NOT NULL,
    ends_at            TIMESTAMPTZ NOT NULL CHECK (ends_at > starts_at),
    pcode              BIGINT      NOT NULL,
    -- The appointment's SCHEDID, once the MIS named it.
    mis_id             BIGINT,
    -- For a booking: the patient, the account, the comment, the source and who asked, so the
    -- reconciler can write the record the request would have written.
    request            JSONB       NOT NULL DEFAULT '{}',
    idempotency_scope  TEXT,
    idempotency_key    TEXT,
    request_hash       TEXT,
    -- The last thing that went wrong, for operators.
    error              TEXT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX booking_intents_pending_idx ON booking_intents (updated_at) WHERE state = 'pending';
CREATE INDEX booking_intents_key_idx ON booking_intents (idempotency_scope, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
