DELETE FROM records WHERE source = 'clinic';
ALTER TABLE records DROP CONSTRAINT records_source_check;
ALTER TABLE records ADD CONSTRAINT records_source_check
    CHECK (source IN ('cabinet', 'anonymous', 'api'));
