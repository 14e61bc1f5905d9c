//! The schedule cache: a doctor's day grid per (specialist, branch, day) in Redis for
//! `SCHEDULE_CACHE_TTL_SECONDS`, with the last copy kept in PostgreSQL.
//!
//! Concurrent misses for one doctor and branch wait on one in-process lock, so fifty cold
//! readers make one MIS call. When the MIS fails, the PostgreSQL copy is served and marked
//! stale; only when there is no copy at all is it a 503. A booking or cancel drops the day.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, NaiveDate, Utc};
use fred::{interfaces::KeysInterface, types::Expiration};

use super::grid::DayGrid;
use crate::{
    db::{
        DbPool,
        models::schedule_snapshot::{self, SnapshotDay},
    },
    domain::values::BranchZone,
    integrations::infoclinica::{MisBooking, MisError},
    redis::Redis,
};

/// Where a window's days came from. The worst wins: any stale day makes the window stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Cache,
    Mis,
    Stale,
}

/// Days of one doctor in one branch.
#[derive(Debug, Clone)]
pub struct Window {
    pub days: Vec<DayGrid>,
    pub source: Source,
    /// When the oldest day was fetched from the MIS.
    pub fetched_at: DateTime<Utc>,
}

/// Which doctor and branch, with their MIS ids and the branch's zone (the grid's wall times
/// are in it).
#[derive(Debug, Clone, Copy)]
pub struct GridTarget {
    pub specialist_id: i64,
    pub specialist_mis_id: i64,
    pub branch_id: i64,
    pub branch_mis_id: i64,
    pub zone: BranchZone,
}

/// Why a window could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The MIS failed and PostgreSQL has no copy of the days asked for.
    #[error("MIS unavailable and no stored copy: {0}")]
    NoCopy(MisError),
    #[error("database: {0}")]
    Database(String),
}

/// One async lock per (specialist, branch): the single-flight guard of cache misses. It
/// holds when the last fetch under it failed, so readers that waited behind a failed fetch
/// take the stored copy at once instead of each trying the MIS again in turn.
type FetchLocks = Arc<Mutex<HashMap<(i64, i64), Arc<tokio::sync::Mutex<Option<Instant>>>>>>;

/// The longest a reader waits for the MIS by default (retries included); see
/// [`ScheduleCache::with_read_budget`].
const DEFAULT_READ_BUDGET: Duration = Duration::from_secs(8);

#[derive(Clone)]
pub struct ScheduleCache {
    redis: Redis,
    db: DbPool,
    mis: Arc<dyn MisBooking>,
    ttl: Duration,
    read_budget: Duration,
    locks: FetchLocks,
}

impl ScheduleCache {
    pub fn new(redis: Redis, db: DbPool, mis: Arc<dyn MisBooking>, ttl: Duration) -> Self {
        Self {
            redis,
            db,
            mis,
            ttl,
            read_budget: DEFAULT_READ_BUDGET,
            locks: Arc::default(),
        }
    }

    /// How long a reader waits for the MIS, retries included, before the stored copy is
    /// served (`INFOCLINICA_READ_BUDGET_SECONDS`). The fetch itself runs on and fills the
    /// cache for the readers after.
    pub fn with_read_budget(mut self, budget: Duration) -> Self {
        self.read_budget = budget;
        self
    }

    fn key(&self, specialist_id: i64, branch_id: i64, date: NaiveDate) -> String {
        self.redis
            .key(&format!("sched:{specialist_id}:{branch_id}:{date}"))
    }

