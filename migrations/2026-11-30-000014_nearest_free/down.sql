DROP INDEX schedule_snapshots_first_free_idx;
ALTER TABLE schedule_snapshots DROP COLUMN first_free;
