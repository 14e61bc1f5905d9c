//! The `schedule_snapshots` table: the last grid the MIS gave for a doctor's day, served
//! (marked stale) when the MIS is down.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::schedule_snapshots;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = schedule_snapshots, check_for_backend(diesel::pg::Pg))]
pub struct Snapshot {
    pub day: NaiveDate,
    pub intervals: serde_json::Value,
    pub fetched_at: DateTime<Utc>,
}

pub async fn upsert(
    conn: &mut AsyncPgConnection,
    specialist_id: i64,
    branch_id: i64,
    day: NaiveDate,
    intervals: &serde_json::Value,
    fetched_at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(schedule_snapshots::table)
        .values((
            schedule_snapshots::specialist_id.eq(specialist_id),
            schedule_snapshots::branch_id.eq(branch_id),
            schedule_snapshots::day.eq(day),
            schedule_snapshots::intervals.eq(intervals),
            schedule_snapshots::fetched_at.eq(fetched_at),
        ))
        .on_conflict((
            schedule_snapshots::specialist_id,
            schedule_snapshots::branch_id,
            schedule_snapshots::day,
        ))
        .do_update()
        .set((
            schedule_snapshots::intervals.eq(intervals),
            schedule_snapshots::fetched_at.eq(fetched_at),
        ))
        .execute(conn)
        .await
        .map(|_| ())
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
