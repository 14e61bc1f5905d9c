DROP INDEX audit_events_patients_idx;
DROP INDEX audit_events_record_ref_idx;
