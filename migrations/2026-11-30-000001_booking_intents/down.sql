DROP TABLE booking_intents;
