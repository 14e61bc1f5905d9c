//! The API's sign-in: `POST /api/v1/user/login` (an access token and a refresh token; for
//! the roles in `MFA_REQUIRED_ROLES` also the second factor, `otp`),
//! `POST /api/v1/user/refresh` (rotation), `POST /api/v1/user/logout` and `GET /api/v1/user/me`.

use axum::{
    Json as JsonResponse,
    extract::State,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use crate::{
    app::AppState,
    auth::{
        login::{LoginOutcome, authenticate},
        roles::{ApiUser, Role, needs_second_factor},
    },
    client_ip::ClientIp,
    db::models::user::User,
    domain::mfa::{self, MfaError},
    error::AppError,
    extract::Json,
};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(max_length = 254)]
    email: String,
    #[schema(max_length = 1024)]
    password: String,
    /// The second factor, for accounts whose role signs in with one (`MFA_REQUIRED_ROLES`:
    /// staff and admins by default): the 6-digit code of the authenticator app, or an unused
    /// recovery code. Without it such a login is 401 `mfa_required`; a wrong, reused or
    /// stale one is 401 `invalid_credentials`, like a wrong password. Ignored for other roles.
    #[serde(default)]
    #[schema(max_length = 32)]
    otp: Option<String>,
}

/// The public view of an account.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: i64,
    pub email: String,
    pub full_name: String,
    pub role: Role,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            email: user.email.clone(),
            full_name: user.full_name.clone(),
            role: user.role(),
        }
    }
}

/// An access token (a short-lived JWT for `Authorization: Bearer`) and the refresh token
/// that gets the next one.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginResponse {
    token: String,
    token_type: String,
    /// Seconds the access token lives.
    expires_in: u64,
    /// Opaque; send it to `POST /api/v1/user/refresh` once: each use returns a new one.
    refresh_token: String,
    /// Seconds the refresh token lives.
    refresh_expires_in: u64,
    user: UserView,
}

/// A refresh token to spend or revoke.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[schema(min_length = 1, max_length = 128)]
    refresh_token: String,
}

impl RefreshRequest {
    /// The token as sent (without surrounding spaces), or a 422 on `refresh_token` outside
    /// the schema's 1 to 128 characters. Counted in characters, as the schema counts them: a
    /// schema-valid string no token of ours looks like (spaces only, letters of any script)
    /// is simply not found, like any unknown token.
    fn token(&self) -> Result<&str, AppError> {
        let characters = self.refresh_token.chars().count();
        if characters == 0 || characters > 128 {
            return Err(AppError::field(
                "refresh_token",
                "Токен обновления: от 1 до 128 символов",
            ));
        }
        Ok(self.refresh_token.trim())
    }
}

/// The answer of a login or a refresh: a new access token and a new refresh token.
async fn signed_in(
    state: &AppState,
    user: &User,
    refresh: Option<crate::domain::refresh::Issued>,
) -> Result<Response, AppError> {
    let token = state.jwt.issue(user.id, user.session_version)?;
    let refresh = match refresh {
        Some(issued) => issued,
        None => state.refresh_tokens.issue(user).await?,
    };
    let now = state.booking.clock.now();
    Ok(JsonResponse(LoginResponse {
        token,
        token_type: "Bearer".into(),
        expires_in: state.jwt.ttl().as_secs(),
        refresh_token: refresh.token,
        refresh_expires_in: u64::try_from((refresh.expires_at - now).num_seconds()).unwrap_or(0),
        user: UserView::from(user),
    })
    .into_response())
}

/// Logs in with e-mail and password and returns an access token.
#[utoipa::path(post, path = "/api/v1/user/login", tag = "user", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 400, description = "Malformed JSON", body = crate::api::types::ErrorBody),
        (status = 401, description = "`invalid_credentials`: unknown e-mail, wrong password, a disabled account, or a wrong, reused or stale `otp` (one answer for all); `mfa_required`: the password is right, but the account's role signs in with a second factor and `otp` is missing (or no factor is set up yet: set it up by logging in on the site)", body = crate::api::types::ErrorBody),
        (status = 413, description = "Body too large", body = crate::api::types::ErrorBody),
        (status = 415, description = "Not JSON", body = crate::api::types::ErrorBody),
        (status = 422, description = "Missing or unknown fields, or an `otp` over 32 characters (refused before any check, for every role)", body = crate::api::types::ErrorBody),
        (status = 429, description = "Too many attempts (of the password, or of `otp` on the account)", body = crate::api::types::ErrorBody),
        (status = 503, description = "A dependency is down", body = crate::api::types::ErrorBody),
    ))]
