//! The `sync_runs` table: one row per sync run of one kind.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::sync_runs;

#[derive(Debug, Insertable)]
#[diesel(table_name = sync_runs)]
pub struct NewSyncRun<'a> {
    pub kind: &'a str,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub succeeded: bool,
    pub created: i32,
    pub updated: i32,
    pub unchanged: i32,
    pub deactivated: i32,
    pub error: Option<&'a str>,
    pub notes: &'a str,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sync_runs, check_for_backend(diesel::pg::Pg))]
pub struct SyncRun {
    pub id: i64,
    pub kind: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub succeeded: bool,
    pub created: i32,
    pub updated: i32,
    pub unchanged: i32,
    pub deactivated: i32,
    pub error: Option<String>,
    pub notes: String,
}

impl SyncRun {
    pub fn duration_ms(&self) -> i64 {
        (self.finished_at - self.started_at).num_milliseconds()
    }
}

pub async fn insert(conn: &mut AsyncPgConnection, run: &NewSyncRun<'_>) -> QueryResult<()> {
    diesel::insert_into(sync_runs::table)
        .values(run)
        .execute(conn)
        .await
        .map(|_| ())
}

/// The newest run of each kind.
pub async fn latest_per_kind(conn: &mut AsyncPgConnection) -> QueryResult<Vec<SyncRun>> {
    sync_runs::table
        .distinct_on(sync_runs::kind)
        .order((sync_runs::kind, sync_runs::started_at.desc()))
        .select(SyncRun::as_select())
        .load(conn)
        .await
}
