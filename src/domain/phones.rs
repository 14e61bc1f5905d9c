//! Proving a phone by an SMS code. A verification sends a 6-digit code through the outbox,
//! stores only its keyed hash, and accepts it for 10 minutes and at most 5 wrong tries; a
//! confirmed code yields a proof (a 256-bit token, stored hashed) that is bound to the
//! phone and the purpose, lives 15 minutes and serves one operation.
//!
//! Every start is counted per phone (or account) and per client address, a second start
//! for the same phone and purpose waits 60 seconds, and no phone gets more SMS a day than
//! `SMS_LIMIT_PER_PHONE_DAY` over all kinds. A password reset for an account that does not
//! exist, or has no proven phone, gets a decoy: the same answer, the same limits, no SMS,
//! and no code that could ever be right.

use std::{net::IpAddr, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use hmac::{Hmac, Mac};
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

use crate::{
    db::{
        DbPool,
        models::{
            outbox::{self, NewOutboxMessage},
            user,
            verification::{self, NewVerification},
        },
    },
    domain::{
        clock::Clock,
        rate::{self, Counter},
        values::{Email, Phone, VerificationPurpose},
    },
    redis::Redis,
};

/// How long a code may be entered.
pub const CODE_TTL: Duration = Duration::from_secs(10 * 60);
/// Wrong codes a verification survives; the next try is refused whatever the code.
pub const MAX_WRONG_CODES: i32 = 5;
/// The least time between two codes for one phone and purpose.
pub const RESEND_GAP: Duration = Duration::from_secs(60);
/// How long the proof of a confirmed code is good for.
pub const PROOF_TTL: Duration = Duration::from_secs(15 * 60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);
/// The `Retry-After` of a phone whose day of SMS is full.
pub const DAY_FULL_RETRY_SECS: u64 = 3600;

/// Limits on sending codes.
#[derive(Debug, Clone, Copy)]
pub struct VerifyLimits {
    /// Codes per phone (or account) per hour.
    pub per_phone_hour: u32,
    /// Codes per client address per hour.
    pub per_ip_hour: u32,
    /// SMS of every kind per phone per day.
    pub sms_per_phone_day: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("rate limited for {retry_after_secs}s")]
    RateLimited { retry_after_secs: u64 },
    /// No such verification.
    #[error("no such verification")]
    NotFound,
    #[error("the code expired")]
    Expired,
    /// Out of tries: a new code is needed.
    #[error("too many wrong codes")]
    TooManyWrongCodes,
    #[error("wrong code ({left} tries left)")]
    WrongCode { left: i32 },
    /// The code was confirmed already.
    #[error("already confirmed")]
    AlreadyConfirmed,
    #[error("proof refused: {0:?}")]
    Proof(ProofProblem),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
}

/// Why a proof does not serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofProblem {
    Missing,
    Unknown,
    Expired,
    Used,
    OtherPhone,
    OtherPurpose,
}

/// A code on its way.
#[derive(Debug, Clone)]
pub struct Started {
    pub id: String,
    pub expires_at: DateTime<Utc>,
    pub resend_after: DateTime<Utc>,
}

/// The proof of a confirmed code, to present once.
#[derive(Debug, Clone)]
pub struct Proof {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// A proof taken for an operation: the proven phone and, for a reset, the account.
#[derive(Debug, Clone)]
pub struct ProvenPhone {
    pub verification_id: String,
    pub phone: Phone,
    pub user_id: Option<i64>,
}

#[derive(Clone)]
pub struct PhoneChecks {
    pub db: DbPool,
    pub redis: Redis,
    pub clock: Clock,
    pub limits: VerifyLimits,
    /// Wakes the outbox worker right after a code is queued.
    pub outbox_wakeup: Arc<Notify>,
    key: Arc<[u8]>,
    /// `CLINIC_PHONE`, for the notices sent besides codes.
    clinic_phone: Arc<str>,
}

impl PhoneChecks {
    /// `key` keys the code hashes (the server's secret).
    pub fn new(
        db: DbPool,
        redis: Redis,
        clock: Clock,
        limits: VerifyLimits,
        outbox_wakeup: Arc<Notify>,
        key: &[u8],
    ) -> Self {
        Self {
            db,
            redis,
            clock,
            limits,
            outbox_wakeup,
            key: Arc::from(key),
            clinic_phone: Arc::from(crate::domain::booking::notify::DEFAULT_CLINIC_PHONE),
        }
    }

