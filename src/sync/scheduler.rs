//! The periodic sync inside `serve`. Replicas coordinate through a PostgreSQL advisory
//! lock: the replica that gets it syncs, the others skip that round. The lock lives on a
//! dedicated connection, so it is released when the connection closes, even if the task
//! is cancelled mid-run.
//!
//! The periodic sync never allows a mass deactivation: a kind that would deactivate more
//! than `SYNC_MAX_DEACTIVATION_PERCENT` is refused (recorded in `sync_runs`, shown on
//! `/staff/sync`, logged at warn level) until an operator runs `sovamed sync <kind>
//! --allow-mass-deactivation`, or the source gives the full list again.

use std::time::Duration;

use diesel::QueryResult;
use diesel::{QueryableByName, sql_types::Bool};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::{KindFailed, Progress, Quiet, Sources, SyncKind, SyncOptions, SyncReport, run_kinds};

/// The advisory lock key of the directory sync ("sovamed sync" in ASCII, truncated).
const LOCK_KEY: i64 = 0x736f_7661_7379_6e63;

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// The sync's advisory lock, held on its own connection: whoever holds it syncs.
pub struct SyncLock(AsyncPgConnection);

impl SyncLock {
    /// The lock, or `None` when another replica (or an admin's "sync now") holds it.
    pub async fn try_acquire(database_url: &str) -> anyhow::Result<Option<Self>> {
        let mut conn = AsyncPgConnection::establish(database_url).await?;
        let rows: Vec<Locked> = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
            .bind::<diesel::sql_types::BigInt, _>(LOCK_KEY)
            .load(&mut conn)
            .await?;
        Ok(rows
            .into_iter()
            .next()
            .is_some_and(|r| r.locked)
            .then_some(Self(conn)))
    }

    /// Runs `kinds` in order and lets the lock go. A kind that fails (or is refused) stops
    /// the run; the error is then a [`KindFailed`].
    pub async fn run(
        mut self,
        sources: &Sources,
        kinds: &[SyncKind],
        options: &SyncOptions,
        progress: &dyn Progress,
    ) -> anyhow::Result<Vec<SyncReport>> {
        let result = run_kinds(&mut self.0, sources, kinds, options, progress, |report| {
            tracing::info!(kind = report.kind.as_str(), "{report}");
        })
        .await;
        // Closing the connection releases the lock; unlocking first keeps the intent explicit.
        let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)")
            .bind::<diesel::sql_types::BigInt, _>(LOCK_KEY)
            .execute(&mut self.0)
            .await;
        result.map_err(|(kind, error)| anyhow::Error::new(KindFailed { kind, error }))
    }
}

/// Whether some connection holds the sync's lock: a sync is running somewhere.
pub async fn is_running(conn: &mut AsyncPgConnection) -> QueryResult<bool> {
    // An advisory lock on one bigint shows in `pg_locks` split into two 32-bit halves.
    let rows: Vec<Locked> = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND classid::bigint = ($1 >> 32) AND objid::bigint = ($1 & 4294967295) \
         AND objsubid = 1) AS locked",
    )
    .bind::<diesel::sql_types::BigInt, _>(LOCK_KEY)
    .load(conn)
    .await?;
    Ok(rows.into_iter().next().is_some_and(|r| r.locked))
}

/// Runs every kind once if no other replica is syncing; `Ok(None)` when another holds the lock.
/// `options` are used as given, so the periodic sync passes them without
/// `allow_mass_deactivation`.
pub async fn run_once_locked(
    database_url: &str,
    sources: &Sources,
    options: &SyncOptions,
) -> anyhow::Result<Option<Vec<SyncReport>>> {
    match SyncLock::try_acquire(database_url).await? {
        Some(lock) => lock
            .run(sources, &SyncKind::ALL, options, &Quiet)
            .await
            .map(Some),
        None => Ok(None),
    }
}

/// Logs the outcome of one periodic round.
fn log_round(result: &anyhow::Result<Option<Vec<SyncReport>>>) {
    match result {
        Ok(Some(_)) => tracing::info!("periodic sync finished"),
        Ok(None) => tracing::info!("periodic sync skipped: another replica holds the lock"),
        Err(e) => match e
            .downcast_ref::<KindFailed>()
            .and_then(|failed| Some((failed.kind, failed.error.refusal()?)))
        {
            Some((kind, mass)) => tracing::warn!(
                kind = kind.as_str(),
                subject = mass.subject.as_str(),
                deactivated = mass.deactivated,
                active = mass.active_before,
                limit_percent = mass.max_percent,
                "periodic sync refused: would deactivate {mass}; the previous data stays; \
                 if this is real, run `sovamed sync {} --allow-mass-deactivation`",
                kind.as_str()
            ),
            None => tracing::warn!(error = %e, "periodic sync failed; the previous data stays"),
        },
    }
}

/// Syncs every `interval`, starting at once when `immediately`.
pub fn spawn(
    database_url: String,
    sources: Sources,
    options: SyncOptions,
    interval: Duration,
    immediately: bool,
) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if !immediately {
            ticker.tick().await;
        }
        loop {
            ticker.tick().await;
            log_round(&run_once_locked(&database_url, &sources, &options).await);
        }
    });
}
