//! The limits a booking meets before it reaches the MIS: how many upcoming visits a patient
//! may hold, how many bookings an account may make a day, and whether a visitor without an
//! account must prove the phone. (The SMS cap per phone is `PhoneChecks::day_is_full`.)

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use diesel_async::AsyncPgConnection;

use super::{
    BookingError,
    notify::{self, Notice, NoticeFacts},
};
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
    /// `CLINIC_PHONE`: the number every SMS about a visit gives.
    pub clinic_phone: String,
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
            clinic_phone: super::notify::DEFAULT_CLINIC_PHONE.into(),
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

    /// The record's page in the cabinet, where an account holder manages the visit.
    pub fn cabinet_link(&self, record_id: i64) -> String {
        format!("{}/cabinet/records/{record_id}", self.public_base_url)
    }

    /// The text of `notice` about a visit with `doctor` at `address` (see `place()` of a
    /// record or a target) starting at `start` in the branch's zone, with the clinic's phone
    /// and where the patient manages the visit.
    pub fn notice_text(
        &self,
        notice: Notice,
        (doctor, address): (&str, &str),
        start: DateTime<Tz>,
        manage_link: Option<&str>,
    ) -> String {
        notify::text(
            notice,
            &NoticeFacts {
                doctor,
                address,
                start,
                clinic_phone: &self.clinic_phone,
                manage_link,
            },
        )
    }

    /// Where the patient of a visit manages it, as an SMS or a calendar event carries it: the
    /// visit link when its token is at hand, the cabinet for an account holder, or none (a
    /// visit without an account whose link token was never kept).
    pub fn manage_link(
        &self,
        record_id: i64,
        user_id: Option<i64>,
        token: Option<&str>,
    ) -> Option<String> {
        match (token, user_id) {
            (Some(token), _) => Some(self.visit_link(token)),
            (None, Some(_)) => Some(self.cabinet_link(record_id)),
            (None, None) => None,
        }
    }
}

/// Characters of a visit link's token: 22 letters and digits carry 130 bits (62^22), and
/// keep the link short enough for an SMS of two segments.
pub const LINK_TOKEN_LEN: usize = 22;

/// A fresh token for a visit link, from the OS generator.
pub fn new_link_token() -> String {
    use rand::{Rng, distr::Alphanumeric};
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(LINK_TOKEN_LEN)
        .map(char::from)
        .collect()
}

/// Whether `token` is shaped like a visit link's token: 22 letters and digits, or 32 hex
/// digits (the links sent before the shorter tokens, still valid until their visits).
pub fn is_link_token(token: &str) -> bool {
    match token.len() {
        LINK_TOKEN_LEN => token.bytes().all(|b| b.is_ascii_alphanumeric()),
        32 => token.bytes().all(|b| b.is_ascii_hexdigit()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_tokens_are_short_random_and_recognised() {
        let (a, b) = (new_link_token(), new_link_token());
        assert_eq!(a.len(), LINK_TOKEN_LEN);
        assert_ne!(a, b);
        assert!(is_link_token(&a));
        assert!(
            is_link_token(&"0f".repeat(16)),
            "the older hex links still open"
        );
        let (not_hex, too_long) = ("g".repeat(32), "a".repeat(23));
        for bad in [
            "",
            "short",
            "../../etc/passwd-aaaa",
            not_hex.as_str(),
            too_long.as_str(),
        ] {
            assert!(!is_link_token(bad), "{bad}");
        }
    }

    #[test]
    fn the_manage_link_is_the_visit_link_or_the_cabinet() {
        let rules = BookingRules {
            public_base_url: "https://lk.sovamed.ru".into(),
            ..BookingRules::default()
        };
        assert_eq!(
            rules.manage_link(7, Some(3), None).as_deref(),
            Some("https://lk.sovamed.ru/cabinet/records/7")
        );
        assert_eq!(
            rules.manage_link(7, None, Some("abc")).as_deref(),
            Some("https://lk.sovamed.ru/v/abc")
        );
        assert_eq!(rules.manage_link(7, None, None), None);
    }
}
