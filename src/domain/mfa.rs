//! The second factor of sign-in for the roles in `MFA_REQUIRED_ROLES` (staff and admins by
//! default): TOTP (RFC 6238) with the parameters every authenticator app assumes (HMAC-SHA-1,
//! 6 digits, 30-second steps), and ten one-time recovery codes.
//!
//! - **Enrolment:** a new 160-bit secret from the OS generator is stored as pending
//!   (`users.totp_secret` with `totp_enrolled_at` NULL) and shown as a QR code and in text; it
//!   becomes the account's factor only when a first valid code confirms that the app has it.
//!   The confirmation issues the recovery codes, shown once.
//! - **A code** is accepted within one step either side of now (clock drift, typing time),
//!   and only for a step later than the last one accepted (`users.totp_last_step`, taken by
//!   one conditional `UPDATE`): a code cannot be used twice, not even in its own 30 seconds.
//! - **A recovery code** (10 characters of an alphabet without look-alikes, stored as SHA-256)
//!   works once.
//! - **Guessing** is bounded per account: every attempt is counted first (a fixed window in
//!   Redis, `domain::rate`), 5 per 15 minutes; past that the answer is "retry in N seconds",
//!   even for the right code. A success clears the count.
//!
//! Audited: `mfa_enrolled`, `mfa_passed`, `mfa_failed`, `mfa_recovery_used`.

use std::{net::IpAddr, time::Duration};

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use fred::interfaces::KeysInterface;
use rand::RngCore;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::{
    db::{
        DbPool,
        models::{mfa as rows, user::User},
    },
    domain::{
        audit::{self, Actor},
        phones::sha256_hex,
        rate::{self, Counter},
    },
    redis::Redis,
};

/// Seconds of one time step.
pub const STEP_SECS: u64 = 30;
/// Digits of a code.
pub const DIGITS: usize = 6;
/// Steps accepted either side of now.
const WINDOW_STEPS: u64 = 1;
/// 160 bits, the size RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
/// Recovery codes issued at enrolment.
pub const RECOVERY_CODES: usize = 10;
/// Characters of a recovery code.
const RECOVERY_LEN: usize = 10;
/// Digits and capitals without the look-alikes 0/O, 1/I/L: what a person copies from paper.
const RECOVERY_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Attempts (right or wrong) per account in a window before the answer is "retry later".
pub const ATTEMPTS_PER_WINDOW: u32 = 5;
/// The window of [`ATTEMPTS_PER_WINDOW`].
pub const ATTEMPT_WINDOW: Duration = Duration::from_secs(15 * 60);
/// The issuer an authenticator app shows beside the account.
pub const ISSUER: &str = "Совамед";

#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// A wrong code, a code of a step used before, a code outside the window, an unknown or
    /// spent recovery code: one answer for all.
    #[error("wrong second-factor code")]
    WrongCode,
    /// Too many attempts on this account in the window.
    #[error("too many second-factor attempts; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The account has no confirmed second factor (it must enrol first).
    #[error("no second factor enrolled")]
    NotEnrolled,
    /// An enrolment asked of (or confirmed for) an account that has its factor already.
    #[error("second factor already enrolled")]
    AlreadyEnrolled,
    /// The stored secret does not decode: a damaged row, never the user's doing.
    #[error("stored TOTP secret is unusable")]
    BadSecret,
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
}

/// A pending enrolment as the setup page shows it.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// Base32, for typing into the app by hand.
    pub secret: String,
    /// `otpauth://totp/…`, what the QR code holds.
    pub url: String,
}

/// How a second factor was passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passed {
    Code,
    /// A recovery code, with this many left unused.
    Recovery {
        left: i64,
    },
}

/// What the user typed, read as one of the two kinds of answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// Six digits.
    Code(String),
    /// A recovery code, upper-cased, without the dash and spaces.
    Recovery(String),
}

impl Answer {
    /// Spaces and dashes are ignored (`123 456`, `ABCDE-FGHJK`), letters are read in either
    /// case; anything else is no answer.
    fn parse(input: &str) -> Option<Self> {
        let compact: String = input
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if compact.len() == DIGITS && compact.bytes().all(|b| b.is_ascii_digit()) {
            return Some(Answer::Code(compact));
        }
        if compact.len() == RECOVERY_LEN && compact.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))
        {
            return Some(Answer::Recovery(compact));
        }
        None
    }
}

