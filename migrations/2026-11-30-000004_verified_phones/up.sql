-- Verified phones: SMS codes, the proof a confirmed code yields, consent on record, the
-- link that lets an anonymous visitor manage their visit, and SMS kinds for codes and
-- notices.

-- One code sent (or, for an account that does not exist, a decoy with nothing sent: the
-- answer must not tell the two apart).
CREATE TABLE phone_verifications (
    id               TEXT        PRIMARY KEY,
    -- E.164; NULL for a decoy.
    phone            TEXT        CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    purpose          TEXT        NOT NULL
        CHECK (purpose IN ('booking', 'registration', 'password_reset', 'phone_change')),
    -- The account a password reset or phone change is for.
    user_id          BIGINT      REFERENCES users (id) ON DELETE CASCADE,
    -- HMAC-SHA256 of the id and the code under the server's key; the code is never stored.
    code_hash        TEXT        NOT NULL,
    wrong_attempts   INTEGER     NOT NULL DEFAULT 0,
    expires_at       TIMESTAMPTZ NOT NULL,
    confirmed_at     TIMESTAMPTZ,
    -- The proof of a confirmed code: SHA-256 of a 256-bit random token, single use.
    token_hash       TEXT        UNIQUE,
    token_expires_at TIMESTAMPTZ,
    token_used_at    TIMESTAMPTZ,
    client_ip        TEXT        NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX phone_verifications_created_idx ON phone_verifications (created_at);

-- The texts a person agrees to, versioned; a new version is a new row.
CREATE TABLE consent_texts (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    purpose      TEXT        NOT NULL CHECK (purpose IN ('personal_data', 'health_data')),
    version      INTEGER     NOT NULL CHECK (version > 0),
    title        TEXT        NOT NULL,
    body         TEXT        NOT NULL,
    published_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (purpose, version)
);

INSERT INTO consent_texts (purpose, version, title, body) VALUES
('personal_data', 1, 'Согласие на обработку персональных данных',
 'Я даю ООО «Совамед» согласие на обработку моих персональных данных (фамилия, имя, отчество, дата рождения, номер телефона, адрес электронной почты) в целях записи на приём, информирования о записи по SMS и ведения личного кабинета, в соответствии с Федеральным законом от 27.07.2006 № 152-ФЗ «О персональных данных». Обработка включает сбор, запись, систематизацию, хранение, уточнение, использование, передачу в медицинскую информационную систему клиники, обезличивание, блокирование и уничтожение. Согласие действует до его отзыва; отозвать его можно в личном кабинете или письменным заявлением в клинику.'),
('health_data', 1, 'Согласие на обработку сведений о состоянии здоровья',
 'Я даю ООО «Совамед» согласие на обработку сведений о состоянии моего здоровья (запись к врачу определённой специальности, комментарий к записи, сведения о посещении) в целях оказания медицинских услуг, в соответствии со статьёй 10 Федерального закона от 27.07.2006 № 152-ФЗ «О персональных данных». Обработку ведут лица, обязанные сохранять врачебную тайну. Согласие действует до его отзыва.');

-- Consent given: by an account or, for a visitor without one, by a phone number.
CREATE TABLE consents (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      BIGINT      REFERENCES users (id) ON DELETE CASCADE,
    phone        TEXT        CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    text_id      BIGINT      NOT NULL REFERENCES consent_texts (id),
    given_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    client_ip    TEXT        NOT NULL,
    withdrawn_at TIMESTAMPTZ,
    CHECK (user_id IS NOT NULL OR phone IS NOT NULL)
);
CREATE INDEX consents_user_idx ON consents (user_id);
CREATE INDEX consents_phone_idx ON consents (phone);

-- When the account's phone was last proven by a code; NULL for phones never proven.
ALTER TABLE users ADD COLUMN phone_verified_at TIMESTAMPTZ;

-- SHA-256 of the token in the SMS link of an anonymous visit; valid until the visit starts.
ALTER TABLE records ADD COLUMN manage_token_hash TEXT UNIQUE;
CREATE INDEX records_anonymous_phone_idx ON records (patient_phone) WHERE user_id IS NULL;

ALTER TABLE sms_outbox DROP CONSTRAINT sms_outbox_kind_check;
ALTER TABLE sms_outbox ADD CONSTRAINT sms_outbox_kind_check
    CHECK (kind IN ('booked', 'moved', 'cancelled', 'code', 'notice'));
CREATE INDEX sms_outbox_phone_idx ON sms_outbox (phone, created_at);
