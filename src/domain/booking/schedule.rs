//! The schedule cache: a doctor's day grid per (specialist, branch, day) on two levels in
//! front of the MIS, with the last copy kept in PostgreSQL.
//!
//! - **Memory** (this process, `moka`, bounded by `SCHEDULE_MEMORY_CACHE_MB`): each day
//!   ready to serve ([`ReadyDay`]), for at most the time its Redis copy had left when it was
//!   taken, so `SCHEDULE_CACHE_TTL_SECONDS` stays the upper bound on staleness. Used only
//!   while this process hears the cluster's invalidations ([`crate::domain::cluster`]).
//! - **Redis**, for `SCHEDULE_CACHE_TTL_SECONDS`, shared by every replica.
//!
//! A miss is fetched by one replica: concurrent misses for one doctor and branch wait on an
//! in-process lock, and across replicas on a short Redis lock with a fencing value; the
//! others wait for the "filled" message (or the lock's expiry) and read the cache. When the
//! MIS fails, the PostgreSQL copy is served and marked stale; only when there is no copy at
//! all is it a 503. A booking, move, cancel or change-feed event drops the day everywhere
//! ([`ScheduleCache::invalidate`]).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, NaiveDate, Utc};
use fred::{
    interfaces::{KeysInterface, LuaInterface},
    types::{Expiration, Value},
};
use tokio::sync::broadcast;

mod flight;

use super::{grid::DayGrid, ready::ReadyDay};
use crate::{
    db::{
        DbPool,
        models::schedule_snapshot::{self, SnapshotDay},
    },
    domain::{
        cluster::{self, Notice},
        values::BranchZone,
    },
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
    pub days: Vec<Arc<ReadyDay>>,
    pub source: Source,
    /// When the oldest day was fetched from the MIS.
    pub fetched_at: DateTime<Utc>,
}

impl Window {
    pub fn new(days: Vec<Arc<ReadyDay>>, source: Source) -> Self {
        let fetched_at = days
            .iter()
            .map(|d| d.fetched_at)
            .min()
            .unwrap_or_else(Utc::now);
        Self {
            days,
            source,
            fetched_at,
        }
    }
}

/// Which doctor and branch, with their MIS ids and the branch's zone (the grid's wall times
/// are in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// A replica fetched (`ok`) or failed to fetch days of a doctor in a branch: what readers
/// waiting on another replica's fetch wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filled {
    pub specialist_id: i64,
    pub branch_id: i64,
    pub ok: bool,
}

/// One async lock per (specialist, branch): the single-flight guard of cache misses in this
/// process. It holds when the last fetch under it failed, so readers that waited behind a
/// failed fetch take the stored copy at once instead of each trying the MIS again in turn.
type FetchLocks = Arc<Mutex<HashMap<(i64, i64), Arc<tokio::sync::Mutex<Option<Instant>>>>>>;

/// (specialist, branch, day).
type DayKey = (i64, i64, NaiveDate);

/// A day in memory and how long it may stay there.
#[derive(Clone)]
struct MemoryDay {
    day: Arc<ReadyDay>,
    ttl: Duration,
}

/// Each entry expires after its own time to live, also when it replaces an older one.
struct EntryTtl;

