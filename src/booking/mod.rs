//! Booking: the schedule cache, reserve/move/cancel through the MIS, the limits on anonymous
//! booking, and the SMS outbox. The operations web pages, the API and the CLI share.

pub mod grid;
pub mod idempotent;
pub mod limits;
pub mod notify;
pub mod outbox;
pub mod prefetch;
pub mod reserve;
pub mod schedule;
pub mod view;

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;

use crate::integrations::{infoclinica::MisBooking, sms::SmsGateway};

/// What booking needs at hand.
#[derive(Clone)]
pub struct Booking {
    pub mis: Arc<dyn MisBooking>,
    pub sms: Arc<dyn SmsGateway>,
    pub schedule: schedule::ScheduleCache,
    pub limits: limits::ReserveLimits,
    /// Wakes the outbox worker right after a message is queued.
    pub outbox_wakeup: Arc<Notify>,
    /// First retry delay of an SMS (`SMS_RETRY_BASE_SECONDS`).
    pub sms_retry_base: Duration,
}