    /// Cached days of the window; a Redis failure reads as a miss (the MIS still answers).
    async fn cached(&self, target: &GridTarget, dates: &[NaiveDate]) -> Vec<Option<DayGrid>> {
        if dates.is_empty() {
            return Vec::new();
        }
        let keys: Vec<String> = dates
            .iter()
            .map(|d| self.key(target.specialist_id, target.branch_id, *d))
            .collect();
        let values: Result<Vec<Option<String>>, _> = self.redis.pool.mget(keys).await;
        match values {
            Ok(values) => values
                .into_iter()
                .map(|v| v.and_then(|json| serde_json::from_str::<DayGrid>(&json).ok()))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "schedule cache unreadable; asking the MIS");
                vec![None; dates.len()]
            }
        }
    }

    fn lock_for(&self, target: &GridTarget) -> Arc<tokio::sync::Mutex<Option<Instant>>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Drop locks nobody holds any more, so the map does not grow without bound.
        if locks.len() > 10_000 {
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        locks
            .entry((target.specialist_id, target.branch_id))
            .or_default()
            .clone()
    }

    /// Whether every day of `from..=to` is in the cache (a read would not reach the MIS).
    pub async fn is_cached(&self, target: &GridTarget, from: NaiveDate, to: NaiveDate) -> bool {
        let dates: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
        self.cached(target, &dates)
            .await
            .iter()
            .all(Option::is_some)
    }

    /// The days `from..=to`, from the cache, the MIS, or the stored copy.
    pub async fn window(
        &self,
        target: &GridTarget,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Window, ScheduleError> {
        let dates: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
        let mut days = self.cached(target, &dates).await;
        let mut source = Source::Cache;
        if days.iter().any(Option::is_none) {
            let arrived = Instant::now();
            let lock = self.lock_for(target);
            let mut last_failure = lock.lock().await;
            // Another request may have filled the cache while this one waited.
            let missing: Vec<NaiveDate> = dates
                .iter()
                .zip(&days)
                .filter(|(_, d)| d.is_none())
                .map(|(date, _)| *date)
                .collect();
            let refilled = self.cached(target, &missing).await;
            let mut still_missing = Vec::new();
            for (date, grid) in missing.iter().zip(refilled) {
                match grid {
                    Some(grid) => place(&dates, &mut days, grid),
                    None => still_missing.push(*date),
                }
            }
            if let (Some(first), Some(last)) = (still_missing.first(), still_missing.last()) {
                // A fetch that failed while this reader waited says what the MIS would.
                let fetched = if last_failure.is_some_and(|at| at > arrived) {
                    Err(MisError::Timeout(self.read_budget))
                } else {
                    self.fetch_within_budget(target, *first, *last).await
                };
                *last_failure = fetched.is_err().then(Instant::now);
                match fetched {
                    Ok(grids) => {
                        source = Source::Mis;
                        for grid in grids {
                            place(&dates, &mut days, grid);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "MIS schedule failed; serving the stored copy");
                        let stored = self.stored(target, *first, *last).await?;
                        if stored.is_empty() {
                            return Err(ScheduleError::NoCopy(e));
                        }
                        source = Source::Stale;
                        for grid in stored {
                            place(&dates, &mut days, grid);
                        }
                    }
                }
            }
        }
        let result = match source {
            Source::Cache => "hit",
            Source::Mis => "miss",
            Source::Stale => "stale",
        };
        metrics::counter!("schedule_cache_requests_total", "result" => result).increment(1);
        let days: Vec<DayGrid> = days.into_iter().flatten().collect();
        let fetched_at = days
            .iter()
            .map(|d| d.fetched_at)
            .min()
            .unwrap_or_else(Utc::now);
        Ok(Window {
            days,
            source,
            fetched_at,
        })
    }

    /// [`ScheduleCache::fetch`] in a task of its own, waited for at most the read budget: a
    /// slow MIS costs a reader the budget, not the client's retries times its timeout, and
    /// the answer still fills the cache when it comes.
    async fn fetch_within_budget(
        &self,
        target: &GridTarget,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayGrid>, MisError> {
        let (this, target) = (self.clone(), *target);
        let fetch = tokio::spawn(async move { this.fetch(&target, from, to).await });
        match tokio::time::timeout(self.read_budget, fetch).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(MisError::Unreachable(format!("schedule fetch task: {e}"))),
            Err(_) => Err(MisError::Timeout(self.read_budget)),
        }
    }

    /// Asks the MIS for `from..=to` and stores the answer in Redis and PostgreSQL.
    pub async fn fetch(
        &self,
        target: &GridTarget,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayGrid>, MisError> {
        let answer = self
            .mis
            .schedule(target.branch_mis_id, target.specialist_mis_id, from, to)
            .await?;
        let grids = DayGrid::from_mis(&answer, from, to, Utc::now());
        self.store(target, &grids).await;
        Ok(grids)
    }

    async fn store(&self, target: &GridTarget, grids: &[DayGrid]) {
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(60).max(1);
        for grid in grids {
            let Ok(json) = serde_json::to_string(grid) else {
                continue;
            };
            let key = self.key(target.specialist_id, target.branch_id, grid.date);
            let written: Result<(), _> = self
                .redis
                .pool
                .set(key, json, Some(Expiration::EX(ttl)), None, false)
                .await;
            if let Err(e) = written {
                tracing::warn!(error = %e, "schedule not cached");
            }
        }
        let stored = async {
            let mut conn = self.db.get().await.map_err(|e| e.to_string())?;
            for grid in grids {
                let intervals = serde_json::to_value(&grid.intervals).map_err(|e| e.to_string())?;
                let free_starts = grid.free_starts(target.zone.tz());
                schedule_snapshot::upsert(
                    &mut conn,
                    target.specialist_id,
                    target.branch_id,
                    SnapshotDay {
                        day: grid.date,
                        intervals: &intervals,
                        free_starts: &free_starts,
                        fetched_at: grid.fetched_at,
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(())
        };
        if let Err(e) = stored.await {
            tracing::warn!(error = %e, "schedule snapshot not stored");
        }
    }

    async fn stored(
        &self,
        target: &GridTarget,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayGrid>, ScheduleError> {
        let mut conn = self
            .db
            .get()
            .await
            .map_err(|e| ScheduleError::Database(e.to_string()))?;
        let rows = schedule_snapshot::load_range(
            &mut conn,
            target.specialist_id,
            target.branch_id,
            from,
            to,
        )
        .await
        .map_err(|e| ScheduleError::Database(e.to_string()))?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let intervals = serde_json::from_value(row.intervals).ok()?;
                Some(DayGrid {
                    date: row.day,
                    intervals,
                    fetched_at: row.fetched_at,
                })
            })
            .collect())
    }

    /// Takes a just-booked start out of the stored copy's free starts (the Redis day is
    /// dropped by [`ScheduleCache::invalidate`]), so the doctor list stops offering it before
    /// the day is read again. A failure only leaves the list one read behind.
    pub async fn forget_free_start(
        &self,
        specialist_id: i64,
        branch_id: i64,
        start: &DateTime<chrono_tz::Tz>,
    ) {
        let forgotten = async {
            let mut conn = self.db.get().await.map_err(|e| e.to_string())?;
            schedule_snapshot::forget_free_start(
                &mut conn,
                specialist_id,
                branch_id,
                start.date_naive(),
                start.with_timezone(&Utc),
            )
            .await
            .map_err(|e| e.to_string())
        };
        if let Err(e) = forgotten.await {
            tracing::warn!(error = %e, "booked start left in the stored schedule");
        }
    }

    /// Drops a day from the cache after a booking, a move or a cancel.
    pub async fn invalidate(&self, specialist_id: i64, branch_id: i64, date: NaiveDate) {
        let dropped: Result<i64, _> = self
            .redis
            .pool
            .del(self.key(specialist_id, branch_id, date))
            .await;
        if let Err(e) = dropped {
            tracing::warn!(error = %e, "schedule cache entry not dropped");
        }
    }
}

fn place(dates: &[NaiveDate], days: &mut [Option<DayGrid>], grid: DayGrid) {
    if let Some(i) = dates.iter().position(|d| *d == grid.date) {
        days[i] = Some(grid);
    }
}