    /// The same checks, naming `phone` as the clinic's in their notices.
    pub fn with_clinic_phone(mut self, phone: &str) -> Self {
        self.clinic_phone = Arc::from(phone);
        self
    }

    /// `CLINIC_PHONE`.
    pub fn clinic_phone(&self) -> &str {
        &self.clinic_phone
    }

    /// Sends a code to `phone`. For a password reset, the phone must be the proven phone of
    /// an enabled account; otherwise a decoy answers.
    pub async fn start(
        &self,
        phone: &Phone,
        purpose: VerificationPurpose,
        ip: IpAddr,
    ) -> Result<Started, VerifyError> {
        let (deliver, user_id) = if purpose == VerificationPurpose::PasswordReset {
            let mut conn = self.db.get().await?;
            match user::find_by_verified_phone(&mut conn, phone.as_str()).await? {
                Some(account) => (true, Some(account.id)),
                None => (false, None),
            }
        } else {
            (true, None)
        };
        self.issue(
            phone.as_str(),
            deliver.then_some(phone),
            user_id,
            purpose,
            ip,
        )
        .await
    }

    /// Sends a password-reset code to the proven phone of the account with `email`; any
    /// other account state gets a decoy with the same answer.
    pub async fn start_reset(&self, email: &Email, ip: IpAddr) -> Result<Started, VerifyError> {
        let mut conn = self.db.get().await?;
        let account = user::find_by_email(&mut conn, email.as_str()).await?;
        drop(conn);
        let phone = account
            .as_ref()
            .filter(|a| !a.disabled && a.phone_verified_at.is_some())
            .and_then(|a| a.phone.clone())
            .map(Phone::from_stored);
        let user_id = phone.as_ref().and(account.map(|a| a.id));
        self.issue(
            email.as_str(),
            phone.as_ref(),
            user_id,
            VerificationPurpose::PasswordReset,
            ip,
        )
        .await
    }

    /// Sends a code to the proven phone of account `user_id` for a change of its phone:
    /// with `to`, the new phone.
    pub async fn start_for_account(
        &self,
        user_id: i64,
        to: &Phone,
        purpose: VerificationPurpose,
        ip: IpAddr,
    ) -> Result<Started, VerifyError> {
        self.issue(to.as_str(), Some(to), Some(user_id), purpose, ip)
            .await
    }

