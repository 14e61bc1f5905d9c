-- The doctor list's nearest free time without a pass over every stored day: each day's first
-- free start (the starts are written in order), indexed per doctor, so "the first stored day
-- whose first free start is still ahead" is one index seek per doctor. Only today's (and
-- yesterday's, for a visit past midnight) days need their whole array, when their first free
-- start has passed.
UPDATE schedule_snapshots
   SET free_starts = ARRAY(SELECT s FROM unnest(free_starts) AS s ORDER BY s)
 WHERE cardinality(free_starts) > 1;

ALTER TABLE schedule_snapshots
    ADD COLUMN first_free TIMESTAMPTZ GENERATED ALWAYS AS (free_starts[1]) STORED;

CREATE INDEX schedule_snapshots_first_free_idx
    ON schedule_snapshots (specialist_id, first_free)
    WHERE first_free IS NOT NULL;
