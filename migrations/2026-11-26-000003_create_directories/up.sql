-- Directories synced from the MIS (branches, specialities, specialists, prices) and the CMS
-- (doctor profiles, reviews, content). Rows that disappear at the source are deactivated,
-- never deleted, so bookings and audit rows can keep referring to them. `source_hash` is a
-- digest of the source fields: a sync writes a row only when it changed.

CREATE TABLE branches (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mis_id        BIGINT      NOT NULL UNIQUE,
    name          TEXT        NOT NULL,
    address       TEXT        NOT NULL DEFAULT '',
    phone         TEXT        NOT NULL DEFAULT '',
    email         TEXT        NOT NULL DEFAULT '',
    -- IANA zone: from the MIS's UTC offset, or BRANCH_TIMEZONES.
    timezone      TEXT        NOT NULL,
    active        BOOLEAN     NOT NULL DEFAULT true,
    source_hash   TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE specialities (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mis_id        BIGINT      NOT NULL UNIQUE,
    name          TEXT        NOT NULL,
    group_name    TEXT        NOT NULL DEFAULT '',
    active        BOOLEAN     NOT NULL DEFAULT true,
    source_hash   TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE specialists (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mis_id           BIGINT      NOT NULL UNIQUE,
    full_name        TEXT        NOT NULL,
    active           BOOLEAN     NOT NULL DEFAULT true,
    source_hash      TEXT        NOT NULL,
    -- The CMS profile, when one is linked by MIS id.
    cms_id           BIGINT      UNIQUE,
    bio_html         TEXT        NOT NULL DEFAULT '',
    summary          TEXT        NOT NULL DEFAULT '',
    photo_url        TEXT,
    career_start     INTEGER,
    profile_hash     TEXT,
    rating           DOUBLE PRECISION,
    reviews_count    INTEGER     NOT NULL DEFAULT 0,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX specialists_full_name_idx ON specialists (lower(full_name));

CREATE TABLE specialist_branches (
    specialist_id BIGINT NOT NULL REFERENCES specialists (id),
    branch_id     BIGINT NOT NULL REFERENCES branches (id),
    PRIMARY KEY (specialist_id, branch_id)
);
CREATE INDEX specialist_branches_branch_idx ON specialist_branches (branch_id);

CREATE TABLE specialist_specialities (
    specialist_id BIGINT NOT NULL REFERENCES specialists (id),
    speciality_id BIGINT NOT NULL REFERENCES specialities (id),
    PRIMARY KEY (specialist_id, speciality_id)
);
CREATE INDEX specialist_specialities_speciality_idx ON specialist_specialities (speciality_id);

CREATE TABLE prices (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mis_id        BIGINT      NOT NULL UNIQUE,
    code          TEXT        NOT NULL DEFAULT '',
    name          TEXT        NOT NULL,
    price_kopecks BIGINT      NOT NULL CHECK (price_kopecks >= 0),
    branch_id     BIGINT      REFERENCES branches (id),
    speciality_id BIGINT      REFERENCES specialities (id),
    bookable      BOOLEAN     NOT NULL DEFAULT true,
    active        BOOLEAN     NOT NULL DEFAULT true,
    source_hash   TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX prices_branch_idx ON prices (branch_id);
CREATE INDEX prices_speciality_idx ON prices (speciality_id);

CREATE TABLE reviews (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cms_id        BIGINT      NOT NULL UNIQUE,
    specialist_id BIGINT      REFERENCES specialists (id),
    author_name   TEXT        NOT NULL,
    body          TEXT        NOT NULL,
    rating        SMALLINT    CHECK (rating BETWEEN 1 AND 5),
    published     BOOLEAN     NOT NULL,
    -- False once the CMS no longer has the element at all.
    active        BOOLEAN     NOT NULL DEFAULT true,
    reviewed_at   TIMESTAMPTZ,
    source_hash   TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX reviews_specialist_idx ON reviews (specialist_id, reviewed_at DESC);

-- CMS content of the kinds `pages`, `services` and `specializations`.
CREATE TABLE content_items (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          TEXT        NOT NULL,
    cms_id        BIGINT      NOT NULL,
    code          TEXT,
    title         TEXT        NOT NULL,
    summary       TEXT        NOT NULL DEFAULT '',
    body_html     TEXT        NOT NULL DEFAULT '',
    active        BOOLEAN     NOT NULL DEFAULT true,
    modified_at   TIMESTAMPTZ NOT NULL,
    source_hash   TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (kind, cms_id)
);

-- Incremental CMS sync: the watermark per content kind.
CREATE TABLE sync_watermarks (
    source     TEXT        PRIMARY KEY,
    watermark  TIMESTAMPTZ NOT NULL
);

-- One row per sync run of one kind: what the staff sync-status page shows.
CREATE TABLE sync_runs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         TEXT        NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ NOT NULL,
    succeeded    BOOLEAN     NOT NULL,
    created      INTEGER     NOT NULL DEFAULT 0,
    updated      INTEGER     NOT NULL DEFAULT 0,
    unchanged    INTEGER     NOT NULL DEFAULT 0,
    deactivated  INTEGER     NOT NULL DEFAULT 0,
    error        TEXT,
    notes        TEXT        NOT NULL DEFAULT ''
);
CREATE INDEX sync_runs_kind_idx ON sync_runs (kind, started_at DESC);
