//! The `sms_outbox` table: messages to send, written in the same transaction as the record
//! they are about; the worker claims rows with `FOR UPDATE SKIP LOCKED`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::sms_outbox;

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = sms_outbox, check_for_backend(diesel::pg::Pg))]
pub struct OutboxMessage {
    pub id: i64,
    pub record_id: Option<i64>,
    pub kind: String,
    pub phone: String,
    pub body: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub provider_id: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = sms_outbox)]
pub struct NewOutboxMessage<'a> {
    pub record_id: Option<i64>,
    pub kind: &'a str,
    pub phone: &'a str,
    pub body: &'a str,
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    message: &NewOutboxMessage<'_>,
) -> QueryResult<()> {
    diesel::insert_into(sms_outbox::table)
        .values(message)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Claims up to `limit` due messages: they become `sending` with one more attempt. Rows that
/// another worker holds are skipped, not waited for.
pub async fn claim_due(
    conn: &mut AsyncPgConnection,
    limit: i64,
) -> QueryResult<Vec<OutboxMessage>> {
    diesel::sql_query(
        "UPDATE sms_outbox SET status = 'sending', attempts = attempts + 1, updated_at = now() \
         WHERE id IN (SELECT id FROM sms_outbox WHERE status = 'pending' AND next_attempt_at <= now() \
                      ORDER BY next_attempt_at, id FOR UPDATE SKIP LOCKED LIMIT $1) \
         RETURNING *",
    )
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .load(conn)
    .await
}

/// Messages left in `sending` by a worker that died go back to the queue (at-least-once).
pub async fn requeue_stuck(
    conn: &mut AsyncPgConnection,
    older_than: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        sms_outbox::table
            .filter(sms_outbox::status.eq("sending"))
            .filter(sms_outbox::updated_at.lt(older_than)),
    )
    .set((
        sms_outbox::status.eq("pending"),
        sms_outbox::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await
}

pub async fn mark_sent(
    conn: &mut AsyncPgConnection,
    id: i64,
    provider_id: &str,
) -> QueryResult<usize> {
    diesel::update(sms_outbox::table.find(id))
        .set((
            sms_outbox::status.eq("sent"),
            sms_outbox::provider_id.eq(provider_id),
            sms_outbox::sent_at.eq(diesel::dsl::now),
            sms_outbox::last_error.eq(None::<String>),
            sms_outbox::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}

pub async fn mark_retry(
    conn: &mut AsyncPgConnection,
    id: i64,
    error: &str,
    at: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(sms_outbox::table.find(id))
        .set((
            sms_outbox::status.eq("pending"),
            sms_outbox::last_error.eq(error),
            sms_outbox::next_attempt_at.eq(at),
            sms_outbox::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}

pub async fn mark_failed(conn: &mut AsyncPgConnection, id: i64, error: &str) -> QueryResult<usize> {
    diesel::update(sms_outbox::table.find(id))
        .set((
            sms_outbox::status.eq("failed"),
            sms_outbox::last_error.eq(error),
            sms_outbox::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}

/// The messages about one record, oldest first.
pub async fn for_record(
    conn: &mut AsyncPgConnection,
    record_id: i64,
) -> QueryResult<Vec<OutboxMessage>> {
    sms_outbox::table
        .filter(sms_outbox::record_id.eq(record_id))
        .order(sms_outbox::id)
        .select(OutboxMessage::as_select())
        .load(conn)
        .await
}

/// Messages not yet sent (pending or sending): the outbox depth.
pub async fn depth(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    sms_outbox::table
        .filter(sms_outbox::status.eq_any(["pending", "sending"]))
        .count()
        .get_result(conn)
        .await
}
