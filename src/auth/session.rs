//! The typed cabinet session: who is logged in, since when, whether the second factor was
//! passed, which `login_sessions` row it is, and the CSRF token.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::{extract::FromRequestParts, http::request::Parts};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::{app::App, db::models::user::User, error::AppError};

const LOGIN_KEY: &str = "auth";
const CSRF_KEY: &str = "csrf";

/// What the session remembers about a login.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionLogin {
    pub user_id: i64,
    /// The user's `session_version` at login; a newer one in the database ends the session.
    pub version: i32,
    /// Unix seconds of the login, for the absolute timeout.
    pub logged_in_at: u64,
    /// The second factor was passed in this session. Sessions written before the second
    /// factor existed read as not passed, so a staff member's old session is sent to it.
    #[serde(default)]
    pub second_factor: bool,
    /// The session's row in `login_sessions`. `None` in sessions written before the list of
    /// sessions existed; they get a row at their next request.
    #[serde(default)]
    pub login_id: Option<String>,
}

/// The cabinet session of the current request.
pub struct AuthSession(pub Session);

impl<S: Send + Sync> FromRequestParts<S> for AuthSession {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Session::from_request_parts(parts, state)
            .await
            .map(AuthSession)
            .map_err(|_| AppError::Internal(anyhow::anyhow!("session layer missing")))
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// 128 bits from the OS generator, as 32 hex digits.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl AuthSession {
    /// Logs `user` in after the password: the login gets its row in `login_sessions` (this
    /// device and address), the session a new id (the old one stops existing) and a new CSRF
    /// token. The second factor, where the role needs one, is still to come.
    pub async fn log_in(
        &self,
        app: &App,
        user: &User,
        user_agent: &str,
        ip: std::net::IpAddr,
    ) -> Result<(), AppError> {
        let now = app.booking.clock.now();
        let login_id = crate::domain::sessions::start(&app.db, user, user_agent, ip, now).await?;
        self.0.cycle_id().await?;
        let login = SessionLogin {
            user_id: user.id,
            version: user.session_version,
            logged_in_at: unix_now(),
            second_factor: false,
            login_id: Some(login_id),
        };
        self.0.insert(LOGIN_KEY, login).await?;
        self.0.insert(CSRF_KEY, random_token()).await?;
        Ok(())
    }

    /// The second factor was passed: the login says so, and the session gets a new id and
    /// CSRF token again, so an id or token seen before the second step is worth nothing.
    pub async fn pass_second_factor(&self) -> Result<(), AppError> {
        let Some(mut login) = self.login().await? else {
            return Err(AppError::Unauthorized);
        };
        self.0.cycle_id().await?;
        login.second_factor = true;
        self.0.insert(LOGIN_KEY, login).await?;
        self.0.insert(CSRF_KEY, random_token()).await?;
        Ok(())
    }

    /// The account's `session_version` moved on by this session's own doing (a password
    /// change): the session stays logged in under the new version, with its row, its second
    /// factor and its login time; a new id and CSRF token.
    pub async fn renew(&self, app: &App, user: &User) -> Result<(), AppError> {
        let Some(mut login) = self.login().await? else {
            return Err(AppError::Unauthorized);
        };
        if let Some(login_id) = &login.login_id {
            crate::domain::sessions::carry_over(&app.db, login_id, user.session_version).await?;
        }
        self.0.cycle_id().await?;
        login.version = user.session_version;
        self.0.insert(LOGIN_KEY, login).await?;
        self.0.insert(CSRF_KEY, random_token()).await?;
        Ok(())
    }

    /// Keeps the row made for a session that had none (written before rows existed).
    pub async fn set_login_id(&self, login_id: String) -> Result<(), AppError> {
        let Some(mut login) = self.login().await? else {
            return Err(AppError::Unauthorized);
        };
        login.login_id = Some(login_id);
        self.0.insert(LOGIN_KEY, login).await?;
        Ok(())
    }

    /// Ends the session on the server; the layer clears the cookie.
    pub async fn log_out(&self) -> Result<(), AppError> {
        Ok(self.0.flush().await?)
    }

    pub async fn login(&self) -> Result<Option<SessionLogin>, AppError> {
        Ok(self.0.get(LOGIN_KEY).await?)
    }

    /// The session's CSRF token, created (and with it a pre-login session) when missing.
    pub async fn csrf_token(&self) -> Result<String, AppError> {
        if let Some(token) = self.0.get::<String>(CSRF_KEY).await? {
            return Ok(token);
        }
        let token = random_token();
        self.0.insert(CSRF_KEY, &token).await?;
        // Saved now rather than by the layer after the handler, so that a Redis outage is a
        // 503 naming Redis instead of the layer's bare 500.
        self.0.save().await?;
        Ok(token)
    }

    /// The CSRF token if the session has one; never creates a session.
    pub async fn existing_csrf_token(&self) -> Result<Option<String>, AppError> {
        Ok(self.0.get(CSRF_KEY).await?)
    }
}
