//! Anonymous booking limits per client address and per phone number, counted in Redis with
//! the same atomic script as login throttling. Every attempt counts, successful or not, so
//! the limit also caps what an attacker can make the clinic spend on SMS.

use std::{net::IpAddr, time::Duration};

use fred::interfaces::LuaInterface;
use sha2::{Digest, Sha256};

use super::BookingError;
use crate::{auth::throttle::COUNT_ATTEMPT, redis::Redis};

const HOUR: Duration = Duration::from_secs(3600);

#[derive(Clone)]
pub struct ReserveLimits {
    redis: Redis,
    per_ip: u32,
    per_phone: u32,
}

impl ReserveLimits {
    pub fn new(redis: Redis, per_ip: u32, per_phone: u32) -> Self {
        Self {
            redis,
            per_ip,
            per_phone,
        }
    }

    /// Counts one attempt; 429 with `Retry-After` past either limit.
    pub async fn check(&self, ip: IpAddr, phone: &str) -> Result<(), BookingError> {
        let phone_digest = Sha256::digest(phone.as_bytes());
        let keys = vec![
            self.redis.key(&format!(
                "reserve:ip:{}",
                crate::domain::rate::client_key(ip)
            )),
            self.redis.key(&format!("reserve:phone:{phone_digest:x}")),
        ];
        let window_ms = u64::try_from(HOUR.as_millis()).unwrap_or(u64::MAX);
        let counts: Vec<i64> = self
            .redis
            .pool
            .eval(COUNT_ATTEMPT, keys, vec![window_ms])
            .await?;
        let (ip_count, ip_ttl, phone_count, phone_ttl) = match counts.as_slice() {
            [a, b, c, d] => (*a, *b, *c, *d),
            _ => {
                return Err(BookingError::Redis(fred::error::Error::new(
                    fred::error::ErrorKind::Unknown,
                    "unexpected answer of the counting script",
                )));
            }
        };
        let wait_ms = match (
            ip_count > i64::from(self.per_ip),
            phone_count > i64::from(self.per_phone),
        ) {
            (false, false) => return Ok(()),
            (true, true) => ip_ttl.max(phone_ttl),
            (true, false) => ip_ttl,
            (false, true) => phone_ttl,
        };
        Err(BookingError::RateLimited {
            retry_after_secs: u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000).max(1),
        })
    }
}
