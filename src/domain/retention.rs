//! Deletion and retention (152-FZ art. 21: stop processing, destroy within the term).
//!
//! - **A deletion request** ([`request_deletion`]): a patient, after their password, closes
//!   their account. Upcoming visits are cancelled first, through the ordinary cancel (the MIS
//!   and the patient's SMS stay consistent with the cabinet); then the account is disabled,
//!   its `session_version` moves on (every cookie session and access token is refused at its
//!   next use) and its refresh tokens are revoked, in one transaction.
//! - **Anonymisation** ([`anonymise_due`]): once `ACCOUNT_DELETION_GRACE_DAYS` have passed
//!   (the clinic may restore the account before, by enabling it), the personal data not under
//!   a legal duty to keep is erased: the account's own, its records' patient fields, its SMS,
//!   its codes, its stored booking facts. What the clinic must keep stays: the visit facts
//!   (doctor, branch, time, status, the MIS's ids) and the consents, marked withdrawn, as the
//!   proof that consent was given.
//! - **Retention** ([`run`]): the daily job, one replica at a time under an advisory lock,
//!   anonymises what is due and removes or blanks rows past their retention period; each run
//!   writes one `retention_run` audit event with its counts.
//!
//! Every operation takes "now" from its caller, so the tests reach the end of a period
//! without waiting.

use std::{net::IpAddr, time::Duration};

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use tokio::{sync::watch, task::JoinHandle};

use crate::{
    auth::password::Passwords,
    db::{
        DbPool,
        models::{retention as rows, user::User},
    },
    domain::{
        audit::{self, Actor},
        booking::{Booking, BookingError, rounds},
        clock::Clock,
        phones::random_hex,
        profile::{self, ProfileError},
        values::Role,
    },
};

/// The advisory lock of the retention job ("sovaretn" in ASCII): one replica at a time.
pub const LOCK_KEY: i64 = 0x736f_7661_7265_746e;

/// How often the job runs inside `serve`.
pub const RUN_EVERY: Duration = Duration::from_secs(24 * 3600);

/// How long after start the first run comes: long enough for start-up (migrations, the first
/// sync) to settle, short enough that a replica restarted every day still runs it.
pub const FIRST_RUN_AFTER: Duration = Duration::from_secs(120);

/// Expired SMS codes are kept a day: long enough to look into a complaint about a code the
/// same day, and no use after.
const VERIFICATION_KEEP_DAYS: i64 = 1;

/// Expired or revoked refresh tokens are kept a week past their end, so a suspected theft
/// can still be traced in the table (which family, revoked when). Nothing else needs them: a
/// token past its expiry is refused before its rotation is even looked at.
const REFRESH_TOKEN_KEEP_DAYS: i64 = 7;

/// How long each kind of row is kept (the configuration's retention variables, read by
/// `Config::retention_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// `ACCOUNT_DELETION_GRACE_DAYS`: from a deletion request to the anonymisation.
    pub deletion_grace_days: u32,
    /// `AUDIT_RETENTION_DAYS`: audit events older than this are deleted.
    pub audit_days: u32,
    /// `SMS_TEXT_RETENTION_DAYS`: SMS texts older than this are blanked.
    pub sms_text_days: u32,
    /// `SCHEDULE_SNAPSHOT_RETENTION_DAYS`: stored grids of days before today minus this are
    /// deleted.
    pub snapshot_days: u32,
    /// `IDEMPOTENCY_KEY_RETENTION_HOURS`: stored `Idempotency-Key` answers older than this
    /// are deleted.
    pub idempotency_hours: u32,
}

impl RetentionPolicy {
    /// From a deletion request to the anonymisation.
    pub fn deletion_grace(&self) -> chrono::Duration {
        days(self.deletion_grace_days)
    }
}

fn days(n: u32) -> chrono::Duration {
    chrono::Duration::days(i64::from(n))
}

/// What went wrong in anonymisation or retention.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("password hashing: {0}")]
    Hashing(anyhow::Error),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
}

/// Why a deletion request was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeletionError {
    /// The password given as confirmation was wrong: nothing changed.
    #[error("wrong password")]
    WrongPassword,
    /// Staff and admin accounts are closed by an admin, not by themselves.
    #[error("only a patient asks for their own account's deletion")]
    NotPatient,
    /// An upcoming visit could not be cancelled (the MIS did not answer): the account stays
    /// open, so the patient can try again and no visit is left booked for nobody. Visits
    /// cancelled before the failure stay cancelled.
    #[error("an upcoming visit was not cancelled: {0}")]
    Cancel(#[from] BookingError),
    /// Checking the password failed (hashing at capacity).
    #[error(transparent)]
    Profile(ProfileError),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
}

/// A deletion request carried out.
#[derive(Debug, Clone, Copy)]
pub struct DeletionRequested {
    /// Upcoming visits cancelled in the MIS and here.
    pub visits_cancelled: usize,
    /// From when the personal data is erased (the next daily run after it).
    pub erase_after: DateTime<Utc>,
}

