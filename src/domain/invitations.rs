//! Invitations: a staff or admin account made by an admin gets no typed password, but a
//! one-time link (`/invite/<token>`) through which its owner chooses one. The admin never
//! knows the password, and nothing secret has to travel twice.
//!
//! The token is 128 random bits (32 hex digits), stored only as its SHA-256, valid for
//! [`INVITATION_TTL`] and for one use; a new invitation for the same account revokes the
//! earlier unused ones. Until the link is taken the account holds an unusable password hash
//! (a real argon2id hash of random bytes nobody is told) and `password_set_at` is NULL, so a
//! login attempt costs one argon2 run and fails like any wrong password.

use std::{net::IpAddr, time::Duration};

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;

use crate::{
    auth::password::Passwords,
    db::{
        DbPool,
        models::{
            invitation::{self, Invitation, NewInvitation},
            user::{self, NewUser, User},
        },
    },
    domain::{
        accounts::{AccountError, NewPassword},
        audit::{self, Actor},
        phones::{random_hex, sha256_hex},
        values::{Email, FieldErrors, FullName, Invalid, Phone, Role},
    },
};

/// How long a link serves. The admin's link page says «24 часа»: change it with this.
pub const INVITATION_TTL: Duration = Duration::from_secs(24 * 3600);

/// Only accounts that work in the clinic are invited; patients register themselves with a
/// proven phone.
pub const STAFF_ONLY: Invalid = Invalid("Выберите роль: сотрудник или администратор");

/// An account to create by invitation, from validated values.
#[derive(Debug, Clone)]
pub struct NewInvitedAccount {
    pub email: Email,
    pub full_name: FullName,
    pub phone: Option<Phone>,
    pub role: Role,
}

fn ttl() -> chrono::Duration {
    chrono::Duration::from_std(INVITATION_TTL).unwrap_or_default()
}

/// When a link issued at `now` stops serving.
pub fn expires_at(now: DateTime<Utc>) -> DateTime<Utc> {
    now + ttl()
}

/// A fresh link token: 128 bits from the OS generator, as 32 hex digits.
fn new_token() -> String {
    random_hex(16)
}

/// Whether an invitation still serves at `now`: never used, not replaced by a newer one, and
/// before its expiry (the expiry instant itself is too late).
pub fn is_open(invitation: &Invitation, now: DateTime<Utc>) -> bool {
    invitation.used_at.is_none() && invitation.revoked_at.is_none() && now < invitation.expires_at
}

/// An account takes an invitation while it is enabled and has no password of its own.
fn awaits_password(account: &User) -> bool {
    !account.disabled && account.password_set_at.is_none()
}

/// The hash an invited account holds until its owner sets a password: a real argon2id hash
/// of 256 random bits nobody is told. Verifying against it costs one argon2 run and fails,
/// exactly like a wrong password; a malformed string would fail without the run, and so tell
/// an attacker which accounts are waiting for their invitation.
async fn unusable_hash(passwords: &Passwords) -> Result<String, AccountError> {
    passwords
        .hash(random_hex(32))
        .await
        .map_err(AccountError::Hashing)
}

