-- Booking: records (appointments booked through this server), their SMS outbox, stored
-- answers for Idempotency-Key, and the last copy of each doctor's day grid (served, marked
-- stale, when the MIS is down).

-- The patient card of a cabinet user in the MIS.
ALTER TABLE users ADD COLUMN mis_pcode BIGINT;

CREATE TABLE records (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- SCHEDID of the appointment in the MIS.
    mis_id             BIGINT      NOT NULL,
    status             TEXT        NOT NULL DEFAULT 'booked'
                                   CHECK (status IN ('booked', 'cancelled', 'visited', 'no_show')),
    specialist_id      BIGINT      NOT NULL REFERENCES specialists (id),
    branch_id          BIGINT      NOT NULL REFERENCES branches (id),
    starts_at          TIMESTAMPTZ NOT NULL,
    ends_at            TIMESTAMPTZ NOT NULL CHECK (ends_at > starts_at),
    -- NULL for an anonymous booking from the public site.
    user_id            BIGINT      REFERENCES users (id),
    patient_pcode      BIGINT      NOT NULL,
    patient_last_name  TEXT        NOT NULL,
    patient_first_name TEXT        NOT NULL,
    patient_middle_name TEXT,
    patient_phone      TEXT        NOT NULL CHECK (patient_phone ~ '^\+[1-9][0-9]{6,14}$'),
    patient_email      TEXT,
    patient_birth_date DATE,
    comment            TEXT        CHECK (length(comment) <= 500),
    source             TEXT        NOT NULL CHECK (source IN ('cabinet', 'anonymous', 'api')),
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    cancelled_at       TIMESTAMPTZ,
    cancelled_by       BIGINT      REFERENCES users (id)
);

-- One winner per slot: at most one active record per doctor, branch and start.
CREATE UNIQUE INDEX records_one_active_per_slot ON records (specialist_id, branch_id, starts_at)
    WHERE status = 'booked';
CREATE UNIQUE INDEX records_mis_id_key ON records (branch_id, mis_id);
CREATE INDEX records_user_idx ON records (user_id, starts_at);
CREATE INDEX records_starts_at_idx ON records (starts_at);
CREATE INDEX records_phone_idx ON records (patient_phone);

CREATE TABLE sms_outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record_id       BIGINT      REFERENCES records (id),
    kind            TEXT        NOT NULL CHECK (kind IN ('booked', 'moved', 'cancelled')),
    phone           TEXT        NOT NULL,
    body            TEXT        NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    provider_id     TEXT,
    sent_at         TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX sms_outbox_due_idx ON sms_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX sms_outbox_record_idx ON sms_outbox (record_id);

-- The first answer to a request with an Idempotency-Key, per caller.
CREATE TABLE idempotency_keys (
    scope         TEXT        NOT NULL,
    key           TEXT        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash  TEXT        NOT NULL,
    status_code   INTEGER     NOT NULL,
    response      JSONB       NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- The last grid the MIS gave for a doctor's day in a branch (branch-local wall times).
CREATE TABLE schedule_snapshots (
    specialist_id BIGINT      NOT NULL REFERENCES specialists (id),
    branch_id     BIGINT      NOT NULL REFERENCES branches (id),
    day           DATE        NOT NULL,
    intervals     JSONB       NOT NULL,
    fetched_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (specialist_id, branch_id, day)
);
