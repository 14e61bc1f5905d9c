//! One process among several: the Redis pub/sub messages by which the replicas keep their
//! in-process copies honest, and the one subscriber each `serve` process runs.
//!
//! Three channels, each under `REDIS_PREFIX` (deployments and test runs that share a Redis
//! do not hear each other):
//!
//! - `cluster:directory`: a directory sync committed (on any replica or from the command
//!   line); every process rebuilds its directory snapshot ([`super::directory_snapshot`]).
//! - `cluster:schedule-changed`: a booking, move, cancel or change-feed event touched a day
//!   of a doctor in a branch. The sender has deleted the Redis copy and dropped its own
//!   memory copy already; every process drops the day from memory on receipt.
//! - `cluster:schedule-filled`: a replica fetched days from the MIS and put them into Redis
//!   (or failed to). The others drop their older memory copies of those days, and wake the
//!   readers that wait for that doctor and branch (the single flight across replicas).
//!
//! Pub/sub delivers at most once, and only to a connected subscriber. So the in-process
//! schedule cache is used only while the subscriber is subscribed: when its connection
//! fails, memory is switched off at once (every read goes to Redis); after every
//! (re)connection it subscribes again, **clears the whole in-process cache** (messages may
//! have been missed meanwhile) and only then switches memory back on. A subscriber that
//! falls behind its messages clears it too. The directory is also rebuilt every
//! `DIRECTORY_RELOAD_SECONDS`, so a lost "directory changed" costs at most that long, and a
//! memory copy never outlives the Redis TTL it was taken with.

use std::time::Duration;

use chrono::NaiveDate;
use fred::{
    clients::SubscriberClient,
    interfaces::{ClientLike, EventInterface, KeysInterface, PubsubInterface},
    types::Message,
};
use tokio::{
    sync::{broadcast::error::RecvError, watch},
    task::JoinHandle,
};

use super::{
    booking::schedule::{Filled, ScheduleCache},
    directory_snapshot::Directory,
};
use crate::redis::Redis;

const DIRECTORY: &str = "cluster:directory";
const SCHEDULE_CHANGED: &str = "cluster:schedule-changed";
const SCHEDULE_FILLED: &str = "cluster:schedule-filled";

/// What one process tells the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    DirectoryChanged,
    ScheduleChanged {
        specialist_id: i64,
        branch_id: i64,
        date: NaiveDate,
    },
    ScheduleFilled {
        /// The sending cache ([`ScheduleCache::origin`]).
        origin: String,
        specialist_id: i64,
        branch_id: i64,
        from: NaiveDate,
        to: NaiveDate,
        /// False: the MIS did not answer.
        ok: bool,
    },
}

impl Notice {
    /// The channel, without the prefix.
    fn channel(&self) -> &'static str {
        match self {
            Notice::DirectoryChanged => DIRECTORY,
            Notice::ScheduleChanged { .. } => SCHEDULE_CHANGED,
            Notice::ScheduleFilled { .. } => SCHEDULE_FILLED,
        }
    }

    /// The message: words separated by spaces.
    fn payload(&self) -> String {
        match self {
            Notice::DirectoryChanged => "changed".to_owned(),
            Notice::ScheduleChanged {
                specialist_id,
                branch_id,
                date,
            } => format!("{specialist_id} {branch_id} {date}"),
            Notice::ScheduleFilled {
                origin,
                specialist_id,
                branch_id,
                from,
                to,
                ok,
            } => format!(
                "{origin} {specialist_id} {branch_id} {from} {to} {}",
                if *ok { "ok" } else { "failed" }
            ),
        }
    }

    /// The notice a message on `channel` (without the prefix) carries; `None` for anything
    /// else.
    fn parse(channel: &str, payload: &str) -> Option<Self> {
        let words: Vec<&str> = payload.split_whitespace().collect();
        match (channel, words.as_slice()) {
            (DIRECTORY, _) => Some(Notice::DirectoryChanged),
            (SCHEDULE_CHANGED, [specialist_id, branch_id, date]) => Some(Notice::ScheduleChanged {
                specialist_id: specialist_id.parse().ok()?,
                branch_id: branch_id.parse().ok()?,
                date: date.parse().ok()?,
            }),
            (SCHEDULE_FILLED, [origin, specialist_id, branch_id, from, to, outcome]) => {
                Some(Notice::ScheduleFilled {
                    origin: (*origin).to_owned(),
                    specialist_id: specialist_id.parse().ok()?,
                    branch_id: branch_id.parse().ok()?,
                    from: from.parse().ok()?,
                    to: to.parse().ok()?,
                    ok: *outcome == "ok",
                })
            }
            _ => None,
        }
    }
}

