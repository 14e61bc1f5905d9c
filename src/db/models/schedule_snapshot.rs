//! The `schedule_snapshots` table: the last grid the MIS gave for a doctor's day, served
//! (marked stale) when the MIS is down.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::prepared::KeepPrepared;

use crate::db::schema::schedule_snapshots;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = schedule_snapshots, check_for_backend(diesel::pg::Pg))]
pub struct Snapshot {
    pub day: NaiveDate,
    pub intervals: serde_json::Value,
    pub fetched_at: DateTime<Utc>,
}

/// One day of a doctor in a branch as the MIS gave it: the grid, and the starts of its free
/// slots as instants (what the doctor list reads for the nearest free time).
#[derive(Debug, Clone, Copy)]
pub struct SnapshotDay<'a> {
    pub day: NaiveDate,
    pub intervals: &'a serde_json::Value,
    pub free_starts: &'a [DateTime<Utc>],
    pub fetched_at: DateTime<Utc>,
}

pub async fn upsert(
    conn: &mut AsyncPgConnection,
    specialist_id: i64,
    branch_id: i64,
    snapshot: SnapshotDay<'_>,
) -> QueryResult<()> {
    diesel::insert_into(schedule_snapshots::table)
        .values((
            schedule_snapshots::specialist_id.eq(specialist_id),
            schedule_snapshots::branch_id.eq(branch_id),
            schedule_snapshots::day.eq(snapshot.day),
            schedule_snapshots::intervals.eq(snapshot.intervals),
            schedule_snapshots::free_starts.eq(snapshot.free_starts),
            schedule_snapshots::fetched_at.eq(snapshot.fetched_at),
        ))
        .on_conflict((
            schedule_snapshots::specialist_id,
            schedule_snapshots::branch_id,
            schedule_snapshots::day,
        ))
        .do_update()
        .set((
            schedule_snapshots::intervals.eq(snapshot.intervals),
            schedule_snapshots::free_starts.eq(snapshot.free_starts),
            schedule_snapshots::fetched_at.eq(snapshot.fetched_at),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Takes `start` out of the stored free starts of the day: it was just booked, and the
/// doctor list should not offer it until the day is read from the MIS again.
pub async fn forget_free_start(
    conn: &mut AsyncPgConnection,
    specialist_id: i64,
    branch_id: i64,
    day: NaiveDate,
    start: DateTime<Utc>,
) -> QueryResult<()> {
    KeepPrepared(
        diesel::update(
            schedule_snapshots::table
                .filter(schedule_snapshots::specialist_id.eq(specialist_id))
                .filter(schedule_snapshots::branch_id.eq(branch_id))
                .filter(schedule_snapshots::day.eq(day)),
        )
        .set(
            schedule_snapshots::free_starts
                .eq(array_remove(schedule_snapshots::free_starts, start)),
        ),
    )
    .execute(conn)
    .await
    .map(|_| ())
}

diesel::define_sql_function! {
    /// PostgreSQL's `array_remove(anyarray, anyelement)` over instants.
    fn array_remove(
        array: diesel::sql_types::Array<diesel::sql_types::Timestamptz>,
        element: diesel::sql_types::Timestamptz,
    ) -> diesel::sql_types::Array<diesel::sql_types::Timestamptz>;
}

pub async fn load_range(
    conn: &mut AsyncPgConnection,
    specialist_id: i64,
    branch_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> QueryResult<Vec<Snapshot>> {
    schedule_snapshots::table
        .filter(schedule_snapshots::specialist_id.eq(specialist_id))
        .filter(schedule_snapshots::branch_id.eq(branch_id))
        .filter(schedule_snapshots::day.between(from, to))
        .order(schedule_snapshots::day)
        .select(Snapshot::as_select())
        .load(conn)
        .await
}
