//! Login throttling: attempts counted per account and per client address in Redis.
//!
//! Every attempt is counted *before* the password is checked, in one Lua script (atomic), so
//! fifty parallel guesses cannot slip past the threshold: at most `LOGIN_LIMIT_PER_ACCOUNT`
//! of them ever reach argon2. Past the threshold the answer is 429 with `Retry-After`, even
//! for the right password. The window is fixed from the first attempt and never extended,
//! so an attacker can hold an account for at most one window (`LOGIN_LIMIT_WINDOW_MINUTES`)
//! at a time and never lock it for good. A successful login clears the account's counter
//! and gives back its address's attempt. A device that logged into the account before
//! (`auth::device`) is counted on its own, so a stranger's guesses do not lock it out.

use std::{net::IpAddr, time::Duration};

use fred::interfaces::{KeysInterface, LuaInterface};
use sha2::{Digest, Sha256};

use crate::{config::Config, redis::Redis};

pub(crate) const COUNT_ATTEMPT: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, ARGV[1])
    ttl = tonumber(ARGV[1])
  end
  out[2 * i - 1] = n
  out[2 * i] = ttl
end
return out
";

/// The verdict on one login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Throttled { retry_after_secs: u64 },
}

/// Per-account and per-address login counters.
#[derive(Clone)]
pub struct LoginThrottle {
    redis: Redis,
    per_account: u32,
    per_ip: u32,
    window: Duration,
}

impl LoginThrottle {
    pub fn new(redis: Redis, config: &Config) -> Self {
        Self {
            redis,
            per_account: config.login_limit_per_account,
            per_ip: config.login_limit_per_ip,
            window: config.login_limit_window,
        }
    }

    fn account_key(&self, email: &str) -> String {
        // Hashed so that Redis keys carry no e-mail addresses.
        let digest = Sha256::digest(crate::db::models::user::normalize_email(email).as_bytes());
        self.redis.key(&format!("login:acct:{digest:x}"))
    }

    fn ip_key(&self, ip: IpAddr) -> String {
        self.redis
            .key(&format!("login:ip:{}", crate::domain::rate::client_key(ip)))
    }

    fn device_key(&self, nonce: &str) -> String {
        self.redis.key(&format!("login:dev:{nonce}"))
    }

    /// Counts one attempt and says whether it may go on to the password check. An attempt
    /// from a device that logged into this account before (`device`: its cookie's nonce)
    /// counts against that device instead of the account, so the account's lock does not
    /// hold it; the address's limit holds for all.
    pub async fn attempt(
        &self,
        email: &str,
        ip: IpAddr,
        device: Option<&str>,
    ) -> Result<Verdict, fred::error::Error> {
        let window_ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        let first = match device {
            Some(nonce) => self.device_key(nonce),
            None => self.account_key(email),
        };
        let keys = vec![first, self.ip_key(ip)];
        let counts: Vec<i64> = self
            .redis
            .pool
            .eval(COUNT_ATTEMPT, keys, vec![window_ms])
            .await?;
        let (account, account_ttl, ip_count, ip_ttl) = match counts.as_slice() {
            [a, at, i, it] => (*a, *at, *i, *it),
            _ => {
                return Err(fred::error::Error::new(
                    fred::error::ErrorKind::Parse,
                    "throttle script",
                ));
            }
        };
        let over_account = account > i64::from(self.per_account);
        let over_ip = ip_count > i64::from(self.per_ip);
        if !(over_account || over_ip) {
            return Ok(Verdict::Allowed);
        }
        let wait_ms = match (over_account, over_ip) {
            (true, true) => account_ttl.max(ip_ttl),
            (true, false) => account_ttl,
            _ => ip_ttl,
        };
        let retry_after_secs = u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000).max(1);
        Ok(Verdict::Throttled { retry_after_secs })
    }

    /// A successful login: the account (or device) starts afresh and the address gets its
    /// attempt back.
    pub async fn succeeded(
        &self,
        email: &str,
        ip: IpAddr,
        device: Option<&str>,
    ) -> Result<(), fred::error::Error> {
        let first = match device {
            Some(nonce) => self.device_key(nonce),
            None => self.account_key(email),
        };
        let _: i64 = self.redis.pool.del(first).await?;
        let _: i64 = self.redis.pool.decr(self.ip_key(ip)).await?;
        Ok(())
    }
}