/// The TOTP of a base32 secret as stored.
fn totp_of(secret: &str) -> Result<TOTP, MfaError> {
    let bytes = Secret::Encoded(secret.to_owned())
        .to_bytes()
        .map_err(|_| MfaError::BadSecret)?;
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        // `check` is not used (it does not say which step matched); the window is ours.
        0,
        STEP_SECS,
        bytes,
    )
    .map_err(|_| MfaError::BadSecret)
}

/// A new secret: 20 bytes from the OS generator, in base32 without padding.
fn new_secret() -> String {
    let mut bytes = vec![0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    match Secret::Raw(bytes).to_encoded() {
        Secret::Encoded(encoded) => encoded,
        // `to_encoded` of raw bytes always encodes.
        Secret::Raw(_) => String::new(),
    }
}

/// The newest step within the window around `now_secs` whose code is `code`. Every step of
/// the window is compared, in constant time, so the answer's timing says nothing of which.
fn matching_step(totp: &TOTP, code: &str, now_secs: u64) -> Option<i64> {
    let current = now_secs / STEP_SECS;
    let mut found = None;
    for step in current.saturating_sub(WINDOW_STEPS)..=current + WINDOW_STEPS {
        let expected = totp.generate(step * STEP_SECS);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found.and_then(|step| i64::try_from(step).ok())
}

fn unix_secs(now: DateTime<Utc>) -> u64 {
    u64::try_from(now.timestamp()).unwrap_or(0)
}

/// `otpauth://totp/<issuer>:<account>?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`,
/// the Key URI Format the apps read (label and issuer percent-encoded as UTF-8).
fn otpauth_url(account: &str, secret: &str) -> String {
    let issuer = percent_encode(ISSUER);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        account = percent_encode(account),
    )
}

/// Every byte but the unreserved characters of RFC 3986 as `%XX`.
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The secret in groups of four, as typed into an app by hand.
pub fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Ten new recovery codes as shown: `ABCDE-FGHJK`.
fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let code: String = (0..RECOVERY_LEN)
                .map(|_| {
                    char::from(RECOVERY_ALPHABET[rand::random_range(0..RECOVERY_ALPHABET.len())])
                })
                .collect();
            format!(
                "{}-{}",
                &code[..RECOVERY_LEN / 2],
                &code[RECOVERY_LEN / 2..]
            )
        })
        .collect()
}

/// The stored form of a recovery code: SHA-256 of its compact, upper-case form.
fn recovery_hash(compact: &str) -> String {
    sha256_hex(compact)
}

fn counter_key(user_id: i64) -> String {
    format!("mfa:acct:{user_id}")
}

/// Counts one attempt on the account; `RateLimited` past the window's limit.
async fn count_attempt(redis: &Redis, user_id: i64) -> Result<(), MfaError> {
    let counter = Counter::new(counter_key(user_id), ATTEMPTS_PER_WINDOW);
    match rate::hit(redis, &[counter], ATTEMPT_WINDOW).await? {
        Ok(()) => Ok(()),
        Err(retry_after_secs) => Err(MfaError::RateLimited { retry_after_secs }),
    }
}

/// A passed factor gives the account its attempts back.
async fn clear_attempts(redis: &Redis, user_id: i64) -> Result<(), MfaError> {
    let _: i64 = redis.pool.del(redis.key(&counter_key(user_id))).await?;
    Ok(())
}

/// Whether the account has a confirmed second factor.
/// For an account whose owner lost the authenticator and the recovery codes: the second
/// factor and the codes are removed and every session and token ends, in one transaction,
/// so the next login enrols afresh (an operator's decision, made on the server).
pub async fn reset(db: &DbPool, account: &User, actor: Actor) -> Result<(), MfaError> {
    let mut conn = db.get().await?;
    conn.transaction(async |conn| {
        rows::remove(conn, account.id).await?;
        crate::db::models::user::end_sessions(conn, account.id).await?;
        Ok::<_, diesel::result::Error>(())
    })
    .await?;
    drop(conn);
    audit::append(db, actor, "mfa_reset", &account.id.to_string()).await;
    Ok(())
}

pub async fn is_enrolled(db: &DbPool, user_id: i64) -> Result<bool, MfaError> {
    let mut conn = db.get().await?;
    Ok(rows::find(&mut conn, user_id)
        .await?
        .is_some_and(|t| t.totp_secret.is_some() && t.totp_enrolled_at.is_some()))
}

