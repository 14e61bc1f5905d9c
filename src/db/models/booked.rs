//! A booked record's write: the record, the intent's `done`, the booking SMS and the audit
//! row, in **one statement** (data-modifying CTEs), which returns the record's view.
//!
//! One statement is one round trip and, outside a transaction, its own transaction: the
//! booking's local write used to take four (a `BEGIN` with the intent's lock, the insert, the
//! statements that needed the record's id, the `COMMIT`), each a wake-up of PostgreSQL and of
//! the app. The intent's `UPDATE … WHERE state = 'pending'` comes first and everything else
//! reads its result, so it is also the lock: of two writers of one intent (the request and the
//! reconciler) the second waits for the first's row, finds it no longer pending after the
//! first commits, and writes nothing (`Ok(None)`).
//!
//! The statement's transaction commits **without waiting for the disk**
//! (`set_config('synchronous_commit', 'off', true)` in its result, which applies until the end
//! of the transaction, i.e. to its commit): the intent, committed and flushed before the MIS
//! was asked, is the durable part, and a record lost with the last fraction of a second of a
//! crashed PostgreSQL server is written again by the reconciler from the intent and the MIS.

use diesel::{
    prelude::*,
    sql_types::{Array, BigInt, Bool, Date, Nullable, Text, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::{
    models::record::{NewRecord, Record, RecordView},
    prepared::KeepPrepared,
};
use crate::domain::values::BranchZone;

/// The booking SMS queued with the record (its phone is the record's).
pub struct BookedMessage<'a> {
    pub kind: &'a str,
    pub body: &'a str,
}

/// The audit row written with the record (action `record_booked`, the record's id as subject).
pub struct BookedAudit<'a> {
    pub actor_user_id: Option<i64>,
    pub client_ip: &'a str,
    pub request_id: Option<&'a str>,
}

/// Everything a booked record's write needs: the pending intent it settles, the record with
/// the id taken for it beforehand ([`next_record_id`]; the SMS names it), its SMS and, when
/// given, its audit row.
pub struct BookedWrite<'a> {
    pub intent_id: i64,
    pub record_id: i64,
    pub record: &'a NewRecord<'a>,
    pub message: BookedMessage<'a>,
    pub audit: Option<BookedAudit<'a>>,
}

/// A record id taken from the records' identity sequence before its row is written (a
/// booking takes it while the MIS books; an id taken and never used leaves a gap, as a failed
/// insert does). The write gives it with `OVERRIDING SYSTEM VALUE`: the id is generated
/// always, and this is still the sequence's value.
pub async fn next_record_id(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    KeepPrepared(diesel::select(diesel::dsl::sql::<BigInt>(
        "nextval(pg_get_serial_sequence('records', 'id'))",
    )))
    .get_result(conn)
    .await
}

/// Whether a statement that failed so may still have been carried out: the connection
/// broke (no answer with an SQLSTATE came back), rather than the server refusing it.
pub fn outcome_unknown(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    matches!(
        e,
        Error::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
            _
        )
    )
}

