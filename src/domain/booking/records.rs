//! The records a user may see: a patient their own, staff and admins every one. Another
//! patient's record is "not found", so its existence is not revealed.

use chrono::NaiveDate;

use super::{Booking, BookingError};
use crate::{
    db::models::{
        outbox::{self, OutboxMessage},
        record::{self, RecordFilter, RecordView},
        user::User,
    },
    domain::{
        audit::Actor,
        phones::sha256_hex,
        values::{CancelReason, PageNo, RecordStatus, SearchText},
    },
};

/// Records per page of every list.
pub const PER_PAGE: i64 = 20;

/// What a list asks for, from validated values. Days are the branch's calendar days.
#[derive(Debug, Clone, Default)]
pub struct RecordQuery {
    pub status: Option<RecordStatus>,
    pub date_from: Option<NaiveDate>,
    pub date_to: Option<NaiveDate>,
    pub specialist_id: Option<i64>,
    pub branch_id: Option<i64>,
    /// A phone fragment or a name; staff only (ignored for patients).
    pub search: Option<SearchText>,
    /// Only visits still ahead.
    pub upcoming: bool,
    /// Records per page; [`PER_PAGE`] when `None`.
    pub per_page: Option<i64>,
}

/// One page of a list and the total.
#[derive(Debug, Clone)]
pub struct RecordPage {
    pub items: Vec<RecordView>,
    pub total: i64,
    pub page: PageNo,
    pub per_page: i64,
}

impl RecordPage {
    pub fn pages(&self) -> i64 {
        PageNo::count(self.total, self.per_page)
    }
}

impl Booking {
    /// A record `viewer` may see.
    pub async fn visible_record(&self, viewer: &User, id: i64) -> Result<RecordView, BookingError> {
        let conn = self.conn().await?;
        let view = record::find_view(&conn, id)
            .await?
            .ok_or(BookingError::RecordNotFound)?;
        if viewer.role().is_staff() || view.record.user_id == Some(viewer.id) {
            Ok(view)
        } else {
            Err(BookingError::RecordNotFound)
        }
    }

    /// Cancels a record `viewer` may see, as them, keeping the reason they gave, if any.
    pub async fn cancel_record(
        &self,
        viewer: &User,
        id: i64,
        reason: Option<&CancelReason>,
        ip: std::net::IpAddr,
    ) -> Result<RecordView, BookingError> {
        let view = self.visible_record(viewer, id).await?;
        self.cancel_giving_reason(&view, Actor::user(viewer, ip), reason)
            .await
    }

    /// Moves a record `viewer` may see to `start`, as them.
    pub async fn reschedule_record(
        &self,
        viewer: &User,
        id: i64,
        start: chrono::DateTime<chrono::Utc>,
        ip: std::net::IpAddr,
    ) -> Result<RecordView, BookingError> {
        let view = self.visible_record(viewer, id).await?;
        self.reschedule(&view, start, Actor::user(viewer, ip)).await
    }

    /// A record with its SMS history, for a viewer who may see it.
    pub async fn record_with_messages(
        &self,
        viewer: &User,
        id: i64,
    ) -> Result<(RecordView, Vec<OutboxMessage>), BookingError> {
        let view = self.visible_record(viewer, id).await?;
        let mut conn = self.conn().await?;
        let messages = outbox::for_record(&mut conn, view.record.id).await?;
        Ok((view, messages))
    }

    /// The filter of `viewer`'s list: a patient's is always their own records.
    fn filter_for(&self, viewer: &User, query: &RecordQuery) -> RecordFilter {
        let staff = viewer.role().is_staff();
        RecordFilter {
            user_id: (!staff).then_some(viewer.id),
            status: query.status,
            from: query.date_from,
            to: query.date_to,
            after: query.upcoming.then(|| self.clock.now()),
            specialist_id: query.specialist_id,
            branch_id: query.branch_id,
            query: query
                .search
                .as_ref()
                .filter(|_| staff)
                .map(|s| s.as_str().to_owned()),
        }
    }