/// The pending enrolment of `account`, made now if there is none: the same secret until a
/// code confirms it, so a reload of the page does not undo a scan.
pub async fn begin_enrolment(db: &DbPool, account: &User) -> Result<Enrolment, MfaError> {
    let mut conn = db.get().await?;
    let mut columns = rows::find(&mut conn, account.id)
        .await?
        .ok_or(MfaError::NotEnrolled)?;
    if columns.totp_enrolled_at.is_some() {
        return Err(MfaError::AlreadyEnrolled);
    }
    if columns.totp_secret.is_none() {
        rows::set_pending_secret(&mut conn, account.id, &new_secret()).await?;
        // Another request may have been first: whichever secret is stored is the one.
        columns = rows::find(&mut conn, account.id)
            .await?
            .ok_or(MfaError::NotEnrolled)?;
        if columns.totp_enrolled_at.is_some() {
            return Err(MfaError::AlreadyEnrolled);
        }
    }
    let secret = columns.totp_secret.ok_or(MfaError::NotEnrolled)?;
    Ok(Enrolment {
        url: otpauth_url(&account.email, &secret),
        secret,
    })
}

/// Confirms the pending enrolment with a first code of the app; the recovery codes, to be
/// shown this once.
pub async fn confirm_enrolment(
    db: &DbPool,
    redis: &Redis,
    account: &User,
    input: &str,
    now: DateTime<Utc>,
    ip: IpAddr,
) -> Result<Vec<String>, MfaError> {
    let mut conn = db.get().await?;
    let columns = rows::find(&mut conn, account.id)
        .await?
        .ok_or(MfaError::NotEnrolled)?;
    if columns.totp_enrolled_at.is_some() {
        return Err(MfaError::AlreadyEnrolled);
    }
    let secret = columns.totp_secret.ok_or(MfaError::NotEnrolled)?;
    count_attempt(redis, account.id).await?;
    let step = match Answer::parse(input) {
        Some(Answer::Code(code)) => matching_step(&totp_of(&secret)?, &code, unix_secs(now)),
        _ => None,
    };
    let actor = Actor::user(account, ip);
    let subject = account.id.to_string();
    let Some(step) = step else {
        drop(conn);
        audit::append(db, actor, "mfa_failed", &subject).await;
        return Err(MfaError::WrongCode);
    };
    let codes = new_recovery_codes();
    let hashes: Vec<String> = codes
        .iter()
        .map(|code| recovery_hash(&code.replace('-', "")))
        .collect();
    let user_id = account.id;
    let confirmed = conn
        .transaction(async |conn| {
            if rows::confirm(conn, user_id, &secret, step, now).await? == 0 {
                return Ok(false);
            }
            rows::replace_recovery_codes(conn, user_id, &hashes).await?;
            Ok::<_, diesel::result::Error>(true)
        })
        .await?;
    drop(conn);
    if !confirmed {
        // Another tab confirmed first (with its own codes).
        return Err(MfaError::AlreadyEnrolled);
    }
    clear_attempts(redis, account.id).await?;
    audit::append(db, actor, "mfa_enrolled", &subject).await;
    Ok(codes)
}

