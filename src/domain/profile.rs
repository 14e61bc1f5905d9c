//! What a patient does to their own account: register with a proven phone, reset a
//! forgotten password by a code, change the password, the name and e-mail, or the phone.
//!
//! Registration answers the same whether or not the e-mail is taken: for a taken one the
//! owner gets an SMS instead, and no account is touched. A proven phone brings the visits
//! booked without an account on that phone (and their consents) into the account.

use std::net::IpAddr;

use diesel_async::AsyncConnection;

use crate::{
    auth::password::Passwords,
    db::{
        DbPool,
        models::{
            consent as consent_rows,
            outbox::{self, NewOutboxMessage},
            record,
            user::{self, NewUser, User},
        },
    },
    domain::{
        accounts::{AccountError, NewPassword},
        audit::{self, Actor},
        consent::{self, ConsentGiven, Consenter},
        phones::{PhoneChecks, ProofProblem, VerifyError},
        values::{BirthDate, Email, FullName, Phone, Role, VerificationPurpose},
    },
};

/// Why a self-service change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The current password, asked before a change, was wrong.
    #[error("wrong current password")]
    WrongPassword,
    #[error("phone proof: {0}")]
    Verify(#[from] VerifyError),
}

impl From<diesel::result::Error> for ProfileError {
    fn from(e: diesel::result::Error) -> Self {
        ProfileError::Account(AccountError::Database(e))
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for ProfileError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        ProfileError::Account(AccountError::Pool(e))
    }
}

/// A registration whose password is hashed already (it waited for the code).
#[derive(Debug, Clone)]
pub struct Registration {
    pub email: Email,
    pub password_hash: String,
    pub full_name: FullName,
    pub phone: Phone,
    pub birth_date: BirthDate,
    pub consent: ConsentGiven,
}

/// How a registration ended. The face answers both the same way.
#[derive(Debug)]
pub enum Registered {
    Created(Box<User>),
    /// The e-mail has an account; its owner was told by SMS (when it has a phone).
    EmailTaken,
}

/// Registers a patient whose phone the proof `token` shows.
pub async fn register(
    db: &DbPool,
    phones: &PhoneChecks,
    registration: Registration,
    token: &str,
    ip: IpAddr,
) -> Result<Registered, ProfileError> {
    let proven = phones
        .take(
            Some(token),
            VerificationPurpose::Registration,
            Some(&registration.phone),
        )
        .await?;
    let mut conn = db.get().await?;
    if let Some(owner) = user::find_by_email(&mut conn, registration.email.as_str()).await? {
        tell_owner(&mut conn, &owner, phones).await?;
        drop(conn);
        audit::append(
            db,
            Actor { user_id: None, ip },
            "registration_email_taken",
            &owner.id.to_string(),
        )
        .await;
        return Ok(Registered::EmailTaken);
    }
    let full_name = registration.full_name.to_string();
    let phone = proven.phone.as_str().to_owned();
    let created = conn
        .transaction(async |conn| {
            let created = user::insert(
                conn,
                &NewUser {
                    email: registration.email.as_str(),
                    password_hash: &registration.password_hash,
                    full_name: &full_name,
                    phone: Some(&phone),
                    birth_date: Some(registration.birth_date.date()),
                    role: Role::Patient,
                    phone_verified_at: Some(chrono::Utc::now()),
                },
            )
            .await?;
            consent::record(
                conn,
                Consenter::Account(created.id),
                registration.consent,
                ip,
            )
            .await?;
            adopt(conn, created.id, &phone).await?;
            Ok::<_, diesel::result::Error>(created)
        })
        .await;
    let created = match created {
        Ok(created) => created,
        // A concurrent registration took the e-mail between the check and the insert.
        Err(e) if user::is_duplicate_email(&e) => {
            phones.release(&proven).await;
            return Ok(Registered::EmailTaken);
        }
        Err(e) => {
            phones.release(&proven).await;
            return Err(e.into());
        }
    };
    drop(conn);
    let actor = Actor {
        user_id: Some(created.id),
        ip,
    };
    audit::append(db, actor, "registered", &created.id.to_string()).await;
    Ok(Registered::Created(Box::new(created)))
}

/// The SMS to the owner of an e-mail someone tried to register again; none once the
/// owner's phone has had its day's SMS, so nobody can flood it this way.
async fn tell_owner(
    conn: &mut diesel_async::AsyncPgConnection,
    owner: &User,
    phones: &PhoneChecks,
) -> Result<(), diesel::result::Error> {
    let Some(phone) = owner.phone.as_deref() else {
        return Ok(());
    };
    if phones.day_is_full(conn, phone).await? {
        return Ok(());
    }
    let body = crate::domain::booking::notify::email_taken_text(phones.clinic_phone());
    outbox::insert(
        conn,
        &NewOutboxMessage {
            record_id: None,
            kind: "notice",
            phone,
            body: &body,
        },
    )
    .await
}

/// Visits and consents given on `phone` without an account become account `user_id`'s.
async fn adopt(
    conn: &mut diesel_async::AsyncPgConnection,
    user_id: i64,
    phone: &str,
) -> Result<usize, diesel::result::Error> {
    consent_rows::adopt_by_phone(conn, user_id, phone).await?;
    record::adopt_by_phone(conn, user_id, phone).await
}

