-- Refresh tokens of the JSON API: opaque, stored as SHA-256, rotated on every use. Every token
-- descends from one login (its family); a rotated token presented again means it was stolen,
-- and the whole family is revoked.
CREATE TABLE refresh_tokens (
    id              BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family          TEXT        NOT NULL,
    token_hash      TEXT        NOT NULL UNIQUE,
    -- The user's session_version at issue: a password, role or status change refuses it.
    session_version INTEGER     NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ NOT NULL,
    -- Set when it was exchanged for the next token of its family.
    rotated_at      TIMESTAMPTZ,
    revoked_at      TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
