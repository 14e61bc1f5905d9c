//! The reminder marks of `records`: which visits are due their reminder SMS, marked in the
//! transaction that queues it (`domain::booking::reminders`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::records;

#[derive(QueryableByName)]
struct Marked {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

/// Marks up to `limit` booked visits due a reminder at `now` and returns their ids: those
/// starting within `hours_before` hours whose start was set at least that long before it,
/// and not reminded of since. Rows another transaction is marking are skipped, and a row
/// marked meanwhile fails the re-check, so a visit is marked by one transaction only.
pub async fn mark_due(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    hours_before: u32,
    limit: i64,
) -> QueryResult<Vec<i64>> {
    let hours = i32::try_from(hours_before).unwrap_or(i32::MAX);
    let marked: Vec<Marked> = diesel::sql_query(
        "UPDATE records SET reminder_queued_at = $1 \
         WHERE id IN (SELECT id FROM records \
                      WHERE status = 'booked' AND reminder_queued_at IS NULL \
                        AND starts_at > $1 AND starts_at <= $1 + make_interval(hours => $2) \
                        AND scheduled_at <= starts_at - make_interval(hours => $2) \
                      ORDER BY starts_at, id \
                      FOR UPDATE SKIP LOCKED LIMIT $3) \
           AND reminder_queued_at IS NULL \
         RETURNING id",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(now)
    .bind::<diesel::sql_types::Integer, _>(hours)
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(marked.into_iter().map(|m| m.id).collect())
}

/// Gives a visit booked without an account the link of its reminder (the SHA-256 of its
/// token); the link of its booking SMS keeps working.
pub async fn set_link_token(
    conn: &mut AsyncPgConnection,
    id: i64,
    token_hash: &str,
) -> QueryResult<usize> {
    diesel::update(records::table.find(id))
        .set(records::reminder_token_hash.eq(token_hash))
        .execute(conn)
        .await
}
