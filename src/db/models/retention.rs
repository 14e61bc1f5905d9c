//! Deletion and retention, as queries: closing an account at its owner's request, erasing
//! its personal data once the grace period has passed, and removing or blanking rows past
//! their retention period. The rules (what, when, in which transaction) are in
//! `domain::retention`; each function here is one statement on one table.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{
    db::schema::{consents, idempotency_keys, records, refresh_tokens, schedule_snapshots, users},
    domain::values::RecordStatus,
};

/// The full name of an anonymised account.
pub const ERASED_FULL_NAME: &str = "Удалённый пользователь";
/// The surname and first name of an anonymised record (both columns are NOT NULL).
pub const ERASED_LAST_NAME: &str = "Удалено";
pub const ERASED_FIRST_NAME: &str = "-";
/// What an erased SMS text reads.
pub const ERASED_TEXT: &str = "[удалено]";
/// The phone of an anonymised record or SMS: `records.patient_phone` is NOT NULL and must
/// look like E.164 (its CHECK), and no real subscriber has a number starting `+7 000`.
pub const PLACEHOLDER_PHONE: &str = "+70000000000";

/// The transaction-local setting the audit trigger reads (migration `000010_retention`).
const AUDIT_CUTOFF_SETTING: &str = "sovamed.audit_retention_cutoff";

/// The e-mail an anonymised account is left with: unique (the id), lower-case, and in the
/// reserved `.invalid` domain, so nothing is ever sent to it.
pub fn erased_email(id: i64) -> String {
    format!("deleted-{id}@invalid")
}