/// Closes `account` at its owner's request, after `password`: cancels its upcoming visits as
/// the patient, then disables it, ends its sessions and tokens and notes the request, which
/// [`anonymise_due`] carries out after `grace`.
pub async fn request_deletion(
    booking: &Booking,
    passwords: &Passwords,
    grace: chrono::Duration,
    account: &User,
    password: &str,
    ip: IpAddr,
) -> Result<DeletionRequested, DeletionError> {
    if account.role() != Role::Patient {
        return Err(DeletionError::NotPatient);
    }
    profile::check_current(passwords, account, password)
        .await
        .map_err(|e| match e {
            ProfileError::WrongPassword => DeletionError::WrongPassword,
            other => DeletionError::Profile(other),
        })?;
    let db = &booking.db;
    let upcoming = {
        let mut conn = db.get().await?;
        rows::upcoming_booked(&mut conn, account.id, booking.clock.now()).await?
    };
    // Cancelled before the account closes: a cancel that fails (the MIS down) leaves the
    // account open to try again, rather than closed with a visit nobody will come to.
    let mut visits_cancelled: usize = 0;
    for id in upcoming {
        match booking.cancel_record(account, id, None, ip).await {
            // Deferred: the MIS cancelled it and the reconciler writes the rest.
            Ok(_) | Err(BookingError::Deferred(_)) => visits_cancelled += 1,
            // Cancelled or started meanwhile (the clinic, another tab): nothing left to do.
            Err(BookingError::AlreadyCancelled(_) | BookingError::NoLongerChangeable(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let now = booking.clock.now();
    let mut conn = db.get().await?;
    conn.transaction(async |conn| {
        rows::close_account(conn, account.id, now).await?;
        rows::revoke_refresh_tokens(conn, account.id, now).await?;
        Ok::<_, diesel::result::Error>(())
    })
    .await?;
    drop(conn);
    audit::append_with(
        db,
        Actor::user(account, ip),
        "account_deletion_requested",
        &account.id.to_string(),
        serde_json::json!({ "visits_cancelled": visits_cancelled }),
    )
    .await;
    Ok(DeletionRequested {
        visits_cancelled,
        erase_after: now + grace,
    })
}

/// What one account's anonymisation erased.
#[derive(Debug, Clone, Copy, Default)]
struct Erased {
    records: usize,
    messages: usize,
    verifications: usize,
}

/// Anonymises every account whose deletion was asked more than `grace` before `now` and
/// that is still closed; how many it anonymised. Each account is one transaction, so a
/// failure leaves the others done and itself untouched for the next run.
pub async fn anonymise_due(
    db: &DbPool,
    grace: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<usize, RetentionError> {
    let before = now - grace;
    let due = {
        let mut conn = db.get().await?;
        rows::due_for_anonymisation(&mut conn, before).await?
    };
    let mut anonymised: usize = 0;
    for id in due {
        // A real argon2id hash of 256 random bits nobody is told, like an invited account's:
        // a login against it costs one argon2 run and fails as a wrong password does.
        let unusable = crate::auth::password::hash(random_hex(32))
            .await
            .map_err(RetentionError::Hashing)?;
        let mut conn = db.get().await?;
        let erased = conn
            .transaction(async |conn| {
                let Some((phone, requested_at)) = rows::lock_due(conn, id, before).await? else {
                    return Ok::<_, diesel::result::Error>(None);
                };
                let record_ids = rows::record_ids_of(conn, id).await?;
                let erased = Erased {
                    records: rows::erase_records_of(conn, id).await?,
                    messages: rows::erase_messages(conn, &record_ids, phone.as_deref(), now)
                        .await?,
                    verifications: rows::delete_verifications_of(conn, id, phone.as_deref())
                        .await?,
                };
                rows::withdraw_consents_of(conn, id, requested_at.unwrap_or(now)).await?;
                rows::erase_intents_of(conn, id, &record_ids, now).await?;
                rows::delete_idempotency_keys_of(conn, id).await?;
                rows::delete_refresh_tokens_of(conn, id).await?;
                crate::db::models::calendar_feed::delete_for_user(conn, id).await?;
                rows::erase_account(conn, id, &unusable, now).await?;
                Ok(Some(erased))
            })
            .await?;
        drop(conn);
        let Some(erased) = erased else {
            continue;
        };
        anonymised += 1;
        audit::append_system(
            db,
            "account_anonymised",
            &id.to_string(),
            serde_json::json!({
                "records": erased.records,
                "messages": erased.messages,
                "verifications": erased.verifications,
            }),
        )
        .await;
    }
    if anonymised > 0 {
        tracing::info!(
            accounts = anonymised,
            "accounts anonymised after their deletion request"
        );
    }
    Ok(anonymised)
}

/// What one retention run did, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub accounts_anonymised: usize,
    pub audit_events_deleted: usize,
    pub sms_texts_erased: usize,
    pub schedule_snapshots_deleted: usize,
    pub idempotency_keys_deleted: usize,
    pub phone_verifications_deleted: usize,
    pub refresh_tokens_deleted: usize,
}

impl RetentionReport {
    /// The counts as the `retention_run` audit event keeps them.
    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "accounts_anonymised": self.accounts_anonymised,
            "audit_events_deleted": self.audit_events_deleted,
            "sms_texts_erased": self.sms_texts_erased,
            "schedule_snapshots_deleted": self.schedule_snapshots_deleted,
            "idempotency_keys_deleted": self.idempotency_keys_deleted,
            "phone_verifications_deleted": self.phone_verifications_deleted,
            "refresh_tokens_deleted": self.refresh_tokens_deleted,
        })
    }
}

impl std::fmt::Display for RetentionReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "accounts anonymised: {}\naudit events deleted: {}\nSMS texts erased: {}\n\
             schedule snapshots deleted: {}\nidempotency keys deleted: {}\n\
             phone verifications deleted: {}\nrefresh tokens deleted: {}",
            self.accounts_anonymised,
            self.audit_events_deleted,
            self.sms_texts_erased,
            self.schedule_snapshots_deleted,
            self.idempotency_keys_deleted,
            self.phone_verifications_deleted,
            self.refresh_tokens_deleted,
        )
    }
}

