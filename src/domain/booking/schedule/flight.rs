//! Single flight across replicas: a cold day is fetched from the MIS by one replica. The
//! one that takes a short Redis lock per doctor and branch (`SET NX PX` for the read budget,
//! a random fencing value) asks; the others wait for its "schedule filled" message, or the
//! lock's expiry, and read the cache. The lock is let go only while it still holds our
//! value. Within one process the parent module's lock already lets one request through.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::NaiveDate;
use fred::{
    interfaces::{KeysInterface, LuaInterface},
    types::{Expiration, SetOptions},
};
use tokio::sync::broadcast;

use super::{Filled, GridTarget, ScheduleCache, bounds};
use crate::{domain::booking::ready::ReadyDay, integrations::infoclinica::MisError};

/// How often a reader that waits on another replica's fetch looks at the cache and the lock
/// again, when no "filled" message wakes it first (pub/sub lost, or the lock expired).
const LOCK_POLL: Duration = Duration::from_millis(200);

/// Deletes the fetch lock only while it still holds our fencing value: a lock that expired
/// and was taken by another replica is not ours to release.
const RELEASE_IF_OURS: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

impl ScheduleCache {
    /// The `missing` days from the MIS, asked by one replica of the cluster: whoever takes
    /// the Redis lock of this doctor and branch asks; the others wait for its "filled"
    /// message (or the lock's expiry, looking every `LOCK_POLL`) and read the cache, and
    /// take the lock themselves when the days are still missing after it is gone. The
    /// whole wait is bounded by the read budget.
    pub(super) async fn fetch_in_cluster(
        &self,
        target: &GridTarget,
        mut missing: Vec<NaiveDate>,
    ) -> Result<Vec<Arc<ReadyDay>>, MisError> {
        let deadline = Instant::now() + self.read_budget;
        let lock_key = self.redis.key(&format!(
            "schedlock:{}:{}",
            target.specialist_id, target.branch_id
        ));
        // Listening before the first try, so a "filled" between the try and the wait counts.
        let mut filled = self.shared.filled.subscribe();
        let mut found: Vec<Arc<ReadyDay>> = Vec::new();
        loop {
            let token = format!("{}:{:016x}", self.shared.origin, rand::random::<u64>());
            match self.take_lock(&lock_key, &token).await {
                Ok(true) => {
                    // The holder before us may have filled the days just before letting go.
                    let again = self.cached(target, &missing).await;
                    take_found(&mut missing, &mut found, again);
                    if missing.is_empty() {
                        self.release_lock(lock_key, token).await;
                        return Ok(found);
                    }
                    let (first, last) = bounds(&missing);
                    let fetched = self
                        .fetch_within_budget(target, first, last, Some((lock_key, token)))
                        .await?;
                    found.extend(fetched);
                    return Ok(found);
                }
                Err(e) => {
                    // Without Redis there is no lock to share: this process's own guard is
                    // all the single flight there is.
                    tracing::warn!(error = %e, "schedule fetch lock unavailable; asking the MIS");
                    let (first, last) = bounds(&missing);
                    let fetched = self.fetch_within_budget(target, first, last, None).await?;
                    found.extend(fetched);
                    return Ok(found);
                }
                Ok(false) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(MisError::Timeout(self.read_budget));
                    }
                    let heard =
                        wait_filled(&mut filled, target, (deadline - now).min(LOCK_POLL)).await;
                    if heard == Some(false) {
                        // The replica asking the MIS got no answer; asking again in turn
                        // would only make every reader wait longer.
                        return Err(MisError::Unreachable(
                            "another replica's schedule fetch failed".into(),
                        ));
                    }
                    let again = self.cached(target, &missing).await;
                    take_found(&mut missing, &mut found, again);
                    if missing.is_empty() {
                        return Ok(found);
                    }
                }
            }
        }
    }

    /// `SET NX PX`: the fetch lock of a doctor and branch, for the read budget.
    async fn take_lock(&self, key: &str, token: &str) -> Result<bool, fred::error::Error> {
        let ms = i64::try_from(self.read_budget.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let taken: Option<String> = self
            .redis
            .pool
            .set(
                key,
                token,
                Some(Expiration::PX(ms)),
                Some(SetOptions::NX),
                false,
            )
            .await?;
        Ok(taken.is_some())
    }

    /// Lets the fetch lock go if it is still ours; a failure leaves it to expire.
    pub(super) async fn release_lock(&self, key: String, token: String) {
        let released: Result<i64, _> = self
            .redis
            .pool
            .eval(RELEASE_IF_OURS, vec![key], vec![token])
            .await;
        if let Err(e) = released {
            tracing::debug!(error = %e, "schedule fetch lock left to expire");
        }
    }
}

/// Waits up to `wait` for a "filled" about the target's doctor and branch: `Some(ok)` when
/// one came; `None` when the time ran out or messages were lost (the cache is looked at
/// then anyway).
async fn wait_filled(
    filled: &mut broadcast::Receiver<Filled>,
    target: &GridTarget,
    wait: Duration,
) -> Option<bool> {
    let until = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(until, filled.recv()).await {
            Err(_) => return None,
            Ok(Ok(heard))
                if heard.specialist_id == target.specialist_id
                    && heard.branch_id == target.branch_id =>
            {
                return Some(heard.ok);
            }
            Ok(Ok(_)) => {}
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => return None,
            Ok(Err(broadcast::error::RecvError::Closed)) => {
                tokio::time::sleep_until(until).await;
                return None;
            }
        }
    }
}

/// Moves the days `read` found from `missing` to `found` (`read` is in the order of
/// `missing`).
fn take_found(
    missing: &mut Vec<NaiveDate>,
    found: &mut Vec<Arc<ReadyDay>>,
    read: Vec<Option<Arc<ReadyDay>>>,
) {
    let mut still = Vec::new();
    for (date, day) in missing.iter().zip(read) {
        match day {
            Some(day) => found.push(day),
            None => still.push(*date),
        }
    }
    *missing = still;
}
