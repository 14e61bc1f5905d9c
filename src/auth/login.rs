//! The password login shared by the cabinet form and the API: throttle, verify, audit.

use std::net::IpAddr;

use crate::{
    app::App,
    auth::{password::MAX_INPUT_BYTES, throttle::Verdict},
    db::models::user::{self, User},
    domain::audit::Actor,
    error::AppError,
};

/// How a login attempt ended.
pub enum LoginOutcome {
    LoggedIn(User),
    /// Unknown e-mail, wrong password, disabled account or an invited one without a password
    /// yet: one answer for all.
    Failed,
    Throttled {
        retry_after_secs: u64,
    },
}

/// Checks `email` and `password`. Throttled attempts never reach argon2; an unknown e-mail
/// costs one verification against the dummy hash, like a wrong password.
///
/// `device_cookie` is the browser's device cookie, if any: a genuine one for this account
/// takes the attempt past the account's lock (see `auth::device`).
pub async fn authenticate(
    app: &App,
    email: &str,
    password: &str,
    ip: IpAddr,
    device_cookie: Option<&str>,
) -> Result<LoginOutcome, AppError> {
    let email = user::normalize_email(email);
    let device = device_cookie
        .and_then(|cookie| crate::auth::device::verify(&app.config.jwt_secret, cookie, &email));
    if let Verdict::Throttled { retry_after_secs } = app
        .login_throttle
        .attempt(&email, ip, device.as_deref())
        .await?
    {
        audit(app, None, "login_throttled", &email, ip).await;
        return Ok(LoginOutcome::Throttled { retry_after_secs });
    }
    // No stored address has control characters or exceeds 254 bytes (PostgreSQL would not
    // even take a NUL); such input is an unknown account, checked against the dummy hash.
    let plausible = email.len() <= 254 && !email.chars().any(char::is_control);
    let account = if plausible {
        let mut conn = app.db().await?;
        user::find_by_email(&mut conn, &email).await?
    } else {
        None
    };

    // Inputs no real password has are refused before argon2 sees them.
    let verified = password.len() <= MAX_INPUT_BYTES
        && app
            .passwords
            .verify(account.as_ref().map(|u| u.password_hash.as_str()), password)
            .await?;

    // An invited account that has not set its password holds an unusable hash, so `verified`
    // is false for it already; the marker is checked as well, so that no password could ever
    // open such an account. Either way it is the same failure as a wrong password.
    match account {
        Some(user) if verified && !user.disabled && user.password_set_at.is_some() => {
            app.login_throttle
                .succeeded(&email, ip, device.as_deref())
                .await?;
            audit(app, Some(user.id), "login_succeeded", &email, ip).await;
            let mut conn = app.db().await?;
            user::touch_last_login(&mut conn, user.id).await?;
            Ok(LoginOutcome::LoggedIn(user))
        }
        account => {
            audit(app, account.map(|u| u.id), "login_failed", &email, ip).await;
            Ok(LoginOutcome::Failed)
        }
    }
}

/// Appends an audit event; a failure to audit is logged, not shown to the user.
pub async fn audit(app: &App, actor: Option<i64>, action: &str, subject: &str, ip: IpAddr) {
    let actor = Actor { user_id: actor, ip };
    crate::domain::audit::append(&app.db, actor, action, subject).await;
}
