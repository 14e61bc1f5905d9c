//! The `sms_outbox` table: messages to send, written in the same transaction as the record
//! they are about; the worker claims rows with `FOR UPDATE SKIP LOCKED`.
//!
//! `status` moves only along the edges of the state machine in
//! `domain::booking::outbox`: every write below names the state it leaves (`WHERE status =
//! ...`), so two workers, or a worker and the recovery sweep, can never both move one
//! message, and a late write does not undo a later state.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::prepared::KeepPrepared;

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
    /// After `sent`: `pending` until the gateway's status is final, then `delivered`,
    /// `undelivered` or `expired`; `None` when the gateway gives no delivery reports.
    pub delivery: Option<String>,
    /// The gateway's last status code (SMS.ru `sms/status`).
    pub delivery_code: Option<i32>,
    /// When the final delivery state was learnt.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When the delivery status is asked next.
    pub next_check_at: Option<DateTime<Utc>>,
}

/// The states of `sms_outbox.status`.
pub mod status {
    /// Waiting for its (next) attempt.
    pub const PENDING: &str = "pending";
    /// Claimed by a worker, in the gateway's hands right now.
    pub const SENDING: &str = "sending";
    /// Sent, but whether the gateway took it is not known (no answer, or the worker died
    /// while sending): held until the gateway says, or a person decides.
    pub const UNKNOWN: &str = "unknown";
    /// The gateway took it (`provider_id`).
    pub const SENT: &str = "sent";
    /// Refused for good, or out of attempts.
    pub const FAILED: &str = "failed";
}

impl OutboxMessage {
    /// Failed for good, or sent and not delivered: a person may send it again.
    pub fn can_be_resent(&self) -> bool {
        self.status == status::FAILED
            || (self.status == status::SENT
                && matches!(self.delivery.as_deref(), Some("undelivered" | "expired")))
    }

    /// The state in Russian, for staff: the delivery once sent, the sending state before.
    pub fn status_title(&self) -> &'static str {
        match (self.status.as_str(), self.delivery.as_deref()) {
            (status::SENT, Some("delivered")) => "доставлено",
            (status::SENT, Some("undelivered" | "expired")) => "не доставлено",
            (status::SENT, _) => "отправлено",
            (status::PENDING | status::SENDING, _) => "в очереди",
            _ => "ошибка",
        }
    }

    /// A word for staff when the state needs one (Russian).
    pub fn status_note(&self) -> Option<&'static str> {
        match (self.status.as_str(), self.delivery.as_deref()) {
            (status::UNKNOWN, _) => Some(
                "неизвестно, принял ли шлюз сообщение; повторно не отправляется, пока это не выяснено",
            ),
            (status::SENT, Some("expired")) => Some("истёк срок доставки"),
            _ => None,
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = sms_outbox)]
pub struct NewOutboxMessage<'a> {
    pub record_id: Option<i64>,
    pub kind: &'a str,
    pub phone: &'a str,
    pub body: &'a str,
}

pub async fn insert(conn: &AsyncPgConnection, message: &NewOutboxMessage<'_>) -> QueryResult<()> {
    let mut conn = conn;
    KeepPrepared(diesel::insert_into(sms_outbox::table).values(message))
        .execute(&mut conn)
        .await
        .map(|_| ())
}

/// SMS of every kind queued for `phone` since `since` (sent, waiting or failed).
pub async fn count_for_phone_since(
    conn: &AsyncPgConnection,
    phone: &str,
    since: DateTime<Utc>,
) -> QueryResult<i64> {
    let mut conn = conn;
    sms_outbox::table
        .filter(sms_outbox::phone.eq(phone))
        .filter(sms_outbox::created_at.gt(since))
        .count()
        .get_result(&mut conn)
        .await
}

/// The SQL of a message's text without its secrets: the code of a `code` message and the
/// token of a visit link are blanked, the rest of the text stays.
macro_rules! redacted_body {
    () => {
        "regexp_replace(regexp_replace(body, '/v/[A-Za-z0-9_-]+', '/v/…', 'g'), \
         '(код )[0-9]{6}', '\\1••••••')"
    };
}