pub async fn log_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(body): Json<LoginRequest>,
) -> Result<Response, AppError> {
    // Refused as the schema says, whatever the account: no code or recovery code is longer.
    if body
        .otp
        .as_ref()
        .is_some_and(|otp| otp.chars().count() > 32)
    {
        return Err(AppError::field(
            "otp",
            "Код второго фактора не длиннее 32 символов",
        ));
    }
    match authenticate(&state, &body.email, &body.password, ip, None).await? {
        LoginOutcome::LoggedIn(user) if needs_second_factor(&state, &user) => {
            let Some(otp) = body.otp.as_deref().filter(|otp| !otp.trim().is_empty()) else {
                return Err(AppError::MfaRequired);
            };
            let now = state.booking.clock.now();
            match mfa::verify(&state.db, &state.redis, &user, otp, now, ip).await {
                // The refresh family is issued to a login that passed both factors, so its
                // rotations need no second factor again.
                Ok(_) => signed_in(&state, &user, None).await,
                Err(MfaError::WrongCode) => Err(AppError::InvalidCredentials),
                Err(e) => Err(e.into()),
            }
        }
        LoginOutcome::LoggedIn(user) => signed_in(&state, &user, None).await,
        LoginOutcome::Failed => Err(AppError::InvalidCredentials),
        LoginOutcome::Throttled { retry_after_secs } => {
            Err(AppError::RateLimited { retry_after_secs })
        }
    }
}

/// Spends a refresh token for a new access token and the next refresh token. A token that
/// was spent already revokes its whole family (it was copied); log in again after any 401.
#[utoipa::path(post, path = "/api/v1/user/refresh", tag = "user", request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new pair; the refresh token sent is spent", body = LoginResponse),
        (status = 400, description = "Malformed JSON", body = crate::api::types::ErrorBody),
        (status = 401, description = "`unauthorized`: unknown, expired, revoked or spent (the family is revoked), or the account changed its password, role or status", body = crate::api::types::ErrorBody),
        (status = 413, description = "Body too large", body = crate::api::types::ErrorBody),
        (status = 415, description = "Not JSON", body = crate::api::types::ErrorBody),
        (status = 422, description = "Missing or unknown fields, or an empty or over-long `refresh_token`", body = crate::api::types::ErrorBody),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> Result<Response, AppError> {
    let (user, next) = state.refresh_tokens.rotate(body.token()?).await?;
    signed_in(&state, &user, Some(next)).await
}

/// Revokes the refresh token and its family (the access token runs out by itself).
#[utoipa::path(post, path = "/api/v1/user/logout", tag = "user", request_body = RefreshRequest,
    responses(
        (status = 204, description = "Revoked (also for a token that was not valid)"),
        (status = 400, description = "Malformed JSON", body = crate::api::types::ErrorBody),
        (status = 413, description = "Body too large", body = crate::api::types::ErrorBody),
        (status = 415, description = "Not JSON", body = crate::api::types::ErrorBody),
        (status = 422, description = "Missing or unknown fields, or an empty or over-long `refresh_token`", body = crate::api::types::ErrorBody),
    ))]
pub async fn log_out(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> Result<axum::http::StatusCode, AppError> {
    state.refresh_tokens.revoke(body.token()?).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The account behind the token.
#[utoipa::path(get, path = "/api/v1/user/me", tag = "user", security(("bearer" = [])),
    responses(
        (status = 200, description = "The account", body = UserView),
        (status = 401, description = "`unauthorized` (missing or invalid token) or `token_expired`", body = crate::api::types::ErrorBody),
    ))]
pub async fn show_me(ApiUser(user): ApiUser) -> JsonResponse<UserView> {
    JsonResponse(UserView::from(&user))
}
