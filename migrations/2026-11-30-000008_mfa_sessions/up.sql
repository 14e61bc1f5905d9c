-- A second factor for staff and admin sign-in (TOTP, RFC 6238, with one-time recovery codes),
-- and the list of a user's active sessions.

-- The authenticator secret, base32 as the app is given it. NULL: no second factor. Set with
-- `totp_enrolled_at` NULL: an enrolment shown but not yet confirmed by a first valid code.
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_enrolled_at TIMESTAMPTZ;
-- The last time step (Unix time / 30 s) whose code was accepted: a code of that step or an
-- older one is refused, so a code seen over a shoulder or replayed cannot be used again.
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;
ALTER TABLE users ADD CONSTRAINT users_totp_enrolled_has_secret
    CHECK (totp_enrolled_at IS NULL OR totp_secret IS NOT NULL);

CREATE TABLE mfa_recovery_codes (
    id          BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- SHA-256 (hex) of the 10-character code; the code is shown once, at enrolment.
    code_hash   TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Set when the code was used: each code works once.
    used_at     TIMESTAMPTZ,
    UNIQUE (user_id, code_hash)
);

-- One row per page login: what the user's «Сеансы» page lists and ends.
CREATE TABLE login_sessions (
    id              BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- A random id kept in the cookie session (in Redis), never shown on a page.
    login_id        TEXT        NOT NULL UNIQUE,
    -- A short summary of the browser and system, from User-Agent («Chrome, Windows»).
    device          TEXT        NOT NULL,
    client_ip       TEXT        NOT NULL,
    -- The account's `session_version` at login: a later password, role or status change ends
    -- the session, and the list leaves such rows out.
    session_version INTEGER     NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Moved forward at most once a minute while the session is used.
    last_seen_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Set by logout or by ending it from the list: the session is refused from then on.
    ended_at        TIMESTAMPTZ
);
CREATE INDEX login_sessions_user_idx ON login_sessions (user_id, created_at DESC);

-- API refresh tokens of staff and admins were issued after a password alone; with the second
-- factor required of those roles (the default of MFA_REQUIRED_ROLES) they must log in again.
UPDATE refresh_tokens SET revoked_at = now()
    WHERE revoked_at IS NULL
      AND user_id IN (SELECT id FROM users WHERE role IN ('staff', 'admin'));