/// Closes the account at its owner's request: notes when, disables it and moves its
/// `session_version` on, which ends every cookie session and refuses every access token at
/// their next use. False when a request was noted already (a second tab).
pub async fn close_account(
    conn: &mut AsyncPgConnection,
    id: i64,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::update(
        users::table
            .filter(users::id.eq(id))
            .filter(users::deletion_requested_at.is_null()),
    )
    .set((
        users::deletion_requested_at.eq(now),
        users::disabled.eq(true),
        users::session_version.eq(users::session_version + 1),
        users::updated_at.eq(now),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// Withdraws a deletion request not carried out yet: the clinic restored the account.
pub async fn withdraw_deletion_request(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<usize> {
    diesel::update(
        users::table
            .filter(users::id.eq(id))
            .filter(users::deletion_requested_at.is_not_null())
            .filter(users::anonymised_at.is_null()),
    )
    .set(users::deletion_requested_at.eq(None::<DateTime<Utc>>))
    .execute(conn)
    .await
}

/// Revokes every refresh token of the account not revoked yet.
pub async fn revoke_refresh_tokens(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)
    .await
}

/// The account's booked visits still ahead at `now`, soonest first.
pub async fn upcoming_booked(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<Vec<i64>> {
    records::table
        .filter(records::user_id.eq(user_id))
        .filter(records::status.eq(RecordStatus::Booked))
        .filter(records::starts_at.gt(now))
        .order((records::starts_at, records::id))
        .select(records::id)
        .load(conn)
        .await
}

/// Accounts whose deletion was asked before `before` and that are still closed and not
/// anonymised, oldest request first.
pub async fn due_for_anonymisation(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
) -> QueryResult<Vec<i64>> {
    users::table
        .filter(users::deletion_requested_at.lt(before))
        .filter(users::anonymised_at.is_null())
        .filter(users::disabled.eq(true))
        .order((users::deletion_requested_at, users::id))
        .select(users::id)
        .load(conn)
        .await
}

/// What the anonymiser needs of an account that is due, locked for the rest of the
/// transaction: its phone and when its deletion was asked. `None` when it is no longer due
/// (restored meanwhile, or anonymised by another run).
pub async fn lock_due(
    conn: &mut AsyncPgConnection,
    id: i64,
    before: DateTime<Utc>,
) -> QueryResult<Option<(Option<String>, Option<DateTime<Utc>>)>> {
    users::table
        .filter(users::id.eq(id))
        .filter(users::deletion_requested_at.lt(before))
        .filter(users::anonymised_at.is_null())
        .filter(users::disabled.eq(true))
        .for_update()
        .select((users::phone, users::deletion_requested_at))
        .first(conn)
        .await
        .optional()
}

/// The ids of every record of the account, whatever its status.
pub async fn record_ids_of(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<Vec<i64>> {
    records::table
        .filter(records::user_id.eq(user_id))
        .select(records::id)
        .load(conn)
        .await
}

/// Erases the patient's fields of the account's records; the visit facts (doctor, branch,
/// times, status, the MIS's `SCHEDID` and card) stay for the clinic's accounting.
/// `updated_at` is PostgreSQL's clock, as every writer of records sets it (the MIS change
/// feed compares it with PostgreSQL's time).
pub async fn erase_records_of(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<usize> {
    diesel::update(records::table.filter(records::user_id.eq(user_id)))
        .set((
            records::patient_last_name.eq(ERASED_LAST_NAME),
            records::patient_first_name.eq(ERASED_FIRST_NAME),
            records::patient_middle_name.eq(None::<String>),
            records::patient_phone.eq(PLACEHOLDER_PHONE),
            records::patient_email.eq(None::<String>),
            records::patient_birth_date.eq(None::<NaiveDate>),
            records::comment.eq(None::<String>),
            records::cancel_reason.eq(None::<String>),
            records::manage_token_hash.eq(None::<String>),
            records::reminder_token_hash.eq(None::<String>),
            records::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}

/// Erases the SMS about `record_ids` and those sent to `phone` about no record (codes,
/// notices): the text and the phone go, the row stays for the delivery statistics. A
/// message not sent yet is failed instead of being sent as «\[удалено\]» to the placeholder.
pub async fn erase_messages(
    conn: &mut AsyncPgConnection,
    record_ids: &[i64],
    phone: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    // Every expression of SET reads the row as it was, so both CASEs see the old status.
    diesel::sql_query(
        "UPDATE sms_outbox SET body = $1, phone = $2, \
           last_error = CASE WHEN status IN ('pending', 'sending', 'unknown') \
                             THEN 'the account was anonymised' ELSE last_error END, \
           status = CASE WHEN status IN ('pending', 'sending', 'unknown') \
                         THEN 'failed' ELSE status END, \
           updated_at = $3 \
         WHERE record_id = ANY($4) OR (record_id IS NULL AND phone = $5)",
    )
    .bind::<diesel::sql_types::Text, _>(ERASED_TEXT)
    .bind::<diesel::sql_types::Text, _>(PLACEHOLDER_PHONE)
    .bind::<diesel::sql_types::Timestamptz, _>(now)
    .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(record_ids)
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(phone)
    .execute(conn)
    .await
}

/// Deletes the SMS codes of the account and of its phone.
pub async fn delete_verifications_of(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    phone: Option<&str>,
) -> QueryResult<usize> {
    diesel::sql_query("DELETE FROM phone_verifications WHERE user_id = $1 OR phone = $2")
        .bind::<diesel::sql_types::BigInt, _>(user_id)
        .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(phone)
        .execute(conn)
        .await
}

/// Marks the account's consents withdrawn as of `at` (the deletion request); the rows stay
/// as the proof that consent was given.
pub async fn withdraw_consents_of(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    at: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        consents::table
            .filter(consents::user_id.eq(user_id))
            .filter(consents::withdrawn_at.is_null()),
    )
    .set(consents::withdrawn_at.eq(at))
    .execute(conn)
    .await
}

/// Empties the stored booking facts (names, phone, e-mail, comment) of the account's settled
/// intents. A pending intent keeps them: the reconciler still needs them to finish it.
pub async fn erase_intents_of(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    record_ids: &[i64],
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE booking_intents SET request = '{}'::jsonb, updated_at = $1 \
         WHERE state <> 'pending' AND (record_id = ANY($2) OR request->>'user_id' = $3)",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(now)
    .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(record_ids)
    .bind::<diesel::sql_types::Text, _>(user_id.to_string())
    .execute(conn)
    .await
}

/// Deletes the account's stored `Idempotency-Key` answers (they hold its bookings).
pub async fn delete_idempotency_keys_of(
    conn: &mut AsyncPgConnection,
    user_id: i64,
) -> QueryResult<usize> {
    diesel::delete(
        idempotency_keys::table.filter(idempotency_keys::scope.eq(format!("user:{user_id}"))),
    )
    .execute(conn)
    .await
}

/// Deletes every refresh token of the account (all revoked since the request).
pub async fn delete_refresh_tokens_of(
    conn: &mut AsyncPgConnection,
    user_id: i64,
) -> QueryResult<usize> {
    diesel::delete(refresh_tokens::table.filter(refresh_tokens::user_id.eq(user_id)))
        .execute(conn)
        .await
}

/// Erases the account's own personal data and marks it anonymised. `unusable_hash` is a
/// password hash nobody knows the password of; the account stays disabled.
pub async fn erase_account(
    conn: &mut AsyncPgConnection,
    id: i64,
    unusable_hash: &str,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((
            users::email.eq(erased_email(id)),
            users::full_name.eq(ERASED_FULL_NAME),
            users::phone.eq(None::<String>),
            users::phone_verified_at.eq(None::<DateTime<Utc>>),
            users::birth_date.eq(None::<NaiveDate>),
            users::password_hash.eq(unusable_hash),
            users::password_set_at.eq(None::<DateTime<Utc>>),
            users::mis_pcode.eq(None::<i64>),
            users::preferred_branch_id.eq(None::<i64>),
            users::disabled.eq(true),
            users::anonymised_at.eq(now),
            users::session_version.eq(users::session_version + 1),
            users::updated_at.eq(now),
        ))
        .execute(conn)
        .await
}

/// Deletes the audit events that occurred before `cutoff`. The trail's trigger refuses any
/// DELETE unless the transaction set the cutoff for itself, so this runs in its own
/// transaction: the setting and the DELETE, which reads its bound from the setting (one
/// value for both, so the trigger never refuses a row the DELETE chose).
pub async fn delete_audit_before(
    conn: &mut AsyncPgConnection,
    cutoff: DateTime<Utc>,
) -> QueryResult<usize> {
    use diesel_async::AsyncConnection;
    let bound = cutoff.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    conn.transaction(async |conn| {
        diesel::sql_query("SELECT set_config($1, $2, true)")
            .bind::<diesel::sql_types::Text, _>(AUDIT_CUTOFF_SETTING)
            .bind::<diesel::sql_types::Text, _>(&bound)
            .execute(conn)
            .await?;
        diesel::sql_query(
            "DELETE FROM audit_events \
             WHERE occurred_at < current_setting('sovamed.audit_retention_cutoff')::timestamptz",
        )
        .execute(conn)
        .await
    })
    .await
}

/// Blanks the text of SMS created before `cutoff` that have left for good (sent or failed);
/// the row, its phone and its delivery state stay. A message still waiting or held keeps
/// its text: an operator may yet send it.
pub async fn erase_sms_texts_before(
    conn: &mut AsyncPgConnection,
    cutoff: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE sms_outbox SET body = $1 \
         WHERE created_at < $2 AND status IN ('sent', 'failed') AND body <> $1",
    )
    .bind::<diesel::sql_types::Text, _>(ERASED_TEXT)
    .bind::<diesel::sql_types::Timestamptz, _>(cutoff)
    .execute(conn)
    .await
}

/// Deletes the stored grids of days before `day`.
pub async fn delete_snapshots_before(
    conn: &mut AsyncPgConnection,
    day: NaiveDate,
) -> QueryResult<usize> {
    diesel::delete(schedule_snapshots::table.filter(schedule_snapshots::day.lt(day)))
        .execute(conn)
        .await
}

/// Deletes the stored `Idempotency-Key` answers made before `cutoff`.
pub async fn delete_idempotency_keys_before(
    conn: &mut AsyncPgConnection,
    cutoff: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(cutoff)))
        .execute(conn)
        .await
}

/// Deletes SMS codes whose code, and proof if any, expired before `cutoff`.
pub async fn delete_verifications_expired_before(
    conn: &mut AsyncPgConnection,
    cutoff: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM phone_verifications \
         WHERE expires_at < $1 AND coalesce(token_expires_at, expires_at) < $1",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(cutoff)
    .execute(conn)
    .await
}

/// Deletes refresh tokens that expired, or were revoked, before `cutoff`. A rotated token
/// that has not expired stays, so its reuse is still recognised (and revokes its family).
pub async fn delete_refresh_tokens_before(
    conn: &mut AsyncPgConnection,
    cutoff: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::sql_query("DELETE FROM refresh_tokens WHERE expires_at < $1 OR revoked_at < $1")
        .bind::<diesel::sql_types::Timestamptz, _>(cutoff)
        .execute(conn)
        .await
}