/// Sends `notice` to every process (this one included). A failure is logged: the others
/// then learn of it by expiry (the schedule) or by the periodic reload (the directory).
pub async fn publish(redis: &Redis, notice: &Notice) {
    let channel = redis.key(notice.channel());
    let sent: Result<i64, _> = redis.pool.next().publish(channel, notice.payload()).await;
    if let Err(e) = sent {
        tracing::warn!(error = %e, "cluster message not sent");
    }
}

/// Deletes `key`, then sends `notice`, in one round trip on one connection: whoever hears
/// the notice finds the key gone. A failure is logged, as for [`publish`].
pub async fn delete_then_publish(redis: &Redis, key: String, notice: &Notice) {
    let pipeline = redis.pool.next().pipeline();
    let sent = async {
        let () = pipeline.del(key).await?;
        let () = pipeline
            .publish(redis.key(notice.channel()), notice.payload())
            .await?;
        pipeline.all::<(i64, i64)>().await
    }
    .await;
    if let Err(e) = sent {
        tracing::warn!(error = %e, "cache entry not dropped or cluster message not sent");
    }
}

/// What a directory sync uses to say it committed: this process's snapshot is rebuilt at
/// once (when it has one), and every other process hears "directory changed".
#[derive(Clone)]
pub struct Announcer {
    redis: Redis,
    directory: Option<Directory>,
}

impl Announcer {
    /// Announces to the others only (the command line has no snapshot of its own).
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            directory: None,
        }
    }

    /// Rebuilds `directory` too, before telling the others.
    pub fn with_directory(mut self, directory: Directory) -> Self {
        self.directory = Some(directory);
        self
    }

    pub async fn directory_changed(&self) {
        if let Some(directory) = &self.directory {
            directory.reload_logged().await;
        }
        publish(&self.redis, &Notice::DirectoryChanged).await;
    }
}

/// Runs the process's subscriber until `stop`: builds the directory snapshot first, then
/// applies every message, rebuilds the snapshot every `reload_every`, and keeps the
/// schedule cache's memory on only while subscribed (see the module's notes).
pub fn spawn(
    redis: Redis,
    schedule: ScheduleCache,
    directory: Directory,
    reload_every: Duration,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // Until it is built every read falls back to PostgreSQL: correct, only slower.
        directory.reload_logged().await;
        match redis.subscriber() {
            Ok(subscriber) => {
                listen(
                    &redis,
                    &subscriber,
                    &schedule,
                    &directory,
                    reload_every,
                    stop,
                )
                .await;
                schedule.set_listening(false);
                let _ = subscriber.quit().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "no cluster subscriber: the schedule cache stays in Redis only");
                reload_periodically(&directory, reload_every, stop).await;
            }
        }
    })
}

