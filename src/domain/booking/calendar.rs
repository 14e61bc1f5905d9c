//! Calendars of visits, the data side: a patient's private calendar feed and the SEQUENCE of
//! each visit. The `.ics` text itself is written by the web face (`web::ics`).
//!
//! The feed is a secret address (`/calendar/<token>.ics`) that a calendar app reads without
//! logging in: the patient's visits from [`FEED_DAYS_BACK`] days ago on, cancelled and moved
//! ones included (a trigger raises `records.calendar_sequence` at every change of time or
//! status, so apps update their events instead of keeping ghosts). One address per account;
//! a new one replaces the old, which stops working at once.
//!
//! The token is 128 random bits, looked up by its SHA-256. It is kept as well, so that the
//! patient can copy the address again later: it reads nothing but visits this database holds
//! anyway, so keeping it exposes nothing a reader of the database could not see already.

use std::net::IpAddr;

use super::{Booking, BookingError};
use crate::{
    db::models::{
        calendar_feed::{self, CalendarFeed},
        record::{self, RecordFilter, RecordView},
        user::User,
    },
    domain::{
        audit::{self, Actor},
        phones::{random_hex, sha256_hex},
    },
};

/// The feed lists visits from this many days ago on.
pub const FEED_DAYS_BACK: i64 = 30;

/// Events in one feed at most (far more than anyone's visits in that time).
const FEED_LIMIT: i64 = 500;

/// Where a feed read is said to happen in the audit trail; the token itself never is.
pub const FEED_PLACE: &str = "/calendar/….ics";

/// A visit as a calendar shows it.
#[derive(Debug, Clone)]
pub struct CalendarVisit {
    pub view: RecordView,
    /// `records.calendar_sequence`: one more at every change of the visit's time or status.
    pub sequence: i32,
}

/// Whether `token` is shaped like a feed token (32 hex digits): nothing else is looked up.
fn is_feed_token(token: &str) -> bool {
    token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Booking {
    /// The account's calendar feed, if it has one.
    pub async fn calendar_feed_of(
        &self,
        user: &User,
    ) -> Result<Option<CalendarFeed>, BookingError> {
        let mut conn = self.conn().await?;
        Ok(calendar_feed::find_for_user(&mut conn, user.id).await?)
    }

    /// A new feed address for the account; the one it had stops working.
    pub async fn issue_calendar_feed(
        &self,
        user: &User,
        ip: IpAddr,
    ) -> Result<CalendarFeed, BookingError> {
        let token = random_hex(16);
        let now = self.clock.now();
        let mut conn = self.conn().await?;
        calendar_feed::replace(&mut conn, user.id, &token, &sha256_hex(&token), now).await?;
        drop(conn);
        audit::append(
            &self.db,
            Actor::user(user, ip),
            "calendar_feed_issued",
            &user.id.to_string(),
        )
        .await;
        Ok(CalendarFeed {
            user_id: user.id,
            token,
            created_at: now,
        })
    }

    /// Turns the account's feed off; whether it had one.
    pub async fn revoke_calendar_feed(
        &self,
        user: &User,
        ip: IpAddr,
    ) -> Result<bool, BookingError> {
        let mut conn = self.conn().await?;
        let revoked = calendar_feed::delete_for_user(&mut conn, user.id).await?;
        drop(conn);
        if revoked {
            audit::append(
                &self.db,
                Actor::user(user, ip),
                "calendar_feed_revoked",
                &user.id.to_string(),
            )
            .await;
        }
        Ok(revoked)
    }

    /// The visits of the feed behind `token`, read by whoever holds it from `ip`: soonest
    /// first, from [`FEED_DAYS_BACK`] days ago. An unknown or replaced token, or the feed of
    /// a closed account, is "not found". The read is audited as a list of the patient's
    /// records seen by someone without a login.
    pub async fn calendar_feed_visits(
        &self,
        token: &str,
        ip: IpAddr,
    ) -> Result<Vec<CalendarVisit>, BookingError> {
        let token = token.trim();
        if !is_feed_token(token) {
            return Err(BookingError::RecordNotFound);
        }
        let mut conn = self.conn().await?;
        let owner = calendar_feed::owner_of(&mut conn, &sha256_hex(token))
            .await?
            .ok_or(BookingError::RecordNotFound)?;
        let filter = RecordFilter {
            user_id: Some(owner),
            after: Some(self.clock.now() - chrono::Duration::days(FEED_DAYS_BACK)),
            ..RecordFilter::default()
        };
        let views = record::views_after(&mut conn, &filter, None, FEED_LIMIT).await?;
        let visits = with_sequences(&mut conn, views).await?;
        drop(conn);
        let views: Vec<RecordView> = visits.iter().map(|v| v.view.clone()).collect();
        audit::append_listed(&self.db, Actor { user_id: None, ip }, FEED_PLACE, &views).await;
        Ok(visits)
    }

    /// A visit already shown to its viewer, with its SEQUENCE.
    pub async fn calendar_visit(&self, view: RecordView) -> Result<CalendarVisit, BookingError> {
        let mut conn = self.conn().await?;
        let mut visits = with_sequences(&mut conn, vec![view]).await?;
        visits.pop().ok_or(BookingError::RecordNotFound)
    }
}

/// `views` with their SEQUENCE numbers, in the same order.
async fn with_sequences(
    conn: &mut diesel_async::AsyncPgConnection,
    views: Vec<RecordView>,
) -> Result<Vec<CalendarVisit>, BookingError> {
    let ids: Vec<i64> = views.iter().map(|v| v.record.id).collect();
    let sequences = calendar_feed::sequences(conn, &ids).await?;
    Ok(views
        .into_iter()
        .map(|view| {
            let sequence = sequences
                .iter()
                .find(|(id, _)| *id == view.record.id)
                .map_or(0, |(_, sequence)| *sequence);
            CalendarVisit { view, sequence }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_feed_shaped_tokens_are_looked_up() {
        assert!(is_feed_token(&random_hex(16)));
        let (not_hex, too_long) = ("z".repeat(32), "a".repeat(33));
        for bad in ["", "abc", not_hex.as_str(), too_long.as_str()] {
            assert!(!is_feed_token(bad), "{bad}");
        }
    }
}
