-- Intents that never got a card were never booked in the MIS: nothing to keep of them.
DELETE FROM booking_intents WHERE pcode IS NULL;
ALTER TABLE booking_intents ALTER COLUMN pcode SET NOT NULL;
