//! The periodic sync inside `serve`. Replicas coordinate through a PostgreSQL advisory
//! lock: the replica that gets it syncs, the others skip that round. The lock lives on a
//! dedicated connection, so it is released when the connection closes, even if the task
//! is cancelled mid-run.

use std::time::Duration;

use diesel::{QueryableByName, sql_types::Bool};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::{Quiet, Sources, SyncKind, SyncOptions, SyncReport, run_kinds};

/// The advisory lock key of the directory sync ("sovamed sync" in ASCII, truncated).
const LOCK_KEY: i64 = 0x736f_7661_7379_6e63;

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// Runs every kind once if no other replica is syncing; `Ok(None)` when another holds the lock.
pub async fn run_once_locked(
    database_url: &str,
    sources: &Sources,
    options: &SyncOptions,
) -> anyhow::Result<Option<Vec<SyncReport>>> {
    let mut conn = AsyncPgConnection::establish(database_url).await?;
    let rows: Vec<Locked> = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
        .bind::<diesel::sql_types::BigInt, _>(LOCK_KEY)
        .load(&mut conn)
        .await?;
    if !rows.into_iter().next().is_some_and(|r| r.locked) {
        return Ok(None);
    }
    let result = run_kinds(
        &mut conn,
        sources,
        &SyncKind::ALL,
        options,
        &Quiet,
        |report| {
            tracing::info!(kind = report.kind.as_str(), "{report}");
        },
    )
    .await;
    // Closing the connection releases the lock; unlocking first keeps the intent explicit.
    let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<diesel::sql_types::BigInt, _>(LOCK_KEY)
        .execute(&mut conn)
        .await;
    result
        .map(Some)
        .map_err(|(kind, e)| anyhow::anyhow!("sync {} failed: {e}", kind.as_str()))
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
            match run_once_locked(&database_url, &sources, &options).await {
                Ok(Some(_)) => tracing::info!("periodic sync finished"),
                Ok(None) => tracing::info!("periodic sync skipped: another replica holds the lock"),
                Err(e) => {
                    tracing::warn!(error = %e, "periodic sync failed; the previous data stays")
                }
            }
        }
    });
}
