//! `POST /api/v1/user/login` and `GET /api/v1/user/me`.

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
        roles::{ApiUser, Role},
    },
    client_ip::ClientIp,
    db::models::user::User,
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

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginResponse {
    token: String,
    token_type: String,
    expires_in: u64,
    user: UserView,
}

/// Logs in with e-mail and password and returns an access token.
#[utoipa::path(post, path = "/api/v1/user/login", tag = "user", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 400, description = "Malformed JSON", body = crate::api::types::ErrorBody),
        (status = 401, description = "`invalid_credentials`: unknown e-mail, wrong password or a disabled account (one answer for all)", body = crate::api::types::ErrorBody),
        (status = 413, description = "Body too large", body = crate::api::types::ErrorBody),
        (status = 415, description = "Not JSON", body = crate::api::types::ErrorBody),
        (status = 422, description = "Missing or unknown fields", body = crate::api::types::ErrorBody),
        (status = 429, description = "Too many attempts", body = crate::api::types::ErrorBody),
        (status = 503, description = "A dependency is down", body = crate::api::types::ErrorBody),
    ))]
pub async fn log_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(body): Json<LoginRequest>,
) -> Result<Response, AppError> {
    match authenticate(&state, &body.email, &body.password, ip, None).await? {
        LoginOutcome::LoggedIn(user) => {
            let token = state.jwt.issue(user.id, user.session_version)?;
            Ok(JsonResponse(LoginResponse {
                token,
                token_type: "Bearer".into(),
                expires_in: state.jwt.ttl().as_secs(),
                user: UserView::from(&user),
            })
            .into_response())
        }
        LoginOutcome::Failed => Err(AppError::InvalidCredentials),
        LoginOutcome::Throttled { retry_after_secs } => {
            Err(AppError::RateLimited { retry_after_secs })
        }
    }
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
