//! Periodic rounds of the server's background work (the intent reconciler, the change-feed
//! follower, the daily retention job): one replica at a time, under a PostgreSQL advisory
//! lock held on one connection for the round, so a replica that dies releases it with its
//! connection. Generic over the round's error, so work outside booking (`domain::retention`)
//! runs the same way.

use std::{future::Future, time::Duration};

use diesel_async::RunQueryDsl;
use tokio::{sync::watch, task::JoinHandle};

use crate::db::DbPool;

#[derive(diesel::QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
}

/// Runs `round` if this replica gets the advisory lock `key`; `Ok(None)` when another
/// replica holds it.
pub async fn locked<T, E>(
    db: &DbPool,
    key: i64,
    round: impl Future<Output = Result<T, E>>,
) -> Result<Option<T>, E>
where
    E: From<diesel_async::pooled_connection::deadpool::PoolError> + From<diesel::result::Error>,
{
    let mut conn = db.get().await?;
    let rows: Vec<Locked> = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
        .bind::<diesel::sql_types::BigInt, _>(key)
        .load(&mut conn)
        .await?;
    if !rows.into_iter().next().is_some_and(|r| r.locked) {
        return Ok(None);
    }
    let result = round.await;
    let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<diesel::sql_types::BigInt, _>(key)
        .execute(&mut conn)
        .await;
    result.map(Some)
}

/// Calls `round` every `interval` until `stop` turns true; a failed round is logged (at
/// warn, naming `what`) and the next one comes as usual.
pub fn every<F, Fut, E>(
    what: &'static str,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
    mut round: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: std::fmt::Display + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
            if let Err(e) = round().await {
                tracing::warn!(error = %e, "{what} round failed");
            }
        }
    })
}
