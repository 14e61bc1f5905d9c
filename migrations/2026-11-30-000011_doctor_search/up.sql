-- The patient's doctor search: opening hours of the branches, the free slot starts of each
-- stored day (so the doctor list shows the nearest free time without asking the MIS), and
-- trigram indexes for a search that forgives case, ё/е and a typo.

-- `WORKHOURS` of GET_FILIAL_LIST, as the MIS writes it («пн–пт 8:00–20:00, сб 9:00–15:00»).
ALTER TABLE branches ADD COLUMN work_hours TEXT NOT NULL DEFAULT '';

-- The starts of the day's free slots as instants, written with `intervals` from the same MIS
-- answer. Whether a start is still in the future is decided when it is read.
ALTER TABLE schedule_snapshots ADD COLUMN free_starts TIMESTAMPTZ[] NOT NULL DEFAULT '{}';

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- The folded expressions (lower case, ё as е: `db::folded`) the search compares with
-- `LIKE '%…%'` and `word_similarity`.
CREATE INDEX specialists_full_name_trgm_idx
    ON specialists USING gin (translate(lower(full_name), 'ё', 'е') gin_trgm_ops);
CREATE INDEX specialities_name_trgm_idx
    ON specialities USING gin (translate(lower(name), 'ё', 'е') gin_trgm_ops);
