-- A patient's access log (`/cabinet/access-log`) looks audit events up by the record named in
-- their details (`sms_resent`, `access_denied`) and by the patients a list or an export showed
-- (`records_listed`, `records_exported`: `details.patients`, a JSON array of account ids).
CREATE INDEX audit_events_record_ref_idx ON audit_events ((details ->> 'record_id'));
CREATE INDEX audit_events_patients_idx ON audit_events USING gin ((details -> 'patients') jsonb_path_ops);
