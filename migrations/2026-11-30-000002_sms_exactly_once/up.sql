-- SMS exactly once: a send whose outcome is unknown is held as 'unknown' instead of being
-- sent again blindly, and the delivery report of a sent message is tracked.
ALTER TABLE sms_outbox DROP CONSTRAINT sms_outbox_status_check;
ALTER TABLE sms_outbox ADD CONSTRAINT sms_outbox_status_check
    CHECK (status IN ('pending', 'sending', 'unknown', 'sent', 'failed'));

-- NULL until sent, or when the gateway gives no delivery reports; 'pending' while the
-- gateway's status is not final.
ALTER TABLE sms_outbox ADD COLUMN delivery TEXT
    CHECK (delivery IN ('pending', 'delivered', 'undelivered', 'expired'));
-- The gateway's last status code for the message (SMS.ru: 100..108, 110, 150, -1).
ALTER TABLE sms_outbox ADD COLUMN delivery_code INTEGER;
-- When the final delivery state was learnt.
ALTER TABLE sms_outbox ADD COLUMN delivered_at TIMESTAMPTZ;
-- When the delivery status is to be asked next (only while delivery = 'pending').
ALTER TABLE sms_outbox ADD COLUMN next_check_at TIMESTAMPTZ;

CREATE INDEX sms_outbox_check_idx ON sms_outbox (next_check_at)
    WHERE status = 'sent' AND delivery = 'pending';
CREATE INDEX sms_outbox_unknown_idx ON sms_outbox (updated_at) WHERE status IN ('sending', 'unknown');