/// The statement: see the module doc. Columns of `RETURNING` are [`Record`]'s, by name.
const WRITE_BOOKED: &str = "\
WITH done AS (
    UPDATE booking_intents
       SET state = 'done', record_id = $1, mis_id = $2, error = NULL, updated_at = now()
     WHERE id = $3 AND state = 'pending'
    RETURNING id
), rec AS (
    INSERT INTO records (id, mis_id, specialist_id, branch_id, starts_at, ends_at, user_id,
                         patient_pcode, patient_last_name, patient_first_name,
                         patient_middle_name, patient_phone, patient_email, patient_birth_date,
                         comment, source, manage_token_hash, booked_by)
    OVERRIDING SYSTEM VALUE
    SELECT $1, $2, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19
      FROM done
    RETURNING id, mis_id, status, specialist_id, branch_id, starts_at, ends_at, user_id,
              patient_pcode, patient_last_name, patient_first_name, patient_middle_name,
              patient_phone, patient_email, patient_birth_date, comment, source, created_at,
              updated_at, cancelled_at, cancelled_by, booked_by, cancel_reason
), sms AS (
    INSERT INTO sms_outbox (record_id, kind, phone, body)
    SELECT id, $20, patient_phone, $21 FROM rec
), audited AS (
    INSERT INTO audit_events (actor_user_id, action, subject, client_ip, request_id, details)
    SELECT $22, 'record_booked', id::text, $23, $24, '{}'::jsonb FROM rec WHERE $25
)
SELECT rec.*,
       s.full_name AS specialist_name,
       COALESCE((SELECT array_agg(sp.name ORDER BY sp.name)
                   FROM specialist_specialities ss
                   JOIN specialities sp ON sp.id = ss.speciality_id
                  WHERE ss.specialist_id = rec.specialist_id AND sp.active), '{}') AS specialities,
       b.name AS branch_name,
       b.address AS branch_address,
       b.timezone AS branch_zone,
       set_config('synchronous_commit', 'off', true) AS commit_mode
  FROM rec
  JOIN specialists s ON s.id = rec.specialist_id
  JOIN branches b ON b.id = rec.branch_id";

#[derive(QueryableByName)]
struct BookedRow {
    #[diesel(embed)]
    record: Record,
    #[diesel(sql_type = Text)]
    specialist_name: String,
    #[diesel(sql_type = Array<Text>)]
    specialities: Vec<String>,
    #[diesel(sql_type = Text)]
    branch_name: String,
    #[diesel(sql_type = Text)]
    branch_address: String,
    #[diesel(sql_type = Text)]
    branch_zone: BranchZone,
}

/// Writes a booked record (see the module doc): its view, or `None` when the intent was no
/// longer pending (the other writer settled it; nothing was written). A record already at
/// the slot fails the whole statement with the slot's unique violation
/// ([`super::record::is_slot_conflict`]).
pub async fn write_booked(
    conn: &mut AsyncPgConnection,
    write: &BookedWrite<'_>,
) -> QueryResult<Option<RecordView>> {
    let r = write.record;
    let audit = write.audit.as_ref();
    let row: Option<BookedRow> = KeepPrepared(
        diesel::sql_query(WRITE_BOOKED)
            .bind::<BigInt, _>(write.record_id)
            .bind::<BigInt, _>(r.mis_id)
            .bind::<BigInt, _>(write.intent_id)
            .bind::<BigInt, _>(r.specialist_id)
            .bind::<BigInt, _>(r.branch_id)
            .bind::<Timestamptz, _>(r.starts_at)
            .bind::<Timestamptz, _>(r.ends_at)
            .bind::<Nullable<BigInt>, _>(r.user_id)
            .bind::<BigInt, _>(r.patient_pcode)
            .bind::<Text, _>(r.patient_last_name)
            .bind::<Text, _>(r.patient_first_name)
            .bind::<Nullable<Text>, _>(r.patient_middle_name)
            .bind::<Text, _>(r.patient_phone)
            .bind::<Nullable<Text>, _>(r.patient_email)
            .bind::<Nullable<Date>, _>(r.patient_birth_date)
            .bind::<Nullable<Text>, _>(r.comment)
            .bind::<Text, _>(r.source)
            .bind::<Nullable<Text>, _>(r.manage_token_hash)
            .bind::<Nullable<BigInt>, _>(r.booked_by)
            .bind::<Text, _>(write.message.kind)
            .bind::<Text, _>(write.message.body)
            .bind::<Nullable<BigInt>, _>(audit.and_then(|a| a.actor_user_id))
            .bind::<Nullable<Text>, _>(audit.map(|a| a.client_ip))
            .bind::<Nullable<Text>, _>(audit.and_then(|a| a.request_id))
            .bind::<Bool, _>(audit.is_some()),
    )
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(|row| RecordView {
        record: row.record,
        specialist_name: row.specialist_name,
        specialities: row.specialities,
        branch_name: row.branch_name,
        branch_address: row.branch_address,
        branch_zone: row.branch_zone,
    }))
}
