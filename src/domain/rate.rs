//! Fixed-window counters in Redis for everything that costs an SMS or a hash: each hit is
//! counted first, atomically for all its counters (one Lua script), and refused past any
//! limit with the seconds until that window ends. Keys carry digests, never phone numbers.

use std::time::Duration;

use fred::interfaces::{KeysInterface, LuaInterface};
use sha2::{Digest, Sha256};

use crate::{auth::throttle::COUNT_ATTEMPT, redis::Redis};

/// A counter: its key (without the prefix) and the most hits its window allows.
pub struct Counter {
    pub key: String,
    pub limit: u32,
}

impl Counter {
    pub fn new(key: impl Into<String>, limit: u32) -> Self {
        Self {
            key: key.into(),
            limit,
        }
    }
}

/// A client address as rate-limit keys count it: an IPv4 address as it is, an IPv6 one by
/// its /64 (one customer's whole prefix: rotating the other 64 bits gains nothing), and an
/// IPv4-mapped IPv6 address as the IPv4 one.
pub fn client_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", std::net::Ipv6Addr::from(prefix))
            }
        },
    }
}

/// A value as it may appear in a key: a short digest, so keys name no person.
pub fn digest(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Counts one hit on every counter; `Err(seconds)` when any is past its limit.
pub async fn hit(
    redis: &Redis,
    counters: &[Counter],
    window: Duration,
) -> Result<Result<(), u64>, fred::error::Error> {
    let keys: Vec<String> = counters.iter().map(|c| redis.key(&c.key)).collect();
    let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
    let counts: Vec<i64> = redis
        .pool
        .eval(COUNT_ATTEMPT, keys, vec![window_ms])
        .await?;
    if counts.len() != counters.len() * 2 {
        return Err(fred::error::Error::new(
            fred::error::ErrorKind::Unknown,
            "unexpected answer of the counting script",
        ));
    }
    let wait_ms = counters
        .iter()
        .zip(counts.chunks(2))
        .filter(|(counter, pair)| pair[0] > i64::from(counter.limit))
        .map(|(_, pair)| pair[1])
        .max();
    Ok(match wait_ms {
        None => Ok(()),
        Some(ms) => Err(u64::try_from(ms).unwrap_or(0).div_ceil(1000).max(1)),
    })
}

/// Takes a once-per-`gap` slot (`SET NX PX`); `Err(seconds)` while an earlier one holds.
pub async fn once_per(
    redis: &Redis,
    key: &str,
    gap: Duration,
) -> Result<Result<(), u64>, fred::error::Error> {
    let key = redis.key(key);
    let gap_ms = i64::try_from(gap.as_millis()).unwrap_or(i64::MAX);
    let taken: Option<String> = redis
        .pool
        .set(
            &key,
            "1",
            Some(fred::types::Expiration::PX(gap_ms)),
            Some(fred::types::SetOptions::NX),
            false,
        )
        .await?;
    if taken.is_some() {
        return Ok(Ok(()));
    }
    let left: i64 = redis.pool.pttl(&key).await?;
    Ok(Err(u64::try_from(left).unwrap_or(0).div_ceil(1000).max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_64_bit_prefix() {
        let a: std::net::IpAddr = "2001:db8:1:2::a".parse().expect("ip");
        let b: std::net::IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().expect("ip");
        let other: std::net::IpAddr = "2001:db8:1:3::a".parse().expect("ip");
        assert_eq!(client_key(a), client_key(b));
        assert_eq!(client_key(a), "2001:db8:1:2::/64");
        assert_ne!(client_key(a), client_key(other));
        let mapped: std::net::IpAddr = "::ffff:198.51.100.7".parse().expect("ip");
        assert_eq!(client_key(mapped), "198.51.100.7");
        let v4: std::net::IpAddr = "198.51.100.7".parse().expect("ip");
        assert_eq!(client_key(v4), "198.51.100.7");
    }
}
