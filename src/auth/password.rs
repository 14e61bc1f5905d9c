//! Password hashing (argon2id, OWASP parameters) and the policy for new passwords.
//!
//! Hashing and verifying take tens of milliseconds of CPU, so they run on the blocking pool.
//! Login with an unknown e-mail verifies against a dummy hash, so both failure paths cost
//! the same time (no user enumeration by timing).
//!
//! Each argon2 run holds 19 MiB, so at most one run per core goes at a time and at most
//! [`QUEUE_PER_CORE`] per core wait; past that the answer is [`Busy`] (503 with
//! `Retry-After`), so opening many connections cannot exhaust the server's memory.

use std::sync::{
    Arc,
    atomic::{AtomicU64, AtomicUsize, Ordering},
};

use tokio::sync::Semaphore;

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher as _, PasswordVerifier as _, phc::PasswordHash},
};

/// Memory in KiB, iterations and lanes: OWASP's m=19456, t=2, p=1.
const M_COST: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

/// Shortest and longest new password, in characters (ASVS 6.2.1, 6.2.9).
pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;
/// Longest input ever handed to argon2, in bytes: login attempts with more are refused
/// without hashing.
pub const MAX_INPUT_BYTES: usize = 1024;

/// Debian john-data's password.lst (3,546 entries, public domain), plus the Cyrillic
/// keyboard walks patients use.
static COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");
static COMMON_RUSSIAN: &[&str] = &[
    "йцукенгш",
    "йцукенгшщз",
    "пароль123",
    "qwertyйцукен",
    "1q2w3e4r",
    "1q2w3e4r5t",
];

fn argon2() -> Argon2<'static> {
    // The constants are valid parameters; `Params::new` only fails for out-of-range values.
    let params = Params::new(M_COST, T_COST, P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes and verifies passwords, counting verifications (tests and metrics read it).
/// Runs that may wait for a core, per core.
pub const QUEUE_PER_CORE: usize = 8;

/// Too many password checks at once: try again in a moment.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("password hashing is at capacity")]
pub struct Busy;

#[derive(Clone)]
pub struct Passwords {
    /// One permit per core: the argon2 runs that may go at once.
    running: Arc<Semaphore>,
    /// Runs that are waiting or going; refused past `capacity`.
    queued: Arc<AtomicUsize>,
    capacity: usize,
    /// The most runs seen going at once (for tests and metrics).
    peak: Arc<AtomicUsize>,
    dummy_hash: Arc<str>,
    verifications: Arc<AtomicU64>,
    hashes: Arc<AtomicU64>,
}

impl Passwords {
    /// Builds the hasher, with a dummy hash of a random password for unknown accounts.
    pub async fn new() -> anyhow::Result<Self> {
        let random: String = (0..32)
            .map(|_| char::from(b'a' + rand::random_range(0..26u8)))
            .collect();
        let dummy_hash = hash(random).await?;
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Ok(Self {
            running: Arc::new(Semaphore::new(cores)),
            queued: Arc::default(),
            capacity: cores * (1 + QUEUE_PER_CORE),
            peak: Arc::default(),
            dummy_hash: dummy_hash.into(),
            verifications: Arc::default(),
            hashes: Arc::default(),
        })
    }

    /// Verifies `password` against `stored` (a PHC string), or against the dummy hash when
    /// there is no account, so that both cost one argon2 run. False for no account.
    pub async fn verify(&self, stored: Option<&str>, password: &str) -> anyhow::Result<bool> {
        let has_account = stored.is_some();
        let stored = stored.unwrap_or(&self.dummy_hash).to_owned();
        let password = password.to_owned();
        let _slot = self.slot().await?;
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&stored)
                .map(|parsed| {
                    argon2()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await?;
        Ok(ok && has_account)
    }

    /// Hashes a new password (see [`hash`]), counting it.
    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let _slot = self.slot().await?;
        self.hashes.fetch_add(1, Ordering::Relaxed);
        hash(password).await
    }

    /// A turn at a core, or [`Busy`] when too many are waiting already.
    async fn slot(&self) -> Result<Slot, Busy> {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Busy);
        }
        let queued = Queued(Arc::clone(&self.queued));
        let permit = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| Busy)?;
        let going = self.running_now();
        self.peak.fetch_max(going, Ordering::Relaxed);
        Ok(Slot {
            _permit: permit,
            _queued: queued,
        })
    }

    fn running_now(&self) -> usize {
        self.capacity / (1 + QUEUE_PER_CORE) - self.running.available_permits()
    }

    /// The most argon2 runs this process had going at once.
    pub fn peak_concurrency(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// How many runs may go at once (the cores).
    pub fn cores(&self) -> usize {
        self.capacity / (1 + QUEUE_PER_CORE)
    }

    /// How many new passwords this process has hashed.
    pub fn hashes(&self) -> u64 {
        self.hashes.load(Ordering::Relaxed)
    }

    /// How many argon2 verifications this process has run.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }
}

/// A run's place: leaves the queue and frees the core when dropped.
struct Slot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    _queued: Queued,
}

struct Queued(Arc<AtomicUsize>);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Hashes a password into a PHC string with a fresh random salt.
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        argon2()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))
    })
    .await?
}

/// Checks a new password against the policy: 8 to 128 characters, not a common password.
/// No composition rules (ASVS 6.2.5); the password is taken exactly as typed.
pub fn check_new(password: &str) -> Result<(), &'static str> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Err("Пароль должен быть не короче 8 символов");
    }
    if chars > MAX_LEN {
        return Err("Пароль должен быть не длиннее 128 символов");
    }
    if is_common(password) {
        return Err("Этот пароль слишком распространён, выберите другой");
    }
    Ok(())
}

fn is_common(password: &str) -> bool {
    let lowered = password.to_lowercase();
    COMMON_RUSSIAN.contains(&lowered.as_str())
        || COMMON_PASSWORDS
            .lines()
            .filter(|line| !line.starts_with("#!comment"))
            .any(|line| line == password || line == lowered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_refuses_short_long_and_common_passwords() {
        assert!(check_new("short").is_err());
        assert!(check_new("password1").is_err());
        assert!(check_new("PASSWORD1").is_err());
        assert!(check_new("йцукенгш").is_err());
        assert!(check_new(&"x".repeat(129)).is_err());
        assert!(check_new("сова летит над клиникой 42 raz").is_ok());
        assert!(check_new(&"я".repeat(64)).is_ok());
    }

    #[tokio::test]
    async fn hashes_are_salted_argon2id_with_owasp_parameters() {
        let a = hash("same password".into()).await.expect("hash");
        let b = hash("same password".into()).await.expect("hash");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
        let passwords = Passwords::new().await.expect("hasher");
        assert!(
            passwords
                .verify(Some(&a), "same password")
                .await
                .expect("verify")
        );
        assert!(
            !passwords
                .verify(Some(&a), "same passwor")
                .await
                .expect("verify")
        );
        assert!(
            !passwords
                .verify(None, "same password")
                .await
                .expect("verify")
        );
    }
}
