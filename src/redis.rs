//! Redis: the client pool and the key prefix of the application's own keys (cabinet sessions,
//! stored by tower-sessions-redis-store, are keyed by their bare random id).

use std::time::Duration;

use fred::{
    clients::SubscriberClient,
    prelude::{Builder, ClientLike, Config as RedisConfig, Pool, ReconnectPolicy},
};

/// Pool size: a few multiplexed connections serve many concurrent requests.
const POOL_SIZE: usize = 4;
/// A Redis command that has no answer within this time fails (a 503), never hangs.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// The shared Redis pool and the configured key prefix.
#[derive(Clone)]
pub struct Redis {
    pub pool: Pool,
    prefix: String,
    /// What the pool was built from, for the cluster's subscriber connection.
    config: RedisConfig,
}

/// The pool's and the subscriber's settings: bounded connect and command times, and
/// reconnection for ever with a backoff up to 5 s.
fn builder(config: RedisConfig) -> Builder {
    let mut builder = Builder::from_config(config);
    builder
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(2);
            c.internal_command_timeout = COMMAND_TIMEOUT;
            c.max_command_attempts = 2;
        })
        .with_performance_config(|p| {
            p.default_command_timeout = COMMAND_TIMEOUT;
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2));
    builder
}

impl Redis {
    /// Builds the pool and starts connecting in the background. Start-up does not wait for
    /// Redis: while it is down, commands fail after `COMMAND_TIMEOUT` (2 s) and `/readyz`
    /// says so.
    pub fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let config = RedisConfig {
            fail_fast: false,
            ..RedisConfig::from_url(url)?
        };
        let pool = builder(config.clone()).build_pool(POOL_SIZE)?;
        drop(pool.connect());
        Ok(Self {
            pool,
            prefix: prefix.to_owned(),
            config,
        })
    }

    /// A connection of its own for pub/sub (a subscribed connection takes no other
    /// commands), not yet connected; see `domain::cluster`.
    pub fn subscriber(&self) -> Result<SubscriberClient, fred::error::Error> {
        builder(self.config.clone()).build_subscriber_client()
    }

    /// The full key for `suffix`, with this instance's prefix (`REDIS_PREFIX`).
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{}", self.prefix, suffix)
    }

    /// PING with a deadline, for readiness.
    pub async fn ping(&self) -> Result<(), String> {
        match tokio::time::timeout(COMMAND_TIMEOUT, self.pool.ping::<String>(None)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }
}
