-- Invitations: a staff or admin account made by an admin gets a one-time link instead of a
-- typed password, and sets its own password through it.

-- When the account's password was last set by a person (its owner, an admin, the command
-- line). NULL: never, so the stored hash is an unusable one nobody knows (an invited account
-- that has not taken its link yet). Accounts from before this migration had their password
-- set when they were created.
ALTER TABLE users ADD COLUMN password_set_at TIMESTAMPTZ;
UPDATE users SET password_set_at = created_at;
-- Every other way of creating an account sets a password at once; only an invitation
-- inserts NULL explicitly.
ALTER TABLE users ALTER COLUMN password_set_at SET DEFAULT now();

CREATE TABLE invitations (
    id          BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The invited account.
    user_id     BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- SHA-256 (hex) of the link's token; the token itself is shown once and never stored.
    token_hash  TEXT        NOT NULL UNIQUE,
    -- The admin who issued it (NULL only if that account is ever deleted).
    created_by  BIGINT      REFERENCES users (id) ON DELETE SET NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    -- Set when the invitee set a password through it: a link works once.
    used_at     TIMESTAMPTZ,
    -- Set when a newer invitation for the same account replaced it.
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX invitations_user_idx ON invitations (user_id);
