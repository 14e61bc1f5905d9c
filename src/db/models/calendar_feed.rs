//! The `calendar_feeds` table (one private calendar address per patient account) and the
//! iCalendar SEQUENCE of records (`records.calendar_sequence`, kept by a trigger).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::{calendar_feeds, records, users};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = calendar_feeds, check_for_backend(diesel::pg::Pg))]
pub struct CalendarFeed {
    pub user_id: i64,
    /// The secret of the address; shown to its owner only.
    pub token: String,
    pub created_at: DateTime<Utc>,
}

/// The account's feed, if it has one.
pub async fn find_for_user(
    conn: &mut AsyncPgConnection,
    user_id: i64,
) -> QueryResult<Option<CalendarFeed>> {
    calendar_feeds::table
        .find(user_id)
        .select(CalendarFeed::as_select())
        .first(conn)
        .await
        .optional()
}

/// Gives the account the feed `token` (its SHA-256 `token_hash`), replacing the one it had.
pub async fn replace(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    token: &str,
    token_hash: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(calendar_feeds::table)
        .values((
            calendar_feeds::user_id.eq(user_id),
            calendar_feeds::token.eq(token),
            calendar_feeds::token_hash.eq(token_hash),
            calendar_feeds::created_at.eq(now),
        ))
        .on_conflict(calendar_feeds::user_id)
        .do_update()
        .set((
            calendar_feeds::token.eq(token),
            calendar_feeds::token_hash.eq(token_hash),
            calendar_feeds::created_at.eq(now),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Takes the account's feed away; whether it had one.
pub async fn delete_for_user(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<bool> {
    diesel::delete(calendar_feeds::table.find(user_id))
        .execute(conn)
        .await
        .map(|n| n == 1)
}

/// The account a feed token (by its SHA-256) belongs to, while that account is open: a
/// disabled account (closed by its owner, or by an admin) serves no feed.
pub async fn owner_of(conn: &mut AsyncPgConnection, token_hash: &str) -> QueryResult<Option<i64>> {
    calendar_feeds::table
        .inner_join(users::table)
        .filter(calendar_feeds::token_hash.eq(token_hash))
        .filter(users::disabled.eq(false))
        .filter(users::anonymised_at.is_null())
        .select(calendar_feeds::user_id)
        .first(conn)
        .await
        .optional()
}

/// The SEQUENCE of each of `ids`, as (record id, sequence).
pub async fn sequences(conn: &mut AsyncPgConnection, ids: &[i64]) -> QueryResult<Vec<(i64, i32)>> {
    records::table
        .filter(records::id.eq_any(ids.to_vec()))
        .select((records::id, records::calendar_sequence))
        .load(conn)
        .await
}