impl moka::Expiry<DayKey, MemoryDay> for EntryTtl {
    fn expire_after_create(
        &self,
        _key: &DayKey,
        value: &MemoryDay,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &DayKey,
        value: &MemoryDay,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

type Memory = moka::sync::Cache<DayKey, MemoryDay>;

/// What every clone of one cache shares.
struct Shared {
    /// This cache's name in the cluster's messages, so it knows its own "filled".
    origin: String,
    /// Counts drops from memory. A day read from Redis enters memory only when no drop came
    /// while it was read: the copy read may be the one dropped.
    drops: AtomicU64,
    /// Whether this process is subscribed to the cluster's invalidations: memory is used
    /// only then (see [`crate::domain::cluster`]).
    listening: AtomicBool,
    /// Wakes readers waiting for another replica's fetch.
    filled: broadcast::Sender<Filled>,
}

/// The longest a reader waits for the MIS by default (retries included); see
/// [`ScheduleCache::with_read_budget`].
const DEFAULT_READ_BUDGET: Duration = Duration::from_secs(8);

/// The days of `KEYS` and the milliseconds each has left in Redis, in one round trip:
/// `[value or nil, pttl, value or nil, pttl, …]`.
const GET_WITH_TTL: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  out[2 * i - 1] = redis.call('GET', key)
  out[2 * i] = redis.call('PTTL', key)
end
return out";

#[derive(Clone)]
pub struct ScheduleCache {
    redis: Redis,
    db: DbPool,
    mis: Arc<dyn MisBooking>,
    ttl: Duration,
    read_budget: Duration,
    locks: FetchLocks,
    /// `None`: no memory level (`SCHEDULE_MEMORY_CACHE_MB=0`, the command line).
    memory: Option<Memory>,
    shared: Arc<Shared>,
}

impl ScheduleCache {
    /// A cache over Redis alone; [`ScheduleCache::with_memory`] adds the in-process level.
    pub fn new(redis: Redis, db: DbPool, mis: Arc<dyn MisBooking>, ttl: Duration) -> Self {
        let (filled, _) = broadcast::channel(256);
        Self {
            redis,
            db,
            mis,
            ttl,
            read_budget: DEFAULT_READ_BUDGET,
            locks: Arc::default(),
            memory: None,
            shared: Arc::new(Shared {
                origin: format!("{:016x}", rand::random::<u64>()),
                drops: AtomicU64::new(0),
                listening: AtomicBool::new(false),
                filled,
            }),
        }
    }

    /// How long a reader waits for the MIS, retries included, before the stored copy is
    /// served (`INFOCLINICA_READ_BUDGET_SECONDS`). The fetch itself runs on and fills the
    /// cache for the readers after. Also how long the cluster's fetch lock lives.
    pub fn with_read_budget(mut self, budget: Duration) -> Self {
        self.read_budget = budget;
        self
    }

    /// The in-process level, holding at most `bytes` of days (`SCHEDULE_MEMORY_CACHE_MB`);
    /// 0 leaves it off.
    pub fn with_memory(mut self, bytes: u64) -> Self {
        self.memory = (bytes > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(bytes)
                .weigher(|_key: &DayKey, value: &MemoryDay| value.day.weight())
                .expire_after(EntryTtl)
                .build()
        });
        self
    }

    fn key(&self, specialist_id: i64, branch_id: i64, date: NaiveDate) -> String {
        self.redis
            .key(&format!("sched:{specialist_id}:{branch_id}:{date}"))
    }

    /// This cache's name in the cluster's messages.
    pub fn origin(&self) -> &str {
        &self.shared.origin
    }

    /// Whether this process hears the cluster's invalidations (its subscriber is subscribed).
    pub fn listening(&self) -> bool {
        self.shared.listening.load(Ordering::SeqCst)
    }

    /// Whether the memory level is in use: it exists and this process hears the cluster.
    pub fn memory_in_use(&self) -> bool {
        self.memory.is_some() && self.listening()
    }

    /// Set by the cluster's subscriber: on once subscribed (after clearing memory), off as
    /// soon as its connection fails, since messages may be missed from then on.
    pub fn set_listening(&self, listening: bool) {
        self.shared.listening.store(listening, Ordering::SeqCst);
    }

    /// Drops a day from memory (not from Redis).
    pub fn forget_day(&self, specialist_id: i64, branch_id: i64, date: NaiveDate) {
        self.shared.drops.fetch_add(1, Ordering::SeqCst);
        if let Some(memory) = &self.memory {
            memory.invalidate(&(specialist_id, branch_id, date));
        }
    }

    /// Drops every day from memory: after a reconnection of the subscriber, or when it fell
    /// behind, since invalidations may have been missed.
    pub fn forget_everything(&self) {
        self.shared.drops.fetch_add(1, Ordering::SeqCst);
        if let Some(memory) = &self.memory {
            memory.invalidate_all();
        }
    }

    /// What the cluster's subscriber does with a "filled" message: another replica put newer
    /// copies of these days into Redis, so ours are dropped; and readers waiting for that
    /// doctor and branch are woken.
    pub fn heard_filled(&self, origin: &str, filled: Filled, (from, to): (NaiveDate, NaiveDate)) {
        if origin != self.shared.origin {
            for date in from.iter_days().take_while(|d| *d <= to).take(366) {
                self.forget_day(filled.specialist_id, filled.branch_id, date);
            }
        }
        // Nobody waiting is fine.
        let _ = self.shared.filled.send(filled);
    }

    /// A day from memory, if there and in use.
    fn remembered(&self, key: &DayKey) -> Option<Arc<ReadyDay>> {
        if !self.memory_in_use() {
            return None;
        }
        self.memory.as_ref()?.get(key).map(|entry| entry.day)
    }

    /// Keeps a day in memory for `ttl`, unless a drop came since `drops_before` (the day
    /// may be the copy that was dropped).
    fn remember(&self, key: DayKey, day: Arc<ReadyDay>, ttl: Duration, drops_before: u64) {
        let Some(memory) = &self.memory else {
            return;
        };
        if ttl.is_zero() || !self.memory_in_use() {
            return;
        }
        if self.shared.drops.load(Ordering::SeqCst) != drops_before {
            return;
        }
        memory.insert(key, MemoryDay { day, ttl });
        // A drop between the look above and the insert would have found nothing to drop.
        if self.shared.drops.load(Ordering::SeqCst) != drops_before {
            memory.invalidate(&key);
        }
    }

    /// The whole window from memory, without Redis; `None` when a day is missing there (or
    /// memory is not in use). The hit path of a schedule read.
    pub fn from_memory(
        &self,
        target: &GridTarget,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Option<Window> {
        if !self.memory_in_use() {
            return None;
        }
        let memory = self.memory.as_ref()?;
        let mut days = Vec::new();
        for date in from.iter_days().take_while(|d| *d <= to) {
            let entry = memory.get(&(target.specialist_id, target.branch_id, date))?;
            days.push(entry.day);
        }
        metrics::counter!("schedule_cache_requests_total", "result" => "hit").increment(1);
        metrics::counter!("schedule_cache_memory_hits_total").increment(1);
        Some(Window::new(days, Source::Cache))
    }

    /// Cached days of `dates`: from memory, then from Redis (which fills memory). A Redis
    /// failure reads as a miss (the MIS still answers).
    async fn cached(&self, target: &GridTarget, dates: &[NaiveDate]) -> Vec<Option<Arc<ReadyDay>>> {
        let mut days: Vec<Option<Arc<ReadyDay>>> = dates
            .iter()
            .map(|date| self.remembered(&(target.specialist_id, target.branch_id, *date)))
            .collect();
        let missing = missing_dates(dates, &days);
        if missing.is_empty() {
            return days;
        }
        let drops_before = self.shared.drops.load(Ordering::SeqCst);
        let read = self.read_redis(target, &missing).await;
        for found in read.into_iter().flatten() {
            let (grid, left) = found;
            let day = Arc::new(ReadyDay::new(grid, target.zone.tz()));
            self.remember(
                (target.specialist_id, target.branch_id, day.date),
                Arc::clone(&day),
                left,
                drops_before,
            );
            place(dates, &mut days, day);
        }
        days
    }

    /// Days of `dates` from Redis with the time each has left there.
    async fn read_redis(
        &self,
        target: &GridTarget,
        dates: &[NaiveDate],
    ) -> Vec<Option<(DayGrid, Duration)>> {
        let keys: Vec<String> = dates
            .iter()
            .map(|d| self.key(target.specialist_id, target.branch_id, *d))
            .collect();
        let answer: Result<Vec<Value>, _> = self.redis.pool.eval(GET_WITH_TTL, keys, ()).await;
        match answer {
            Ok(values) if values.len() == 2 * dates.len() => values
                .chunks(2)
                .map(|pair| {
                    let [json, left_ms] = pair else {
                        return None;
                    };
                    let grid: DayGrid = serde_json::from_str(&json.as_str()?).ok()?;
                    let left = match left_ms.as_i64()? {
                        ms if ms > 0 => Duration::from_millis(u64::try_from(ms).ok()?),
                        // No expiry (written by hand): our own TTL at most.
                        -1 => self.ttl,
                        _ => return None,
                    };
                    Some((grid, left.min(self.ttl)))
                })
                .collect(),
            Ok(values) => {
                tracing::warn!(
                    got = values.len(),
                    "unexpected answer of the schedule cache; asking the MIS"
                );
                vec![None; dates.len()]
            }
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

    /// Whether every day of `from..=to` is in the cache (a read would not reach the MIS);
    /// memory is asked first, so a hit there costs no Redis call.
    pub async fn is_cached(&self, target: &GridTarget, from: NaiveDate, to: NaiveDate) -> bool {
        let dates: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
        self.cached(target, &dates)
            .await
            .iter()
            .all(Option::is_some)
    }

    /// The days `from..=to`, from memory, Redis, the MIS, or the stored copy.
    pub async fn window(
        &self,
        target: &GridTarget,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Window, ScheduleError> {
        if let Some(window) = self.from_memory(target, from, to) {
            return Ok(window);
        }
        let dates: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
        let mut days = self.cached(target, &dates).await;
        let mut source = Source::Cache;
        if days.iter().any(Option::is_none) {
            let arrived = Instant::now();
            let lock = self.lock_for(target);
            let mut last_failure = lock.lock().await;
            // Another request may have filled the cache while this one waited.
            let missing = missing_dates(&dates, &days);
            let refilled = self.cached(target, &missing).await;
            for day in refilled.into_iter().flatten() {
                place(&dates, &mut days, day);
            }
            let still_missing = missing_dates(&dates, &days);
            if !still_missing.is_empty() {
                // A fetch that failed while this reader waited says what the MIS would.
                let fetched = if last_failure.is_some_and(|at| at > arrived) {
                    Err(MisError::Timeout(self.read_budget))
                } else {
                    self.fetch_in_cluster(target, still_missing.clone()).await
                };
                *last_failure = fetched.is_err().then(Instant::now);
                match fetched {
                    Ok(fetched) => {
                        source = Source::Mis;
                        for day in fetched {
                            place(&dates, &mut days, day);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "MIS schedule failed; serving the stored copy");
                        let (first, last) = bounds(&still_missing);
                        let stored = self.stored(target, first, last).await?;
                        if stored.is_empty() {
                            return Err(ScheduleError::NoCopy(e));
                        }
                        source = Source::Stale;
                        for grid in stored {
                            place(
                                &dates,
                                &mut days,
                                Arc::new(ReadyDay::new(grid, target.zone.tz())),
                            );
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
        Ok(Window::new(days.into_iter().flatten().collect(), source))
    }

    /// The MIS fetch in a task of its own, waited for at most the read budget: a slow MIS
    /// costs a reader the budget, not the client's retries times its timeout, and the answer
    /// still fills the cache when it comes. The task lets the cluster's lock go when done.
    async fn fetch_within_budget(
        &self,
        target: &GridTarget,
        from: NaiveDate,
        to: NaiveDate,
        lock: Option<(String, String)>,
    ) -> Result<Vec<Arc<ReadyDay>>, MisError> {
        let (this, target) = (self.clone(), *target);
        let fetch = tokio::spawn(async move {
            let fetched = this.fetch_ready(&target, from, to).await;
            if let Some((key, token)) = lock {
                this.release_lock(key, token).await;
            }
            fetched
        });
        match tokio::time::timeout(self.read_budget, fetch).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(MisError::Unreachable(format!("schedule fetch task: {e}"))),
            Err(_) => Err(MisError::Timeout(self.read_budget)),
        }
    }

    /// Asks the MIS for `from..=to` and stores the answer in Redis, memory and PostgreSQL
    /// (`sovamed sync schedules` uses it directly).
    pub async fn fetch(
        &self,
        target: &GridTarget,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayGrid>, MisError> {
        let days = self.fetch_ready(target, from, to).await?;
        Ok(days.iter().map(|day| day.grid().clone()).collect())
    }

    /// [`ScheduleCache::fetch`], the days ready to serve; the cluster hears "filled" either
    /// way, so readers waiting on this fetch elsewhere stop waiting.
    async fn fetch_ready(
        &self,
        target: &GridTarget,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Arc<ReadyDay>>, MisError> {
        let drops_before = self.shared.drops.load(Ordering::SeqCst);
        let answer = self
            .mis
            .schedule(target.branch_mis_id, target.specialist_mis_id, from, to)
            .await;
        let filled = |ok| Notice::ScheduleFilled {
            origin: self.shared.origin.clone(),
            specialist_id: target.specialist_id,
            branch_id: target.branch_id,
            from,
            to,
            ok,
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                cluster::publish(&self.redis, &filled(false)).await;
                return Err(e);
            }
        };
        let grids = DayGrid::from_mis(&answer, from, to, Utc::now());
        let days: Vec<Arc<ReadyDay>> = grids
            .iter()
            .map(|grid| Arc::new(ReadyDay::new(grid.clone(), target.zone.tz())))
            .collect();
        // Memory before Redis, so the memory copy never outlives the Redis one.
        for day in &days {
            self.remember(
                (target.specialist_id, target.branch_id, day.date),
                Arc::clone(day),
                self.ttl,
                drops_before,
            );
        }
        self.store_in_redis(target, &grids).await;
        cluster::publish(&self.redis, &filled(true)).await;
        self.store_snapshots(target, &days).await;
        Ok(days)
    }

    async fn store_in_redis(&self, target: &GridTarget, grids: &[DayGrid]) {
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
    }

    async fn store_snapshots(&self, target: &GridTarget, days: &[Arc<ReadyDay>]) {
        let stored = async {
            let mut conn = self.db.get().await.map_err(|e| e.to_string())?;
            for day in days {
                let grid = day.grid();
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

    /// Drops a day everywhere after a booking, a move, a cancel or a change-feed event:
    /// from Redis, from this process's memory at once, and (by a "schedule changed" message)
    /// from every other process's memory. Redis goes first, so a reader that takes the day
    /// into memory after the drop can only have read it from Redis after the delete.
    pub async fn invalidate(&self, specialist_id: i64, branch_id: i64, date: NaiveDate) {
        cluster::delete_then_publish(
            &self.redis,
            self.key(specialist_id, branch_id, date),
            &Notice::ScheduleChanged {
                specialist_id,
                branch_id,
                date,
            },
        )
        .await;
        self.forget_day(specialist_id, branch_id, date);
    }
}

/// The dates of `dates` that `days` has no day for.
fn missing_dates(dates: &[NaiveDate], days: &[Option<Arc<ReadyDay>>]) -> Vec<NaiveDate> {
    dates
        .iter()
        .zip(days)
        .filter(|(_, day)| day.is_none())
        .map(|(date, _)| *date)
        .collect()
}

/// The first and last of `dates` (sorted; never called empty, `NaiveDate::MIN` then).
fn bounds(dates: &[NaiveDate]) -> (NaiveDate, NaiveDate) {
    match (dates.first(), dates.last()) {
        (Some(first), Some(last)) => (*first, *last),
        _ => (NaiveDate::MIN, NaiveDate::MIN),
    }
}

fn place(dates: &[NaiveDate], days: &mut [Option<Arc<ReadyDay>>], day: Arc<ReadyDay>) {
    if let Some(i) = dates.iter().position(|d| *d == day.date) {
        days[i] = Some(day);
    }
}