/// Creates a staff or admin account with an unusable password and its first invitation; the
/// token, to show the admin once.
pub async fn invite(
    db: &DbPool,
    passwords: &Passwords,
    account: NewInvitedAccount,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<(User, String), AccountError> {
    if !account.role.is_staff() {
        return Err(FieldErrors::one("role", STAFF_ONLY).into());
    }
    let unusable = unusable_hash(passwords).await?;
    let token = new_token();
    let token_hash = sha256_hex(&token);
    let full_name = account.full_name.to_string();
    let mut conn = db.get().await?;
    let created = conn
        .transaction(async |conn| {
            let created = user::insert_invited(
                conn,
                &NewUser {
                    email: account.email.as_str(),
                    password_hash: &unusable,
                    full_name: &full_name,
                    phone: account.phone.as_ref().map(Phone::as_str),
                    birth_date: None,
                    role: account.role,
                    phone_verified_at: None,
                },
            )
            .await?;
            invitation::insert(
                conn,
                &NewInvitation {
                    user_id: created.id,
                    token_hash: &token_hash,
                    created_by: actor.user_id,
                    created_at: now,
                    expires_at: expires_at(now),
                },
            )
            .await?;
            Ok::<_, diesel::result::Error>(created)
        })
        .await;
    let created = match created {
        Ok(created) => created,
        Err(e) if user::is_duplicate_email(&e) => return Err(AccountError::EmailTaken),
        Err(e) => return Err(e.into()),
    };
    drop(conn);
    audit::append(db, actor, "user_invited", &created.id.to_string()).await;
    Ok((created, token))
}

/// A new link for an invited account that has not set its password yet (the admin's
/// "resend"): the earlier unused links stop working. The token, to show the admin once.
pub async fn reinvite(
    db: &DbPool,
    account: &User,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<String, AccountError> {
    if !awaits_password(account) {
        return Err(AccountError::NotInvitable);
    }
    let user_id = account.id;
    let token = new_token();
    let token_hash = sha256_hex(&token);
    let mut conn = db.get().await?;
    conn.transaction(async |conn| {
        invitation::revoke_open(conn, user_id, now).await?;
        invitation::insert(
            conn,
            &NewInvitation {
                user_id,
                token_hash: &token_hash,
                created_by: actor.user_id,
                created_at: now,
                expires_at: expires_at(now),
            },
        )
        .await?;
        Ok::<_, diesel::result::Error>(())
    })
    .await?;
    drop(conn);
    audit::append(db, actor, "invitation_reissued", &user_id.to_string()).await;
    Ok(token)
}

/// The account a link is for, while the link serves (the invitee's page shows its e-mail
/// and name). Unknown, used, replaced and expired links, and links of a disabled account or
/// of one with a password, are all [`AccountError::InvitationInvalid`].
pub async fn find_open(db: &DbPool, token: &str, now: DateTime<Utc>) -> Result<User, AccountError> {
    let mut conn = db.get().await?;
    let Some(invitation) = invitation::find_by_hash(&mut conn, &sha256_hex(token)).await? else {
        return Err(AccountError::InvitationInvalid);
    };
    match user::find(&mut conn, invitation.user_id).await? {
        Some(account) if is_open(&invitation, now) && awaits_password(&account) => Ok(account),
        _ => Err(AccountError::InvitationInvalid),
    }
}

/// Sets the invitee's password through the link and spends the link; the account, to log
/// in. Nothing else of the account changes.
pub async fn accept(
    db: &DbPool,
    passwords: &Passwords,
    token: &str,
    password: NewPassword,
    ip: IpAddr,
    now: DateTime<Utc>,
) -> Result<User, AccountError> {
    // Checked before hashing, so a dead link costs no argon2 run.
    find_open(db, token, now).await?;
    let hash = passwords
        .hash(password.expose().to_owned())
        .await
        .map_err(AccountError::Hashing)?;
    let token_hash = sha256_hex(token);
    let mut conn = db.get().await?;
    let accepted = conn
        .transaction(async |conn| {
            // Looked at again under the row's lock: of two submissions of one link, the
            // second finds it used. The account's update repeats its own conditions, so an
            // account disabled meanwhile is not given a password either.
            let Some(invitation) = invitation::lock_by_hash(conn, &token_hash).await? else {
                return Ok(None);
            };
            if !is_open(&invitation, now) {
                return Ok(None);
            }
            let Some(account) =
                user::set_first_password(conn, invitation.user_id, &hash, now).await?
            else {
                return Ok(None);
            };
            invitation::mark_used(conn, invitation.id, now).await?;
            Ok::<_, diesel::result::Error>(Some(account))
        })
        .await?;
    drop(conn);
    let Some(account) = accepted else {
        return Err(AccountError::InvitationInvalid);
    };
    audit::append(
        db,
        Actor::user(&account, ip),
        "invitation_accepted",
        &account.id.to_string(),
    )
    .await;
    Ok(account)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn invitation(expires_at: DateTime<Utc>) -> Invitation {
        Invitation {
            id: 1,
            user_id: 2,
            token_hash: sha256_hex("token"),
            created_by: Some(3),
            created_at: expires_at - ttl(),
            expires_at,
            used_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn a_link_serves_once_until_it_expires_or_is_replaced() {
        let issued = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        let open = invitation(issued + ttl());
        assert!(is_open(&open, issued));
        assert!(is_open(
            &open,
            issued + ttl() - chrono::Duration::seconds(1)
        ));
        assert!(
            !is_open(&open, issued + ttl()),
            "the expiry instant is too late"
        );
        assert!(!is_open(&open, issued + ttl() + chrono::Duration::hours(1)));
        let used = Invitation {
            used_at: Some(issued),
            ..open.clone()
        };
        assert!(!is_open(&used, issued));
        let replaced = Invitation {
            revoked_at: Some(issued),
            ..open
        };
        assert!(!is_open(&replaced, issued));
    }

    #[test]
    fn links_last_a_day_and_tokens_carry_128_bits() {
        assert_eq!(ttl(), chrono::Duration::hours(24));
        let token = new_token();
        assert_eq!(token.len(), 32);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(token, new_token());
    }
}
