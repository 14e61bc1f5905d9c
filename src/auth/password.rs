//! Password hashing (argon2id, OWASP parameters) and the policy for new passwords.
//!
//! Hashing and verifying take tens of milliseconds of CPU, so they run on the blocking pool.
//! Login with an unknown e-mail verifies against a dummy hash, so both failure paths cost
//! the same time (no user enumeration by timing).
//!
//! Each argon2 run holds 19 MiB, so at most one run per core goes at a time and at most
//! [`QUEUE_PER_CORE`] per core wait; past that the answer is [`Busy`] (503 with
//! `Retry-After`), so opening many connections cannot exhaust the server's memory.
//!
//! The runs go on a fixed set of threads, one per core, each owning one argon2 memory block
//! for the life of the process. Allocating 19 MiB per run let glibc's malloc keep each freed
//! block (its mmap threshold rises to the size of the last freed block, so the next ones
//! came from the heap and stayed): a hundred concurrent logins grew the process by 215 MiB.
//! With the blocks owned by the threads, argon2 holds cores × 19 MiB, whatever the load.

use std::sync::{
    Arc,
    atomic::{AtomicU64, AtomicUsize, Ordering},
};

use tokio::sync::Semaphore;

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::{PasswordHasher as _, phc::PasswordHash},
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

/// A job for the argon2 threads: it gets the thread's memory block.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// One thread per core, taking jobs from one queue, for the life of the process.
struct Workers {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Workers {
    fn start(threads: usize) -> std::io::Result<Self> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for n in 0..threads {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    let mut memory = vec![Block::default(); M_COST as usize];
                    loop {
                        let job = {
                            let queue = queue
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner);
                            queue.recv()
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            // Every sender is gone: the process is ending.
                            Err(_) => break,
                        }
                    }
                })?;
        }
        Ok(Self { jobs })
    }

    /// Runs `work` on an argon2 thread and waits for its answer.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |memory: &mut Vec<Block>| {
                let _ = answer.send(work(memory));
            }))
            .map_err(|_| anyhow::anyhow!("argon2 threads stopped"))?;
        Ok(answered.await?)
    }
}

#[derive(Clone)]
pub struct Passwords {
    workers: Arc<Workers>,
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
            workers: Arc::new(Workers::start(cores)?),
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
        let ok = self
            .workers
            .run(move |memory| verify_with(memory, &stored, password.as_bytes()))
            .await?;
        Ok(ok && has_account)
    }

    /// Hashes a new password (see [`hash`]), counting it.
    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let _slot = self.slot().await?;
        self.hashes.fetch_add(1, Ordering::Relaxed);
        self.workers
            .run(move |memory| hash_with(memory, &password))
            .await?
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

/// [`hash`] in `memory` (a thread's own block), with a fresh 16-byte salt.
fn hash_with(memory: &mut Vec<Block>, password: &str) -> anyhow::Result<String> {
    use argon2::password_hash::phc::{Output, ParamsString, Salt};
    let hasher = argon2();
    let params = hasher.params().clone();
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
    let mut out = [0u8; 32];
    let blocks = sized(memory, params.block_count());
    hasher
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| anyhow::anyhow!("argon2: {e}"))?,
        salt: Some(Salt::new(&salt).map_err(|e| anyhow::anyhow!("argon2: {e}"))?),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("argon2: {e}"))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` gives `stored` (a PHC string), computed in `memory`. A string that is
/// not an argon2 hash is a mismatch.
fn verify_with(memory: &mut Vec<Block>, stored: &str, password: &[u8]) -> bool {
    use argon2::password_hash::phc::Output;
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let blocks = params.block_count();
    let hasher = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    hasher
        .hash_password_into_with_memory(password, salt, &mut out, sized(memory, blocks))
        .is_ok()
        && Output::new(&out).is_ok_and(|computed| computed == *expected)
}

/// The first `blocks` blocks of `memory`, grown once for a hash with a bigger memory cost.
fn sized(memory: &mut Vec<Block>, blocks: usize) -> &mut [Block] {
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    &mut memory[..blocks]
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
    use argon2::password_hash::PasswordVerifier as _;

    #[test]
    fn hashes_made_in_a_threads_memory_are_standard_argon2id() {
        let mut memory = Vec::new();
        let made = hash_with(&mut memory, "a perfectly fine passphrase").unwrap();
        assert!(
            made.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{made}"
        );
        let parsed = PasswordHash::new(&made).unwrap();
        assert!(
            argon2()
                .verify_password(b"a perfectly fine passphrase", &parsed)
                .is_ok(),
            "the crate's own verifier accepts it"
        );
        assert!(verify_with(
            &mut memory,
            &made,
            b"a perfectly fine passphrase"
        ));
        assert!(!verify_with(
            &mut memory,
            &made,
            b"a perfectly fine passphrasE"
        ));
        // A hash the crate made, with other parameters, is verified in the same memory.
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8_192, 1, 1, None).unwrap(),
        )
        .hash_password(b"another one entirely")
        .unwrap()
        .to_string();
        assert!(verify_with(&mut memory, &other, b"another one entirely"));
        assert!(!verify_with(&mut memory, "not a hash", b"x"));
        assert!(!verify_with(
            &mut memory,
            "$argon2id$v=19$m=19456,t=2,p=1$",
            b"x"
        ));
    }

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
