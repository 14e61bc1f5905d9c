-- The front desk: records booked by staff for a caller, and who booked each record; the
-- operator's branch; the last login shown to admins; indexes for the desk's patient search
-- (surnames with ё folded into е; records_phone_idx exists) and the admin audit screen.
ALTER TABLE records DROP CONSTRAINT records_source_check;
ALTER TABLE records ADD CONSTRAINT records_source_check
    CHECK (source IN ('cabinet', 'anonymous', 'api', 'clinic', 'desk'));
-- The account that made the booking: the patient (cabinet, API), a staff member (desk);
-- NULL for a website visitor without an account and for the clinic's own bookings.
ALTER TABLE records ADD COLUMN booked_by BIGINT REFERENCES users (id);

ALTER TABLE users ADD COLUMN preferred_branch_id BIGINT REFERENCES branches (id);
ALTER TABLE users ADD COLUMN last_login_at TIMESTAMPTZ;

CREATE INDEX records_patient_surname_idx ON records (translate(lower(patient_last_name), 'ё', 'е'));
CREATE INDEX users_phone_idx ON users (phone);
CREATE INDEX users_full_name_idx ON users (translate(lower(full_name), 'ё', 'е'));
CREATE INDEX audit_events_action_idx ON audit_events (action, occurred_at);
CREATE INDEX audit_events_subject_idx ON audit_events (subject, occurred_at);
