//! The `booking_intents` table: each booking, move and cancel, written down before the MIS
//! is asked and resolved to `done` or `failed` afterwards (see `domain::booking::intent`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::prepared::KeepPrepared;

use crate::{
    db::schema::booking_intents,
    domain::values::{IntentKind, IntentState},
};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = booking_intents, check_for_backend(diesel::pg::Pg))]
pub struct Intent {
    pub id: i64,
    pub kind: IntentKind,
    pub state: IntentState,
    pub record_id: Option<i64>,
    pub specialist_id: i64,
    pub branch_id: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `None` only while a new MIS card is being added (no appointment was asked for yet).
    pub pcode: Option<i64>,
    pub mis_id: Option<i64>,
    pub request: serde_json::Value,
    pub idempotency_scope: Option<String>,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = booking_intents)]
pub struct NewIntent<'a> {
    pub kind: IntentKind,
    pub record_id: Option<i64>,
    pub specialist_id: i64,
    pub branch_id: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub pcode: Option<i64>,
    pub mis_id: Option<i64>,
    pub request: &'a serde_json::Value,
    pub idempotency_scope: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub request_hash: Option<&'a str>,
}

pub async fn insert(conn: &AsyncPgConnection, new: &NewIntent<'_>) -> QueryResult<Intent> {
    let mut conn = conn;
    KeepPrepared(
        diesel::insert_into(booking_intents::table)
            .values(new)
            .returning(Intent::as_returning()),
    )
    .get_result(&mut conn)
    .await
}

pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Intent>> {
    booking_intents::table
        .find(id)
        .select(Intent::as_select())
        .first(conn)
        .await
        .optional()
}

/// The intent's state and record, read once no transaction holds its row (waiting at most
/// 5 s): a writer whose connection broke may still be committing.
pub async fn settled_state(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<Option<(IntentState, Option<i64>)>> {
    use diesel_async::AsyncConnection;

    conn.transaction(async |conn| {
        diesel::sql_query("SET LOCAL lock_timeout = '5s'")
            .execute(conn)
            .await?;
        booking_intents::table
            .find(id)
            .select((booking_intents::state, booking_intents::record_id))
            .for_share()
            .first(conn)
            .await
            .optional()
    })
    .await
}

/// Records the MIS's `SCHEDID` of a pending intent.
pub async fn set_mis_id(conn: &mut AsyncPgConnection, id: i64, mis_id: i64) -> QueryResult<usize> {
    diesel::update(booking_intents::table.find(id))
        .set((
            booking_intents::mis_id.eq(mis_id),
            booking_intents::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}

type PendingIntent = diesel::dsl::Filter<
    diesel::dsl::Find<booking_intents::table, i64>,
    diesel::dsl::Eq<booking_intents::state, IntentState>,
>;

/// The intent `id` while it is pending: what every write that settles it targets, so of two
/// writers the second finds nothing.
fn pending(id: i64) -> PendingIntent {
    booking_intents::table
        .find(id)
        .filter(booking_intents::state.eq(IntentState::Pending))
}

/// Writes the MIS card of a pending intent opened without one; `false` when the intent is
/// no longer pending. Committed (and on disk) before the MIS is asked for the appointment.
pub async fn set_pcode(conn: &mut AsyncPgConnection, id: i64, pcode: i64) -> QueryResult<bool> {
    let updated = KeepPrepared(diesel::update(pending(id)).set((
        booking_intents::pcode.eq(pcode),
        booking_intents::updated_at.eq(diesel::dsl::now),
    )))
    .execute(conn)
    .await?;
    Ok(updated == 1)
}

/// Notes what went wrong with an intent that stays pending.
pub async fn note_error(conn: &mut AsyncPgConnection, id: i64, error: &str) -> QueryResult<usize> {
    diesel::update(booking_intents::table.find(id))
        .set((
            booking_intents::error.eq(error),
            booking_intents::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}

/// Locks a pending intent for the rest of the transaction; `false` when it is no longer
/// pending. Writers take this first, so of two (the request and the reconciler) the second
/// waits, then finds the intent resolved and writes nothing.
pub async fn lock_pending(conn: &AsyncPgConnection, id: i64) -> QueryResult<bool> {
    let mut conn = conn;
    let locked: Option<i64> = pending(id)
        .select(booking_intents::id)
        .for_update()
        .first(&mut conn)
        .await
        .optional()?;
    Ok(locked.is_some())
}

/// Resolves a pending intent; `false` when it was resolved already (by the reconciler or
/// the request), in which case the caller must not act on it.
pub async fn resolve(
    conn: &mut AsyncPgConnection,
    id: i64,
    state: IntentState,
    record_id: Option<i64>,
    error: Option<&str>,
) -> QueryResult<bool> {
    let updated = diesel::update(pending(id))
        .set((
            booking_intents::state.eq(state),
            booking_intents::record_id.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
            >("COALESCE(")
            .bind::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>, _>(record_id)
            .sql(", record_id)")),
            booking_intents::error.eq(error),
            booking_intents::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(updated == 1)
}

/// Pending intents not touched since `before`, oldest first.
pub async fn stale_pending(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<Intent>> {
    booking_intents::table
        .filter(booking_intents::state.eq(IntentState::Pending))
        .filter(booking_intents::updated_at.lt(before))
        .order(booking_intents::updated_at.asc())
        .limit(limit)
        .select(Intent::as_select())
        .load(conn)
        .await
}

/// The newest intent of one `Idempotency-Key`.
pub async fn latest_for_key(
    conn: &mut AsyncPgConnection,
    scope: &str,
    key: &str,
) -> QueryResult<Option<Intent>> {
    booking_intents::table
        .filter(booking_intents::idempotency_scope.eq(scope))
        .filter(booking_intents::idempotency_key.eq(key))
        .order(booking_intents::id.desc())
        .select(Intent::as_select())
        .first(conn)
        .await
        .optional()
}

/// Counts intents in one state; for tests and metrics.
pub async fn count(conn: &mut AsyncPgConnection, state: IntentState) -> QueryResult<i64> {
    booking_intents::table
        .filter(booking_intents::state.eq(state))
        .count()
        .get_result(conn)
        .await
}

/// Whether a record has a change of its own under way (a pending move or cancel).
pub async fn has_pending_for_record(
    conn: &mut AsyncPgConnection,
    record_id: i64,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        booking_intents::table
            .filter(booking_intents::record_id.eq(record_id))
            .filter(booking_intents::state.eq(IntentState::Pending)),
    ))
    .get_result(conn)
    .await
}

/// Is a change of ours under way for this slot (a booking, or a move to it)? Its MIS
/// appointment may already be in the change feed while its record is not yet written.
pub async fn has_pending_for_slot(
    conn: &mut AsyncPgConnection,
    specialist_id: i64,
    branch_id: i64,
    starts_at: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        booking_intents::table
            .filter(booking_intents::state.eq(IntentState::Pending))
            .filter(booking_intents::specialist_id.eq(specialist_id))
            .filter(booking_intents::branch_id.eq(branch_id))
            .filter(booking_intents::starts_at.eq(starts_at)),
    ))
    .get_result(conn)
    .await
}
