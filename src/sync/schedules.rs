//! `sovamed sync schedules`: fetches the coming days of every active doctor in every branch
//! they work in, into Redis and PostgreSQL, so the first patient of the day never waits for
//! the MIS. A fixed number of MIS calls run at once, so the MIS is never flooded.

use std::sync::Arc;

use chrono::{Days, Utc};
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use tokio::{sync::Semaphore, task::JoinSet};

use crate::{
    db::{
        models::schedule_snapshot,
        schema::{branches, specialist_branches, specialists},
    },
    domain::{
        booking::schedule::{GridTarget, ScheduleCache},
        values::BranchZone,
    },
    sync::{Counts, Progress, SyncError, SyncKind},
};

/// MIS calls in flight at once.
pub const CONCURRENCY: usize = 4;

/// Fetches `days` days from today (branch-local) for every doctor and branch.
pub async fn prefetch(
    conn: &mut AsyncPgConnection,
    cache: &ScheduleCache,
    days: u32,
    progress: &dyn Progress,
) -> Result<Counts, SyncError> {
    let rows: Vec<(i64, i64, i64, i64, BranchZone)> = specialist_branches::table
        .inner_join(specialists::table)
        .inner_join(branches::table)
        .filter(specialists::active.eq(true))
        .filter(branches::active.eq(true))
        .select((
            specialists::id,
            specialists::mis_id,
            branches::id,
            branches::mis_id,
            branches::timezone,
        ))
        .order((specialists::id, branches::id))
        .load(conn)
        .await?;
    let mut counts = Counts::default();
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = JoinSet::new();
    let total = rows.len();
    for (specialist_id, specialist_mis_id, branch_id, branch_mis_id, zone) in rows {
        let target = GridTarget {
            specialist_id,
            specialist_mis_id,
            branch_id,
            branch_mis_id,
            zone,
        };
        let from = zone.today(Utc::now());
        let to = from
            .checked_add_days(Days::new(u64::from(days.max(1) - 1)))
            .unwrap_or(from);
        let before =
            schedule_snapshot::load_range(conn, specialist_id, branch_id, from, to).await?;
        let (cache, permits) = (cache.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            cache
                .fetch(&target, from, to)
                .await
                .map(|grids| (before, grids))
        });
    }
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        let (before, grids) = match joined {
            Ok(result) => result?,
            Err(e) => return Err(SyncError::Connection(format!("prefetch task: {e}"))),
        };
        done += 1;
        progress.message(
            SyncKind::Schedules,
            &format!("{done}/{total} doctor-branch pairs"),
        );
        for grid in grids {
            match before.iter().find(|s| s.day == grid.date) {
                None => counts.created += 1,
                Some(old)
                    if serde_json::to_value(&grid.intervals).ok().as_ref()
                        == Some(&old.intervals) =>
                {
                    counts.unchanged += 1
                }
                Some(_) => counts.updated += 1,
            }
        }
    }
    Ok(counts)
}