    /// One page of the records `viewer` may see, soonest first.
    pub async fn list_records(
        &self,
        viewer: &User,
        query: &RecordQuery,
        page: PageNo,
    ) -> Result<RecordPage, BookingError> {
        let filter = self.filter_for(viewer, query);
        let per_page = query.per_page.unwrap_or(PER_PAGE);
        let mut conn = self.conn().await?;
        let (items, total) = record::list_views(&mut conn, &filter, page, per_page).await?;
        Ok(RecordPage {
            items,
            total,
            page,
            per_page,
        })
    }

    /// The next `limit` records of a staff list after `after` (the last one's start and
    /// id), in the list's order: an export reads the whole list a chunk at a time, so its
    /// memory does not grow with the list.
    pub async fn export_chunk(
        &self,
        viewer: &User,
        query: &RecordQuery,
        after: Option<(chrono::DateTime<chrono::Utc>, i64)>,
        limit: i64,
    ) -> Result<Vec<RecordView>, BookingError> {
        if !viewer.role().is_staff() {
            return Err(BookingError::NotStaff);
        }
        let filter = self.filter_for(viewer, query);
        let mut conn = self.conn().await?;
        Ok(record::views_after(&mut conn, &filter, after, limit).await?)
    }

    /// The accounts whose records a staff list holds: who an export shows.
    pub async fn export_accounts(
        &self,
        viewer: &User,
        query: &RecordQuery,
    ) -> Result<Vec<i64>, BookingError> {
        if !viewer.role().is_staff() {
            return Err(BookingError::NotStaff);
        }
        let filter = self.filter_for(viewer, query);
        let mut conn = self.conn().await?;
        Ok(record::account_ids(&mut conn, &filter).await?)
    }

    /// The visit behind a link from an SMS, while it is ahead (the link dies when the visit
    /// starts). Anything else is "not found".
    pub async fn visit_by_link(&self, token: &str) -> Result<RecordView, BookingError> {
        let token = token.trim();
        // Only what our tokens look like is looked up.
        if !super::rules::is_link_token(token) {
            return Err(BookingError::RecordNotFound);
        }
        let mut conn = self.conn().await?;
        let view = record::find_view_by_manage_token(&mut conn, &sha256_hex(token))
            .await?
            .ok_or(BookingError::RecordNotFound)?;
        if view.record.starts_at <= self.clock.now() {
            return Err(BookingError::RecordNotFound);
        }
        Ok(view)
    }

    /// Cancels the visit behind a link, as the anonymous visitor at `ip`, keeping the reason
    /// they gave, if any.
    pub async fn cancel_by_link(
        &self,
        token: &str,
        reason: Option<&CancelReason>,
        ip: std::net::IpAddr,
    ) -> Result<RecordView, BookingError> {
        let view = self.visit_by_link(token).await?;
        self.cancel_giving_reason(&view, Actor { user_id: None, ip }, reason)
            .await
    }

    /// Moves the visit behind a link to `start`, as the anonymous visitor at `ip`.
    pub async fn reschedule_by_link(
        &self,
        token: &str,
        start: chrono::DateTime<chrono::Utc>,
        ip: std::net::IpAddr,
    ) -> Result<RecordView, BookingError> {
        let view = self.visit_by_link(token).await?;
        self.reschedule(&view, start, Actor { user_id: None, ip })
            .await
    }

    /// The patient's other booked visits that overlap `[start, end)`: a warning, not a
    /// refusal (two members of a family may share an account).
    pub async fn overlapping_visits(
        &self,
        user: &User,
        span: (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
        except: Option<i64>,
    ) -> Result<Vec<RecordView>, BookingError> {
        let mut conn = self.conn().await?;
        Ok(record::overlapping(&mut conn, user.id, span, except).await?)
    }
}
