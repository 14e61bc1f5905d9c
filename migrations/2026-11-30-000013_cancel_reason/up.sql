-- Why the patient cancelled a visit, in their own words (optional, at most 200 characters,
-- checked by the application); NULL when no reason was given or the record is not cancelled.
-- Personal text: erased with the patient's other fields when the account is anonymised.
ALTER TABLE records ADD COLUMN cancel_reason TEXT;
