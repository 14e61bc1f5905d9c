DROP INDEX audit_events_subject_idx;
DROP INDEX audit_events_action_idx;
DROP INDEX users_full_name_idx;
DROP INDEX users_phone_idx;
DROP INDEX records_patient_surname_idx;
ALTER TABLE users DROP COLUMN last_login_at;
ALTER TABLE users DROP COLUMN preferred_branch_id;
ALTER TABLE records DROP COLUMN booked_by;
DELETE FROM records WHERE source = 'desk';
ALTER TABLE records DROP CONSTRAINT records_source_check;
ALTER TABLE records ADD CONSTRAINT records_source_check
    CHECK (source IN ('cabinet', 'anonymous', 'api', 'clinic'));
