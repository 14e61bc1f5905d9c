DROP INDEX specialities_name_trgm_idx;
DROP INDEX specialists_full_name_trgm_idx;
-- pg_trgm stays: another database object may have come to use it.
ALTER TABLE schedule_snapshots DROP COLUMN free_starts;
ALTER TABLE branches DROP COLUMN work_hours;