/// Sets a new password on the account the reset proof `token` was issued for; every
/// session and token of the account ends.
pub async fn reset_password(
    db: &DbPool,
    passwords: &Passwords,
    phones: &PhoneChecks,
    token: &str,
    password: NewPassword,
    ip: IpAddr,
) -> Result<User, ProfileError> {
    let proven = phones
        .take(Some(token), VerificationPurpose::PasswordReset, None)
        .await?;
    let Some(user_id) = proven.user_id else {
        return Err(VerifyError::Proof(ProofProblem::Unknown).into());
    };
    let hash = match passwords.hash(password.expose().to_owned()).await {
        Ok(hash) => hash,
        Err(e) => {
            phones.release(&proven).await;
            return Err(AccountError::Hashing(e).into());
        }
    };
    let mut conn = db.get().await?;
    user::set_password_hash(&mut conn, user_id, &hash).await?;
    let account = user::find(&mut conn, user_id)
        .await?
        .ok_or(AccountError::NotFound)?;
    drop(conn);
    let actor = Actor {
        user_id: Some(user_id),
        ip,
    };
    audit::append(db, actor, "password_reset_by_code", &user_id.to_string()).await;
    Ok(account)
}

/// Checks the current password before a change (and before an account's deletion,
/// `domain::retention`).
pub(crate) async fn check_current(
    passwords: &Passwords,
    account: &User,
    current: &str,
) -> Result<(), ProfileError> {
    let right = current.len() <= crate::auth::password::MAX_INPUT_BYTES
        && passwords
            .verify(Some(&account.password_hash), current)
            .await
            .map_err(AccountError::Hashing)?;
    if right {
        Ok(())
    } else {
        Err(ProfileError::WrongPassword)
    }
}

/// Changes the password after the current one. With `end_others` (the form's box, ticked by
/// default) every other session and token of the account ends (its `session_version` moves
/// on) and the face keeps the current session logged in; without it they all go on.
pub async fn change_password(
    db: &DbPool,
    passwords: &Passwords,
    account: &User,
    current: &str,
    (new, end_others): (NewPassword, bool),
    ip: IpAddr,
) -> Result<User, ProfileError> {
    check_current(passwords, account, current).await?;
    let hash = passwords
        .hash(new.expose().to_owned())
        .await
        .map_err(AccountError::Hashing)?;
    let mut conn = db.get().await?;
    if end_others {
        user::set_password_hash(&mut conn, account.id, &hash).await?;
    } else {
        user::set_password_hash_keeping_sessions(&mut conn, account.id, &hash).await?;
    }
    let account = user::find(&mut conn, account.id)
        .await?
        .ok_or(AccountError::NotFound)?;
    drop(conn);
    audit::append(
        db,
        Actor::user(&account, ip),
        "password_changed",
        &account.id.to_string(),
    )
    .await;
    Ok(account)
}

/// Changes the name and e-mail after the current password.
pub async fn update_profile(
    db: &DbPool,
    passwords: &Passwords,
    account: &User,
    current: &str,
    (full_name, email): (FullName, Email),
    ip: IpAddr,
) -> Result<(), ProfileError> {
    check_current(passwords, account, current).await?;
    let mut conn = db.get().await?;
    let name = full_name.to_string();
    match user::set_profile(&mut conn, account.id, &name, email.as_str()).await {
        Ok(_) => {}
        Err(e) if user::is_duplicate_email(&e) => return Err(AccountError::EmailTaken.into()),
        Err(e) => return Err(e.into()),
    }
    drop(conn);
    audit::append(
        db,
        Actor::user(account, ip),
        "profile_changed",
        &account.id.to_string(),
    )
    .await;
    Ok(())
}

/// Puts the phone the proof `token` shows on the account; earlier visits booked on it
/// without an account come into the account.
pub async fn change_phone(
    db: &DbPool,
    phones: &PhoneChecks,
    account: &User,
    token: &str,
    ip: IpAddr,
) -> Result<Phone, ProfileError> {
    let proven = phones
        .take(Some(token), VerificationPurpose::PhoneChange, None)
        .await?;
    if proven.user_id != Some(account.id) {
        phones.release(&proven).await;
        return Err(VerifyError::Proof(ProofProblem::Unknown).into());
    }
    let phone = proven.phone.as_str().to_owned();
    let mut conn = db.get().await?;
    conn.transaction(async |conn| {
        user::set_verified_phone(conn, account.id, &phone).await?;
        adopt(conn, account.id, &phone).await
    })
    .await?;
    drop(conn);
    audit::append(
        db,
        Actor::user(account, ip),
        "phone_changed",
        &account.id.to_string(),
    )
    .await;
    Ok(proven.phone)
}

/// Counts a registration attempt from `ip`; `Err(seconds)` past `per_hour`.
pub async fn count_registration(
    redis: &crate::redis::Redis,
    ip: IpAddr,
    per_hour: u32,
) -> Result<Result<(), u64>, fred::error::Error> {
    let counters = [crate::domain::rate::Counter::new(
        format!("register:ip:{}", crate::domain::rate::client_key(ip)),
        per_hour,
    )];
    crate::domain::rate::hit(redis, &counters, std::time::Duration::from_secs(3600)).await
}