async fn listen(
    redis: &Redis,
    subscriber: &SubscriberClient,
    schedule: &ScheduleCache,
    directory: &Directory,
    reload_every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let channels = [
        redis.key(DIRECTORY),
        redis.key(SCHEDULE_CHANGED),
        redis.key(SCHEDULE_FILLED),
    ];
    // The receivers exist before the connection, so its first "connected" is not missed.
    let mut messages = subscriber.message_rx();
    let mut connected = subscriber.reconnect_rx();
    let mut failures = subscriber.error_rx();
    let _connection = subscriber.connect();
    let mut reload = tokio::time::interval(reload_every);
    reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The snapshot was just built.
    reload.tick().await;
    loop {
        // In this order: a failure is always seen before the reconnection that follows it
        // (it was sent first), so memory is never left on across a gap.
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            failure = failures.recv() => match failure {
                Ok((e, _)) => {
                    tracing::warn!(error = %e, "cluster subscriber lost its connection; schedule memory off until it is back");
                    schedule.set_listening(false);
                }
                Err(RecvError::Lagged(_)) => schedule.set_listening(false),
                Err(RecvError::Closed) => break,
            },
            event = connected.recv() => match event {
                // Connected (the first time, or again): what was said meanwhile is lost.
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    subscribe(subscriber, &channels, schedule).await;
                    reload_in_background(directory);
                }
                Err(RecvError::Closed) => break,
            },
            message = messages.recv() => match message {
                Ok(message) => apply(redis, &message, schedule, directory),
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "cluster subscriber fell behind; schedule memory cleared");
                    schedule.forget_everything();
                }
                Err(RecvError::Closed) => break,
            },
            _ = reload.tick() => {
                reload_in_background(directory);
                // A subscription that failed is tried again while the connection is up.
                if !schedule.listening() && subscriber.is_connected() {
                    subscribe(subscriber, &channels, schedule).await;
                }
            }
        }
    }
}

/// Subscribes to the three channels, then clears the schedule memory and turns it on.
async fn subscribe(
    subscriber: &SubscriberClient,
    channels: &[String; 3],
    schedule: &ScheduleCache,
) {
    schedule.set_listening(false);
    match subscriber.subscribe(channels.to_vec()).await {
        Ok(()) => {
            schedule.forget_everything();
            schedule.set_listening(true);
            tracing::debug!("cluster subscriber subscribed; schedule memory on");
        }
        Err(e) => {
            tracing::warn!(error = %e, "cluster channels not subscribed; schedule memory off");
        }
    }
}

/// What one message changes in this process.
fn apply(redis: &Redis, message: &Message, schedule: &ScheduleCache, directory: &Directory) {
    let Some(channel) = message.channel.strip_prefix(redis.key("").as_str()) else {
        return;
    };
    let Some(payload) = message.value.as_str() else {
        return;
    };
    match Notice::parse(channel, &payload) {
        Some(Notice::DirectoryChanged) => reload_in_background(directory),
        Some(Notice::ScheduleChanged {
            specialist_id,
            branch_id,
            date,
        }) => schedule.forget_day(specialist_id, branch_id, date),
        Some(Notice::ScheduleFilled {
            origin,
            specialist_id,
            branch_id,
            from,
            to,
            ok,
        }) => schedule.heard_filled(
            &origin,
            Filled {
                specialist_id,
                branch_id,
                ok,
            },
            (from, to),
        ),
        None => tracing::debug!(channel, "unreadable cluster message ignored"),
    }
}

/// A rebuild of the snapshot that does not hold up the messages after it.
fn reload_in_background(directory: &Directory) {
    let directory = directory.clone();
    tokio::spawn(async move { directory.reload_logged().await });
}

/// Without a subscriber: the snapshot is only rebuilt every `reload_every`.
async fn reload_periodically(
    directory: &Directory,
    reload_every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut reload = tokio::time::interval(reload_every);
    reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    reload.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = reload.tick() => directory.reload_logged().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_read_back_as_they_were_sent() {
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        for notice in [
            Notice::DirectoryChanged,
            Notice::ScheduleChanged {
                specialist_id: 12,
                branch_id: 3,
                date: day("2030-05-06"),
            },
            Notice::ScheduleFilled {
                origin: "00ff00ff00ff00ff".into(),
                specialist_id: 12,
                branch_id: 3,
                from: day("2030-05-06"),
                to: day("2030-05-12"),
                ok: true,
            },
            Notice::ScheduleFilled {
                origin: "a".into(),
                specialist_id: 1,
                branch_id: 2,
                from: day("2030-05-06"),
                to: day("2030-05-06"),
                ok: false,
            },
        ] {
            assert_eq!(
                Notice::parse(notice.channel(), &notice.payload()),
                Some(notice.clone()),
                "{notice:?}"
            );
        }
        assert_eq!(Notice::parse(SCHEDULE_CHANGED, "12 3"), None);
        assert_eq!(Notice::parse(SCHEDULE_CHANGED, "12 3 tomorrow"), None);
        assert_eq!(Notice::parse("elsewhere", "changed"), None);
    }
}
