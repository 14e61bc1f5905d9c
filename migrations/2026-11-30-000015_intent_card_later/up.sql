-- A booking for a patient without an MIS card yet writes its intent while the MIS adds the
-- card, so the intent may have no card for a moment. The card is written into the intent
-- (committed) before the MIS is asked for the appointment: an intent still without a card
-- was never booked in the MIS, and the reconciler marks it failed without asking.
ALTER TABLE booking_intents ALTER COLUMN pcode DROP NOT NULL;
COMMENT ON COLUMN booking_intents.pcode IS
    'The MIS patient card; NULL only while a new card is being added, and then no appointment was asked for.';
