//! Accounts: registration, creation by an admin or the command line, role changes,
//! disabling, passwords and ending sessions. Each operation writes its audit event; a
//! change of password, role or status ends the account's sessions and tokens (the
//! `session_version` moves on).

use std::net::{IpAddr, Ipv4Addr};

use crate::{
    auth::password::{self, Passwords},
    db::{
        DbPool,
        models::user::{self, NewUser, User},
    },
    domain::{
        audit::{self, Actor},
        values::{BirthDate, Email, FieldErrors, FullName, Invalid, Phone, Role},
    },
};

/// A new password that meets the policy (8 to 128 characters, not a common one).
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        password::check_new(raw).map_err(Invalid)?;
        Ok(Self(raw.to_owned()))
    }
}

impl NewPassword {
    /// The password itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("invalid input: {0}")]
    Invalid(FieldErrors),
    #[error("an account with this e-mail exists")]
    EmailTaken,
    #[error("no such account")]
    NotFound,
    /// Admins change other accounts only: nobody demotes or disables themselves by a slip.
    #[error("an admin cannot change their own role or status")]
    OwnAccount,
    /// An invitation link that is unknown, used, replaced by a newer one or expired, or whose
    /// account is disabled or has a password already: one answer for all, so links cannot
    /// be probed (`domain::invitations`).
    #[error("invitation invalid")]
    InvitationInvalid,
    /// A new invitation for an account that is disabled or has a password of its own.
    #[error("the account takes no invitation")]
    NotInvitable,
    #[error("password hashing: {0}")]
    Hashing(anyhow::Error),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
}

impl From<FieldErrors> for AccountError {
    fn from(errors: FieldErrors) -> Self {
        AccountError::Invalid(errors)
    }
}

/// A new account, from validated values.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: Email,
    pub full_name: FullName,
    pub phone: Option<Phone>,
    pub birth_date: Option<BirthDate>,
    pub role: Role,
    pub password: NewPassword,
}

/// Who creates an account; decides the audit event.
#[derive(Debug, Clone, Copy)]
pub enum Origin {
    /// A patient registering themselves, from this address.
    Registration(IpAddr),
    Admin(Actor),
    /// `sovamed user create` on the server.
    CommandLine,
}

impl Actor {
    /// The operator at the server's command line.
    pub fn command_line() -> Self {
        Actor {
            user_id: None,
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }
}

/// Creates an account; the e-mail must be free.
pub async fn create(
    db: &DbPool,
    passwords: &Passwords,
    account: NewAccount,
    origin: Origin,
) -> Result<User, AccountError> {
    let hash = passwords
        .hash(account.password.0.clone())
        .await
        .map_err(AccountError::Hashing)?;
    let full_name = account.full_name.to_string();
    let mut conn = db.get().await?;
    let new_user = NewUser {
        email: account.email.as_str(),
        password_hash: &hash,
        full_name: &full_name,
        phone: account.phone.as_ref().map(Phone::as_str),
        birth_date: account.birth_date.map(BirthDate::date),
        role: account.role,
        phone_verified_at: None,
    };
    let created = match user::insert(&mut conn, &new_user).await {
        Ok(created) => created,
        Err(e) if user::is_duplicate_email(&e) => return Err(AccountError::EmailTaken),
        Err(e) => return Err(e.into()),
    };
    drop(conn);
    let (actor, action) = match origin {
        Origin::Registration(ip) => (
            Actor {
                user_id: Some(created.id),
                ip,
            },
            "registered",
        ),
        Origin::Admin(actor) => (actor, "user_created"),
        Origin::CommandLine => (Actor::command_line(), "user_created"),
    };
    audit::append(db, actor, action, &created.id.to_string()).await;
    Ok(created)
}

pub async fn find(db: &DbPool, id: i64) -> Result<User, AccountError> {
    let mut conn = db.get().await?;
    user::find(&mut conn, id)
        .await?
        .ok_or(AccountError::NotFound)
}

pub async fn find_by_email(db: &DbPool, email: &Email) -> Result<User, AccountError> {
    let mut conn = db.get().await?;
    user::find_by_email(&mut conn, email.as_str())
        .await?
        .ok_or(AccountError::NotFound)
}

/// An admin's change to someone else's account; the command line (no acting user) may
/// change any.
fn not_self(actor: Actor, account: &User) -> Result<(), AccountError> {
    if actor.user_id == Some(account.id) {
        return Err(AccountError::OwnAccount);
    }
    Ok(())
}

pub async fn change_role(
    db: &DbPool,
    account: &User,
    role: Role,
    actor: Actor,
) -> Result<(), AccountError> {
    not_self(actor, account)?;
    let mut conn = db.get().await?;
    user::set_role(&mut conn, account.id, role).await?;
    drop(conn);
    let subject = format!("{} → {}", account.id, role.as_str());
    audit::append(db, actor, "user_role_changed", &subject).await;
    Ok(())
}

pub async fn set_disabled(
    db: &DbPool,
    account: &User,
    disabled: bool,
    actor: Actor,
) -> Result<(), AccountError> {
    not_self(actor, account)?;
    let mut conn = db.get().await?;
    user::set_disabled(&mut conn, account.id, disabled).await?;
    if !disabled {
        // Enabling is how the clinic restores an account its owner asked to delete, within
        // the grace period: the request is withdrawn with it, so a later disabling for
        // another reason does not anonymise the account (`domain::retention`).
        crate::db::models::retention::withdraw_deletion_request(&mut conn, account.id).await?;
    }
    drop(conn);
    let action = if disabled {
        "user_disabled"
    } else {
        "user_enabled"
    };
    audit::append(db, actor, action, &account.id.to_string()).await;
    Ok(())
}

pub async fn set_password(
    db: &DbPool,
    passwords: &Passwords,
    account: &User,
    password: NewPassword,
    actor: Actor,
) -> Result<(), AccountError> {
    let hash = passwords
        .hash(password.0)
        .await
        .map_err(AccountError::Hashing)?;
    let mut conn = db.get().await?;
    user::set_password_hash(&mut conn, account.id, &hash).await?;
    drop(conn);
    audit::append(db, actor, "user_password_reset", &account.id.to_string()).await;
    Ok(())
}

pub async fn end_sessions(db: &DbPool, account: &User, actor: Actor) -> Result<(), AccountError> {
    let mut conn = db.get().await?;
    user::end_sessions(&mut conn, account.id).await?;
    drop(conn);
    audit::append(db, actor, "user_sessions_ended", &account.id.to_string()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passwords_follow_the_policy() {
        assert!(NewPassword::parse("front desk passphrase").is_ok());
        assert_eq!(
            NewPassword::parse("short").map(|_| ()),
            Err(Invalid("Пароль должен быть не короче 8 символов"))
        );
        assert!(NewPassword::parse("password1").is_err());
        assert_eq!(
            format!("{:?}", NewPassword::parse("front desk passphrase").unwrap()),
            "NewPassword(***)"
        );
    }
}