    /// The common part: limits, the row, and the SMS (unless a decoy).
    async fn issue(
        &self,
        subject: &str,
        deliver_to: Option<&Phone>,
        user_id: Option<i64>,
        purpose: VerificationPurpose,
        ip: IpAddr,
    ) -> Result<Started, VerifyError> {
        let subject = rate::digest(subject);
        let resend_key = format!("verify:gap:{}:{subject}", purpose.as_str());
        if let Err(secs) = rate::once_per(&self.redis, &resend_key, RESEND_GAP).await? {
            return Err(VerifyError::RateLimited {
                retry_after_secs: secs,
            });
        }
        let counters = [
            Counter::new(
                format!("verify:subject:{subject}"),
                self.limits.per_phone_hour,
            ),
            Counter::new(
                format!("verify:ip:{}", rate::client_key(ip)),
                self.limits.per_ip_hour,
            ),
        ];
        if let Err(secs) = rate::hit(&self.redis, &counters, HOUR).await? {
            return Err(VerifyError::RateLimited {
                retry_after_secs: secs,
            });
        }
        let now = self.clock.now();
        let mut conn = self.db.get().await?;
        if let Some(phone) = deliver_to
            && self.day_is_full(&conn, phone.as_str()).await?
        {
            return Err(VerifyError::RateLimited {
                retry_after_secs: DAY_FULL_RETRY_SECS,
            });
        }
        let id = random_hex(16);
        let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
        // A decoy's hash is of a code nobody was told: no guess can be right.
        let hashed = match deliver_to {
            Some(_) => self.code_hash(&id, &code),
            None => random_hex(32),
        };
        let expires_at = now + chrono::Duration::from_std(CODE_TTL).unwrap_or_default();
        let ip_text = ip.to_string();
        let body = crate::domain::booking::notify::code_text(&code, purpose);
        conn.transaction(async |conn| {
            verification::insert(
                conn,
                &NewVerification {
                    id: &id,
                    phone: deliver_to.map(Phone::as_str),
                    purpose,
                    user_id,
                    code_hash: &hashed,
                    expires_at,
                    client_ip: &ip_text,
                },
            )
            .await?;
            if let Some(phone) = deliver_to {
                outbox::insert(
                    conn,
                    &NewOutboxMessage {
                        record_id: None,
                        kind: "code",
                        phone: phone.as_str(),
                        body: &body,
                    },
                )
                .await?;
            }
            Ok::<_, diesel::result::Error>(())
        })
        .await?;
        if deliver_to.is_some() {
            self.outbox_wakeup.notify_one();
        }
        Ok(Started {
            id,
            expires_at,
            resend_after: now + chrono::Duration::from_std(RESEND_GAP).unwrap_or_default(),
        })
    }

    /// Whether `phone` has had `SMS_LIMIT_PER_PHONE_DAY` SMS of any kind in the last 24 hours:
    /// the one cap that codes, booking messages and notices all meet.
    pub async fn day_is_full(
        &self,
        conn: &diesel_async::AsyncPgConnection,
        phone: &str,
    ) -> Result<bool, diesel::result::Error> {
        let since = self.clock.now() - chrono::Duration::from_std(DAY).unwrap_or_default();
        let sent = outbox::count_for_phone_since(conn, phone, since).await?;
        Ok(sent >= i64::from(self.limits.sms_per_phone_day))
    }

    /// Checks `code`; the right one yields the proof. A wrong one costs a try.
    pub async fn confirm(&self, id: &str, code: &str) -> Result<Proof, VerifyError> {
        let now = self.clock.now();
        let token = random_hex(32);
        let token_hash = sha256_hex(&token);
        let expires_at = now + chrono::Duration::from_std(PROOF_TTL).unwrap_or_default();
        let given = self.code_hash(id, code.trim());
        let mut conn = self.db.get().await?;
        let outcome = conn
            .transaction(async |conn| {
                let Some(row) = verification::lock(conn, id).await? else {
                    return Ok(Err(VerifyError::NotFound));
                };
                if row.confirmed_at.is_some() {
                    return Ok(Err(VerifyError::AlreadyConfirmed));
                }
                if row.wrong_attempts >= MAX_WRONG_CODES {
                    return Ok(Err(VerifyError::TooManyWrongCodes));
                }
                if row.expires_at <= now {
                    return Ok(Err(VerifyError::Expired));
                }
                let right: bool = row.code_hash.as_bytes().ct_eq(given.as_bytes()).into();
                if !right {
                    verification::count_wrong(conn, id).await?;
                    let left = MAX_WRONG_CODES - row.wrong_attempts - 1;
                    return Ok(Err(match left {
                        0 => VerifyError::TooManyWrongCodes,
                        left => VerifyError::WrongCode { left },
                    }));
                }
                verification::confirm(conn, id, &token_hash, expires_at, now).await?;
                Ok::<_, diesel::result::Error>(Ok(()))
            })
            .await?;
        outcome?;
        Ok(Proof { token, expires_at })
    }

