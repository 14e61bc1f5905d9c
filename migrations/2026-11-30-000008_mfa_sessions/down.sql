DROP TABLE login_sessions;
DROP TABLE mfa_recovery_codes;
ALTER TABLE users DROP CONSTRAINT users_totp_enrolled_has_secret;
ALTER TABLE users DROP COLUMN totp_last_step;
ALTER TABLE users DROP COLUMN totp_enrolled_at;
ALTER TABLE users DROP COLUMN totp_secret;
