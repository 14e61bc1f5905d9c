//! The limits a booking meets before it reaches the MIS: how many upcoming visits a patient
//! may hold, how many bookings an account may make a day, and whether a visitor without an
//! account must prove the phone. (The SMS cap per phone is `PhoneChecks::day_is_full`.)

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use super::BookingError;
use crate::db::models::record;

/// The booking rules of this clinic (configuration).
#[derive(Debug, Clone)]
pub struct BookingRules {
    /// `ANONYMOUS_BOOKING_VERIFY=sms`: a booking without an account needs a phone proof.
    pub anonymous_verify: bool,
    /// `MAX_ACTIVE_RECORDS_PER_PATIENT`: upcoming booked visits per account.
    pub max_upcoming: u32,
    /// `BOOKING_LIMIT_PER_PATIENT_DAY`: bookings an account may make in 24 hours.
    pub bookings_per_day: u32,
    /// Where the site is, for the visit link in an SMS.
    pub public_base_url: String,
    /// `SCHEDULE_HORIZON_DAYS`: the last day a schedule read may ask for, from today.
    pub schedule_horizon_days: u32,
    /// `SCHEDULE_UNCACHED_READS_PER_IP_MINUTE`: schedule reads that miss the cache per
    /// client address a minute.
    pub uncached_reads_per_minute: u32,
}

impl Default for BookingRules {
    fn default() -> Self {
        Self {
            anonymous_verify: true,
            max_upcoming: 5,
            bookings_per_day: 10,
            public_base_url: "http://127.0.0.1:8080".into(),
            schedule_horizon_days: 90,
            uncached_reads_per_minute: 30,
        }
    }
}

const DAY_SECS: i64 = 24 * 3600;

impl BookingRules {
    /// The limits of an account's booking: upcoming visits, bookings today.
    pub async fn check_account(
        &self,
        conn: &mut AsyncPgConnection,
        user_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), BookingError> {
        let upcoming = record::count_upcoming(conn, user_id, now).await?;
        if upcoming >= i64::from(self.max_upcoming) {
            return Err(BookingError::TooManyUpcoming {
                max: self.max_upcoming,
            });
        }
        let since = now - chrono::Duration::seconds(DAY_SECS);
        let made = record::created_since(conn, user_id, since).await?;
        if made.len() >= self.bookings_per_day as usize {
            // The window frees up when the oldest booking in it turns a day old.
            let oldest = made.iter().min().copied().unwrap_or(now);
            let wait = (oldest + chrono::Duration::seconds(DAY_SECS) - now).num_seconds();
            return Err(BookingError::RateLimited {
                retry_after_secs: u64::try_from(wait).unwrap_or(0).max(1),
            });
        }
        Ok(())
    }

    /// The link to manage an anonymous visit, as the SMS carries it.
    pub fn visit_link(&self, token: &str) -> String {
        format!("{}/v/{token}", self.public_base_url)
    }
}
