-- Accounts of patients, staff and admins.
CREATE TABLE users (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email           TEXT        NOT NULL CHECK (email = lower(email) AND length(email) <= 254),
    password_hash   TEXT        NOT NULL,
    full_name       TEXT        NOT NULL CHECK (length(full_name) BETWEEN 1 AND 200),
    -- E.164, normalised by the application with the phonenumber crate.
    phone           TEXT        CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    birth_date      DATE,
    role            TEXT        NOT NULL CHECK (role IN ('patient', 'staff', 'admin')),
    disabled        BOOLEAN     NOT NULL DEFAULT false,
    -- Bumped on password change, disabling and role change: every cookie session and JWT
    -- carrying an older value is refused.
    session_version INTEGER     NOT NULL DEFAULT 1,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_email_key ON users (lower(email));