/// Checks a code of the app or a recovery code for the account's confirmed factor.
pub async fn verify(
    db: &DbPool,
    redis: &Redis,
    account: &User,
    input: &str,
    now: DateTime<Utc>,
    ip: IpAddr,
) -> Result<Passed, MfaError> {
    let mut conn = db.get().await?;
    let columns = rows::find(&mut conn, account.id)
        .await?
        .ok_or(MfaError::NotEnrolled)?;
    let (Some(secret), Some(_)) = (columns.totp_secret, columns.totp_enrolled_at) else {
        return Err(MfaError::NotEnrolled);
    };
    count_attempt(redis, account.id).await?;
    let outcome = match Answer::parse(input) {
        Some(Answer::Code(code)) => {
            // A step not newer than the last accepted one is a replay, refused here and again
            // (against a concurrent request with the same code) by the conditional update.
            let step = matching_step(&totp_of(&secret)?, &code, unix_secs(now))
                .filter(|step| columns.totp_last_step.is_none_or(|last| *step > last));
            let taken = match step {
                Some(step) => rows::accept_step(&mut conn, account.id, step).await?,
                None => false,
            };
            if taken {
                Ok(Passed::Code)
            } else {
                Err(MfaError::WrongCode)
            }
        }
        Some(Answer::Recovery(code)) => {
            if rows::use_recovery_code(&mut conn, account.id, &recovery_hash(&code), now).await? {
                let left = rows::count_unused_recovery_codes(&mut conn, account.id).await?;
                Ok(Passed::Recovery { left })
            } else {
                Err(MfaError::WrongCode)
            }
        }
        None => Err(MfaError::WrongCode),
    };
    drop(conn);
    let actor = Actor::user(account, ip);
    let subject = account.id.to_string();
    match &outcome {
        Ok(Passed::Code) => {
            clear_attempts(redis, account.id).await?;
            audit::append(db, actor, "mfa_passed", &subject).await;
        }
        Ok(Passed::Recovery { left }) => {
            clear_attempts(redis, account.id).await?;
            audit::append_with(
                db,
                actor,
                "mfa_recovery_used",
                &subject,
                serde_json::json!({ "left": left }),
            )
            .await;
        }
        Err(_) => audit::append(db, actor, "mfa_failed", &subject).await,
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 key is the ASCII of "12345678901234567890".
    fn rfc_totp() -> TOTP {
        TOTP::new(
            Algorithm::SHA1,
            DIGITS,
            0,
            STEP_SECS,
            b"12345678901234567890".to_vec(),
        )
        .expect("valid")
    }

    #[test]
    fn codes_follow_rfc_6238_and_match_one_step_either_side() {
        let totp = rfc_totp();
        // The RFC's 8-digit 94287082 at T = 59 s (step 1); authenticator apps show 6 digits.
        assert_eq!(totp.generate(59), "287082");
        assert_eq!(matching_step(&totp, "287082", 59), Some(1));
        // A step later and a step earlier still match: clocks drift, people type slowly.
        assert_eq!(matching_step(&totp, "287082", 89), Some(1));
        assert_eq!(matching_step(&totp, &totp.generate(90), 59), None);
        assert_eq!(matching_step(&totp, &totp.generate(60), 59), Some(2));
        // Three steps back is outside the window.
        assert_eq!(matching_step(&totp, "287082", 59 + 3 * 30), None);
        assert_eq!(matching_step(&totp, "000000", 59), None);
        assert_eq!(matching_step(&totp, "", 59), None);
    }

    #[test]
    fn answers_are_read_leniently_and_nothing_else_passes() {
        assert_eq!(
            Answer::parse("123 456"),
            Some(Answer::Code("123456".into()))
        );
        assert_eq!(
            Answer::parse(" 123456\n"),
            Some(Answer::Code("123456".into()))
        );
        assert_eq!(
            Answer::parse("abcde-fghjk"),
            Some(Answer::Recovery("ABCDEFGHJK".into()))
        );
        for bad in [
            "",
            "12345",
            "1234567",
            "ABCDE-FGHJ0",
            "ABCDE-FGHJI",
            "12345a",
            "ПРИВЕТ-МИР1",
        ] {
            assert_eq!(Answer::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn recovery_codes_are_ten_distinct_readable_codes() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        for code in &codes {
            assert_eq!(code.len(), RECOVERY_LEN + 1, "{code}");
            assert_eq!(code.as_bytes()[RECOVERY_LEN / 2], b'-', "{code}");
            let compact = code.replace('-', "");
            assert!(
                compact.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)),
                "{code}"
            );
            assert_eq!(
                Answer::parse(&code.to_lowercase()),
                Some(Answer::Recovery(compact))
            );
        }
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), codes.len());
    }

    #[test]
    fn secrets_are_160_bits_in_base32_and_make_a_key_uri() {
        let secret = new_secret();
        assert_eq!(secret.len(), 32, "20 bytes are 32 base32 characters");
        assert_ne!(secret, new_secret());
        assert!(totp_of(&secret).is_ok());
        assert!(matches!(totp_of("not base32!"), Err(MfaError::BadSecret)));
        assert_eq!(grouped("ABCDEFGHIJ"), "ABCD EFGH IJ");
        let url = otpauth_url("anna@example.ru", "JBSWY3DPEHPK3PXP");
        assert_eq!(
            url,
            "otpauth://totp/%D0%A1%D0%BE%D0%B2%D0%B0%D0%BC%D0%B5%D0%B4:anna%40example.ru\
             ?secret=JBSWY3DPEHPK3PXP&issuer=%D0%A1%D0%BE%D0%B2%D0%B0%D0%BC%D0%B5%D0%B4\
             &algorithm=SHA1&digits=6&period=30"
        );
    }
}