/// One retention run at `now`: the anonymisation of accounts past their grace, then each
/// kind of row past its period, then the run's `retention_run` audit event (written last,
/// so its own row is never among those deleted).
pub async fn run(
    db: &DbPool,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> Result<RetentionReport, RetentionError> {
    let accounts_anonymised = anonymise_due(db, policy.deletion_grace(), now).await?;
    let mut conn = db.get().await?;
    let report = RetentionReport {
        accounts_anonymised,
        audit_events_deleted: rows::delete_audit_before(&mut conn, now - days(policy.audit_days))
            .await?,
        sms_texts_erased: rows::erase_sms_texts_before(&mut conn, now - days(policy.sms_text_days))
            .await?,
        schedule_snapshots_deleted: rows::delete_snapshots_before(
            &mut conn,
            now.date_naive() - days(policy.snapshot_days),
        )
        .await?,
        idempotency_keys_deleted: rows::delete_idempotency_keys_before(
            &mut conn,
            now - chrono::Duration::hours(i64::from(policy.idempotency_hours)),
        )
        .await?,
        phone_verifications_deleted: rows::delete_verifications_expired_before(
            &mut conn,
            now - chrono::Duration::days(VERIFICATION_KEEP_DAYS),
        )
        .await?,
        refresh_tokens_deleted: rows::delete_refresh_tokens_before(
            &mut conn,
            now - chrono::Duration::days(REFRESH_TOKEN_KEEP_DAYS),
        )
        .await?,
    };
    drop(conn);
    // The subject is the run's day: the audit screen shows subjects as they are.
    let day = now.format("%Y-%m-%d").to_string();
    audit::append_system(db, "retention_run", &day, report.details()).await;
    tracing::info!(
        accounts_anonymised = report.accounts_anonymised,
        audit_events_deleted = report.audit_events_deleted,
        sms_texts_erased = report.sms_texts_erased,
        schedule_snapshots_deleted = report.schedule_snapshots_deleted,
        idempotency_keys_deleted = report.idempotency_keys_deleted,
        phone_verifications_deleted = report.phone_verifications_deleted,
        refresh_tokens_deleted = report.refresh_tokens_deleted,
        "retention run"
    );
    Ok(report)
}

/// One run under the advisory lock; `Ok(None)` when another replica (or `sovamed retention
/// run`) holds it.
pub async fn run_once_locked(
    db: &DbPool,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> Result<Option<RetentionReport>, RetentionError> {
    rounds::locked(db, LOCK_KEY, run(db, policy, now)).await
}

/// A round of the job inside `serve`, at the clock's "now".
async fn round(db: &DbPool, policy: &RetentionPolicy, clock: &Clock) -> Result<(), RetentionError> {
    if run_once_locked(db, policy, clock.now()).await?.is_none() {
        tracing::debug!("retention skipped: another replica holds the lock");
    }
    Ok(())
}

/// The job inside `serve`: a first run [`FIRST_RUN_AFTER`] the start, then one every
/// [`RUN_EVERY`], until `stop` turns true.
pub fn spawn(
    db: DbPool,
    policy: RetentionPolicy,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(FIRST_RUN_AFTER) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
        if let Err(e) = round(&db, &policy, &clock).await {
            tracing::warn!(error = %e, "retention round failed");
        }
        let daily = rounds::every("retention", RUN_EVERY, stop, move || {
            let (db, clock) = (db.clone(), clock.clone());
            async move { round(&db, &policy, &clock).await }
        });
        // The daily task ends when `stop` turns true; waiting for it here lets the server's
        // shutdown wait for a run in progress.
        let _ = daily.await;
    })
}
