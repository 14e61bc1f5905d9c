-- Records the clinic's front desk created in the MIS for a patient with a cabinet account,
-- brought in by the change feed.
ALTER TABLE records DROP CONSTRAINT records_source_check;
ALTER TABLE records ADD CONSTRAINT records_source_check
    CHECK (source IN ('cabinet', 'anonymous', 'api', 'clinic'));