    /// Takes the proof `token` for one operation of `purpose`, for `phone` when the
    /// operation names one. Give it back with [`PhoneChecks::release`] if the operation
    /// did not happen.
    pub async fn take(
        &self,
        token: Option<&str>,
        purpose: VerificationPurpose,
        phone: Option<&Phone>,
    ) -> Result<ProvenPhone, VerifyError> {
        let proven = self.check(token, purpose, phone).await?;
        let conn = self.db.get().await?;
        self.take_checked(&conn, &proven).await?;
        Ok(proven)
    }

    /// What [`PhoneChecks::take`] checks, without taking the proof.
    pub async fn check(
        &self,
        token: Option<&str>,
        purpose: VerificationPurpose,
        phone: Option<&Phone>,
    ) -> Result<ProvenPhone, VerifyError> {
        let conn = self.db.get().await?;
        self.check_on(&conn, token, purpose, phone).await
    }

    /// [`PhoneChecks::check`] on `conn`, which other reads may share at once (the booking
    /// checks the proof beside the phone's SMS day, and takes the proof later, in the
    /// transaction that writes down its intent).
    pub async fn check_on(
        &self,
        conn: &diesel_async::AsyncPgConnection,
        token: Option<&str>,
        purpose: VerificationPurpose,
        phone: Option<&Phone>,
    ) -> Result<ProvenPhone, VerifyError> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(VerifyError::Proof(ProofProblem::Missing))?;
        let now = self.clock.now();
        let row = verification::find_by_token(conn, &sha256_hex(token))
            .await?
            .ok_or(VerifyError::Proof(ProofProblem::Unknown))?;
        let problem = if row.token_used_at.is_some() {
            Some(ProofProblem::Used)
        } else if row.token_expires_at.is_none_or(|at| at <= now) {
            Some(ProofProblem::Expired)
        } else if row.purpose != purpose {
            Some(ProofProblem::OtherPurpose)
        } else if phone.is_some_and(|p| Some(p.as_str()) != row.phone.as_deref()) {
            Some(ProofProblem::OtherPhone)
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(VerifyError::Proof(problem));
        }
        let Some(phone) = row.phone else {
            return Err(VerifyError::Proof(ProofProblem::Unknown));
        };
        Ok(ProvenPhone {
            verification_id: row.id,
            phone: Phone::from_stored(phone),
            user_id: row.user_id,
        })
    }

    /// Takes a checked proof on `conn` (inside the caller's transaction, if it has one):
    /// of two operations presenting one proof, only the first takes it.
    pub async fn take_checked(
        &self,
        conn: &diesel_async::AsyncPgConnection,
        proven: &ProvenPhone,
    ) -> Result<(), VerifyError> {
        if !verification::use_token(conn, &proven.verification_id, self.clock.now()).await? {
            return Err(VerifyError::Proof(ProofProblem::Used));
        }
        Ok(())
    }

    /// Gives a taken proof back: the operation it was taken for did not happen.
    pub async fn release(&self, proven: &ProvenPhone) {
        let released = match self.db.get().await {
            Ok(mut conn) => verification::release_token(&mut conn, &proven.verification_id)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = released {
            tracing::warn!(error = %e, "a phone proof was not given back; the visitor asks for a new code");
        }
    }

    fn code_hash(&self, id: &str, code: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return random_hex(32);
        };
        mac.update(id.as_bytes());
        mac.update(b":");
        mac.update(code.as_bytes());
        hex(&mac.finalize().into_bytes())
    }
}

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex(&buf)
}

pub fn sha256_hex(value: &str) -> String {
    hex(&Sha256::digest(value.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_message_names_its_purpose_and_holds_the_code() {
        let text =
            crate::domain::booking::notify::code_text("042917", VerificationPurpose::PasswordReset);
        assert!(text.contains("042917"), "{text}");
        assert!(text.contains("восстановления пароля"), "{text}");
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let (a, b) = (random_hex(32), random_hex(32));
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