/// Once a message has left for good, its secrets leave the table: the code of a `code`
/// message and the token of a visit link are blanked, the rest of the text stays.
async fn redact(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<usize> {
    diesel::sql_query(concat!(
        "UPDATE sms_outbox SET body = ",
        redacted_body!(),
        " WHERE id = $1 AND status IN ('sent', 'failed')"
    ))
    .bind::<diesel::sql_types::BigInt, _>(id)
    .execute(conn)
    .await
}

/// Claims up to `limit` due messages: they become `sending` with one more attempt. Rows that
/// another worker holds are skipped, not waited for.
pub async fn claim_due(
    conn: &mut AsyncPgConnection,
    limit: i64,
) -> QueryResult<Vec<OutboxMessage>> {
    KeepPrepared(
        diesel::sql_query(
            "UPDATE sms_outbox SET status = 'sending', attempts = attempts + 1, updated_at = now() \
             WHERE id IN (SELECT id FROM sms_outbox WHERE status = 'pending' AND next_attempt_at <= now() \
                          ORDER BY next_attempt_at, id FOR UPDATE SKIP LOCKED LIMIT $1) \
             RETURNING *",
        )
        .bind::<diesel::sql_types::BigInt, _>(limit),
    )
    .load(conn)
    .await
}

/// Deletes a claimed reminder whose visit was cancelled, marked or moved after it was queued
/// (then `records.scheduled_at` is later than the reminder); whether it did. A reminder
/// still waiting when its visit changes is deleted by a trigger; this catches one that was
/// in a worker's hands at that moment and came back for another attempt.
pub async fn drop_stale_reminder(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    diesel::sql_query(
        "DELETE FROM sms_outbox o USING records r \
         WHERE o.id = $1 AND o.kind = 'reminder' AND o.status = 'sending' \
           AND r.id = o.record_id AND (r.status <> 'booked' OR r.scheduled_at > o.created_at)",
    )
    .bind::<diesel::sql_types::BigInt, _>(id)
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// Messages left `sending` longer than any send takes belong to a worker that died: whether
/// the gateway got them is unknown, so they become `unknown`, never `pending` again.
pub async fn hold_stuck(
    conn: &mut AsyncPgConnection,
    older_than: DateTime<Utc>,
) -> QueryResult<Vec<i64>> {
    diesel::update(
        sms_outbox::table
            .filter(sms_outbox::status.eq(status::SENDING))
            .filter(sms_outbox::updated_at.lt(older_than)),
    )
    .set((
        sms_outbox::status.eq(status::UNKNOWN),
        sms_outbox::last_error.eq("the worker stopped while sending"),
        sms_outbox::next_attempt_at.eq(diesel::dsl::now),
        sms_outbox::updated_at.eq(diesel::dsl::now),
    ))
    .returning(sms_outbox::id)
    .get_results(conn)
    .await
}

/// `sending` or `unknown` → `sent`: the gateway took it with `provider_id`. With
/// `check_at`, its delivery is asked from then on. False when the message was in neither
/// state (another worker settled it).
pub async fn mark_sent(
    conn: &mut AsyncPgConnection,
    id: i64,
    provider_id: &str,
    check_at: Option<DateTime<Utc>>,
) -> QueryResult<bool> {
    // The redaction rides in the same statement: a sent text never keeps its secrets, not
    // even for a moment a crash could stretch, and it costs no second write.
    KeepPrepared(
        diesel::sql_query(concat!(
            "UPDATE sms_outbox SET status = 'sent', provider_id = $2, sent_at = now(), \
               last_error = NULL, delivery = $3, next_check_at = $4, updated_at = now(), body = ",
            redacted_body!(),
            " WHERE id = $1 AND status IN ('sending', 'unknown')"
        ))
        .bind::<diesel::sql_types::BigInt, _>(id)
        .bind::<diesel::sql_types::Text, _>(provider_id)
        .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(
            check_at.map(|_| "pending"),
        )
        .bind::<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>, _>(check_at),
    )
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// `sending` → `pending` at `at`: the gateway refused for now.
pub async fn mark_retry(
    conn: &mut AsyncPgConnection,
    id: i64,
    error: &str,
    at: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::update(
        sms_outbox::table
            .find(id)
            .filter(sms_outbox::status.eq(status::SENDING)),
    )
    .set((
        sms_outbox::status.eq(status::PENDING),
        sms_outbox::last_error.eq(error),
        sms_outbox::next_attempt_at.eq(at),
        sms_outbox::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// `sending` → `failed`: refused for good, or out of attempts.
pub async fn mark_failed(conn: &mut AsyncPgConnection, id: i64, error: &str) -> QueryResult<bool> {
    let moved = diesel::update(
        sms_outbox::table
            .find(id)
            .filter(sms_outbox::status.eq(status::SENDING)),
    )
    .set((
        sms_outbox::status.eq(status::FAILED),
        sms_outbox::last_error.eq(error),
        sms_outbox::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)?;
    if moved {
        redact(conn, id).await?;
    }
    Ok(moved)
}

/// `sending` → `unknown`: no answer, so whether the gateway took it is not known. The
/// gateway is asked about it from `look_up_at` (when it can be asked).
pub async fn mark_unknown(
    conn: &mut AsyncPgConnection,
    id: i64,
    error: &str,
    look_up_at: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::update(
        sms_outbox::table
            .find(id)
            .filter(sms_outbox::status.eq(status::SENDING)),
    )
    .set((
        sms_outbox::status.eq(status::UNKNOWN),
        sms_outbox::last_error.eq(error),
        sms_outbox::next_attempt_at.eq(look_up_at),
        sms_outbox::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// Claims up to `limit` `unknown` messages due for a look-up at the gateway, and puts their
/// next look-up at `again` (should this worker die before settling them).
pub async fn claim_unknown(
    conn: &mut AsyncPgConnection,
    limit: i64,
    again: DateTime<Utc>,
) -> QueryResult<Vec<OutboxMessage>> {
    diesel::sql_query(
        "UPDATE sms_outbox SET next_attempt_at = $2 \
         WHERE id IN (SELECT id FROM sms_outbox WHERE status = 'unknown' AND next_attempt_at <= now() \
                      ORDER BY next_attempt_at, id FOR UPDATE SKIP LOCKED LIMIT $1) \
         RETURNING *",
    )
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .bind::<diesel::sql_types::Timestamptz, _>(again)
    .load(conn)
    .await
}

/// `unknown` → `pending`: the gateway does not have it (or a person decided to send it
/// again), so it is sent now.
pub async fn requeue_unknown(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    diesel::update(
        sms_outbox::table
            .find(id)
            .filter(sms_outbox::status.eq(status::UNKNOWN)),
    )
    .set((
        sms_outbox::status.eq(status::PENDING),
        sms_outbox::next_attempt_at.eq(diesel::dsl::now),
        sms_outbox::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// `unknown` → `failed`: a person decided not to send it (`error` says why).
pub async fn fail_unknown(conn: &mut AsyncPgConnection, id: i64, error: &str) -> QueryResult<bool> {
    let moved = diesel::update(
        sms_outbox::table
            .find(id)
            .filter(sms_outbox::status.eq(status::UNKNOWN)),
    )
    .set((
        sms_outbox::status.eq(status::FAILED),
        sms_outbox::last_error.eq(error),
        sms_outbox::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)?;
    if moved {
        redact(conn, id).await?;
    }
    Ok(moved)
}

/// `unknown` → `sent` by a person who found it at the gateway; with its `sms_id`, its
/// delivery is asked from now on.
pub async fn settle_held_as_sent(
    conn: &mut AsyncPgConnection,
    id: i64,
    provider_id: Option<&str>,
) -> QueryResult<bool> {
    let check_at = provider_id.map(|_| Utc::now());
    let moved = diesel::update(
        sms_outbox::table
            .find(id)
            .filter(sms_outbox::status.eq(status::UNKNOWN)),
    )
    .set((
        sms_outbox::status.eq(status::SENT),
        sms_outbox::provider_id.eq(provider_id),
        sms_outbox::sent_at.eq(diesel::dsl::now),
        sms_outbox::last_error.eq(None::<String>),
        sms_outbox::delivery.eq(check_at.map(|_| "pending")),
        sms_outbox::next_check_at.eq(check_at),
        sms_outbox::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)?;
    if moved {
        redact(conn, id).await?;
    }
    Ok(moved)
}

/// The messages held as `unknown`, oldest first.
pub async fn list_held(conn: &mut AsyncPgConnection) -> QueryResult<Vec<OutboxMessage>> {
    sms_outbox::table
        .filter(sms_outbox::status.eq(status::UNKNOWN))
        .order((sms_outbox::updated_at, sms_outbox::id))
        .select(OutboxMessage::as_select())
        .load(conn)
        .await
}

/// A sent message whose delivery is asked.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct DeliveryCheck {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub provider_id: String,
}

/// Claims up to `limit` sent messages whose delivery is due to be asked (sent after
/// `sent_after`; older ones are no longer asked), moving their next check to `next`.
pub async fn claim_checks(
    conn: &mut AsyncPgConnection,
    limit: i64,
    sent_after: DateTime<Utc>,
    next: DateTime<Utc>,
) -> QueryResult<Vec<DeliveryCheck>> {
    diesel::sql_query(
        "UPDATE sms_outbox SET next_check_at = $3 \
         WHERE id IN (SELECT id FROM sms_outbox \
                      WHERE status = 'sent' AND delivery = 'pending' AND next_check_at <= now() \
                        AND provider_id IS NOT NULL AND sent_at > $2 \
                      ORDER BY next_check_at, id FOR UPDATE SKIP LOCKED LIMIT $1) \
         RETURNING id, provider_id",
    )
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .bind::<diesel::sql_types::Timestamptz, _>(sent_after)
    .bind::<diesel::sql_types::Timestamptz, _>(next)
    .load(conn)
    .await
}

/// Records the gateway's status of a sent message; `final_state` (`delivered`,
/// `undelivered`, `expired`) ends the checks. A final state is never changed again.
pub async fn record_delivery(
    conn: &mut AsyncPgConnection,
    id: i64,
    code: i32,
    final_state: Option<&str>,
) -> QueryResult<bool> {
    let pending = sms_outbox::table
        .find(id)
        .filter(sms_outbox::status.eq(status::SENT))
        .filter(sms_outbox::delivery.eq("pending"));
    let updated = match final_state {
        Some(state) => {
            diesel::update(pending)
                .set((
                    sms_outbox::delivery.eq(state),
                    sms_outbox::delivery_code.eq(code),
                    sms_outbox::delivered_at.eq(diesel::dsl::now),
                    sms_outbox::next_check_at.eq(None::<DateTime<Utc>>),
                    sms_outbox::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?
        }
        None => {
            diesel::update(pending)
                .set((
                    sms_outbox::delivery_code.eq(code),
                    sms_outbox::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?
        }
    };
    Ok(updated == 1)
}

/// One message by id.
pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<OutboxMessage>> {
    sms_outbox::table
        .find(id)
        .select(OutboxMessage::as_select())
        .first(conn)
        .await
        .optional()
}

/// The messages about one record, oldest first.
/// One message of a record.
pub async fn find_for_record(
    conn: &mut AsyncPgConnection,
    record_id: i64,
    id: i64,
) -> QueryResult<Option<OutboxMessage>> {
    sms_outbox::table
        .filter(sms_outbox::id.eq(id))
        .filter(sms_outbox::record_id.eq(record_id))
        .select(OutboxMessage::as_select())
        .first(conn)
        .await
        .optional()
}

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
        .filter(sms_outbox::status.eq_any([status::PENDING, status::SENDING]))
        .count()
        .get_result(conn)
        .await
}

/// Messages held because their outcome is unknown (`unknown`).
pub async fn held(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    sms_outbox::table
        .filter(sms_outbox::status.eq(status::UNKNOWN))
        .count()
        .get_result(conn)
        .await
}

/// The messages sent (or to be sent) to a person: those about `record_ids` (their
/// records) and, when `phone` is given, those to that phone about no record (codes,
/// notices); oldest first. A message about someone else's record on the same phone is not
/// among them.
pub async fn to_person(
    conn: &mut AsyncPgConnection,
    record_ids: &[i64],
    phone: Option<&str>,
) -> QueryResult<Vec<OutboxMessage>> {
    let mut messages: Vec<OutboxMessage> = sms_outbox::table
        .filter(sms_outbox::record_id.eq_any(record_ids.to_vec()))
        .select(OutboxMessage::as_select())
        .load(conn)
        .await?;
    if let Some(phone) = phone {
        let unattached: Vec<OutboxMessage> = sms_outbox::table
            .filter(sms_outbox::record_id.is_null())
            .filter(sms_outbox::phone.eq(phone.to_owned()))
            .select(OutboxMessage::as_select())
            .load(conn)
            .await?;
        messages.extend(unattached);
    }
    messages.sort_by_key(|m| m.id);
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(status: &str, delivery: Option<&str>) -> OutboxMessage {
        let now = Utc::now();
        OutboxMessage {
            id: 1,
            record_id: None,
            kind: "booked".into(),
            phone: "+79161234567".into(),
            body: "x".into(),
            status: status.into(),
            attempts: 1,
            next_attempt_at: now,
            last_error: None,
            provider_id: None,
            sent_at: None,
            created_at: now,
            updated_at: now,
            delivery: delivery.map(str::to_owned),
            delivery_code: None,
            delivered_at: None,
            next_check_at: None,
        }
    }

    #[test]
    fn staff_see_each_state_in_russian() {
        for (status, delivery, title) in [
            ("pending", None, "в очереди"),
            ("sending", None, "в очереди"),
            ("sent", None, "отправлено"),
            ("sent", Some("pending"), "отправлено"),
            ("sent", Some("delivered"), "доставлено"),
            ("sent", Some("undelivered"), "не доставлено"),
            ("sent", Some("expired"), "не доставлено"),
            ("failed", None, "ошибка"),
            ("unknown", None, "ошибка"),
        ] {
            assert_eq!(
                message(status, delivery).status_title(),
                title,
                "{status} {delivery:?}"
            );
        }
        assert!(message("unknown", None).status_note().is_some());
        assert!(message("sent", Some("expired")).status_note().is_some());
        assert_eq!(message("sent", Some("delivered")).status_note(), None);
    }
}
