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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
}

/// The public view of an account.
#[derive(Serialize)]
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

#[derive(Serialize)]
pub struct LoginResponse {
    token: String,
    token_type: &'static str,
    expires_in: u64,
    user: UserView,
}

pub async fn log_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(body): Json<LoginRequest>,
) -> Result<Response, AppError> {
    match authenticate(&state, &body.email, &body.password, ip).await? {
        LoginOutcome::LoggedIn(user) => {
            let token = state.jwt.issue(user.id, user.session_version)?;
            Ok(JsonResponse(LoginResponse {
                token,
                token_type: "Bearer",
                expires_in: state.jwt.ttl().as_secs(),
                user: UserView::from(&user),
            })
            .into_response())
        }
        LoginOutcome::Failed => Err(AppError::Unauthorized),
        LoginOutcome::Throttled { retry_after_secs } => {
            Err(AppError::RateLimited { retry_after_secs })
        }
    }
}

pub async fn show_me(ApiUser(user): ApiUser) -> JsonResponse<UserView> {
    JsonResponse(UserView::from(&user))
}
