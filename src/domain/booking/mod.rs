//! Booking: the schedule cache, book/move/cancel through the MIS, the records a user may
//! see, the limits on anonymous booking and the SMS outbox. Pages, the API and the CLI all
//! go through [`Booking`]'s operations; none of them knows HTTP.

pub mod calendar;
pub mod change;
pub mod desk;
pub mod error;
pub mod feed;
pub mod grid;
mod intent;
pub mod limits;
pub mod notify;
pub mod outbox;
pub mod patient;
pub mod reading;
pub mod ready;
pub mod reconcile;
pub mod records;
pub mod reminders;
pub mod reserve;
pub(crate) mod rounds;
pub mod rules;
pub mod schedule;
pub mod steps;
pub mod target;

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;

pub use error::{BookingError, Change, TargetError};
pub use patient::Patient;
pub use reserve::{AnonymousBooking, AnswerToKeep, BookRequest};
pub use rules::BookingRules;
pub use target::BookingTarget;

use crate::{
    db::{DbConn, DbPool},
    domain::{clock::Clock, directory_snapshot::Directory},
    integrations::{infoclinica::MisBooking, sms::SmsGateway},
    redis::Redis,
};

/// What booking needs at hand, and nothing more.
#[derive(Clone)]
pub struct Booking {
    pub db: DbPool,
    pub redis: Redis,
    pub mis: Arc<dyn MisBooking>,
    pub sms: Arc<dyn SmsGateway>,
    pub schedule: schedule::ScheduleCache,
    /// The directory in memory, for read paths ([`Booking::read_target`]) and a visitor's
    /// early slot lookup (checked against PostgreSQL before it serves).
    pub directory: Directory,
    pub limits: limits::ReserveLimits,
    pub clock: Clock,
    /// Wakes the outbox worker right after a message is queued.
    pub outbox_wakeup: Arc<Notify>,
    /// First retry delay of an SMS (`SMS_RETRY_BASE_SECONDS`).
    pub sms_retry_base: Duration,
    /// Phone proofs, which a booking without an account needs.
    pub phones: crate::domain::phones::PhoneChecks,
    pub rules: BookingRules,
}

impl Booking {
    async fn conn(&self) -> Result<DbConn, BookingError> {
        Ok(self.db.get().await?)
    }
}
