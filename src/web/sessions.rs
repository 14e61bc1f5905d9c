//! The user's own sessions (`/account/sessions`, any logged-in role): where the account is
//! logged in (device, address, since when, last used), with «Этот сеанс» marked, and
//! «Завершить» for any other one or «Завершить все, кроме этого». An ended session is
//! refused at its next request (`auth::roles::session_login`).

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

// The base layout names roles.
use crate::db::models::user::Role;
use crate::{
    app::AppState,
    auth::{roles::CurrentUser, session::AuthSession},
    client_ip::ClientIp,
    domain::sessions::{self, ActiveSession},
    error::AppError,
    extract::{Query, path_id},
    web::Layout,
};

#[derive(Template, WebTemplate)]
#[template(path = "pages/account/sessions.html")]
struct SessionsPage {
    layout: Layout,
    sessions: Vec<ActiveSession>,
    /// Whether any session but this one is listed.
    others: bool,
    notice: Option<&'static str>,
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    #[serde(default)]
    done: String,
}

/// The `login_id` of this session; every logged-in session has one by the time a gate let
/// it through (rows are made for older sessions there).
async fn current_login_id(session: &AuthSession) -> Result<String, AppError> {
    session
        .login()
        .await?
        .and_then(|login| login.login_id)
        .ok_or(AppError::Unauthorized)
}

/// `GET /account/sessions`.
pub async fn show_sessions(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    Query(query): Query<DoneQuery>,
) -> Result<Response, AppError> {
    let current = current_login_id(&session).await?;
    let now = state.booking.clock.now();
    let timeouts = (state.config.session_idle, state.config.session_absolute);
    let listed = sessions::list(&state.db, &user, Some(current.as_str()), now, timeouts).await?;
    let notice = match query.done.as_str() {
        "ended" => Some("Сеанс завершён."),
        "others" => Some("Все остальные сеансы завершены."),
        "none" => Some("Этот сеанс уже завершён."),
        _ => None,
    };
    Ok(SessionsPage {
        layout: Layout::with_form(&session, Some(&user)).await?,
        others: listed.iter().any(|s| !s.current),
        sessions: listed,
        notice,
    }
    .into_response())
}

/// `POST /account/sessions/{id}/end`: ends one of the user's other sessions. Another
/// account's session, this one or one ended already changes nothing.
pub async fn end_session(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = path_id(&id)?;
    let current = current_login_id(&session).await?;
    let now = state.booking.clock.now();
    let ended = sessions::end(&state.db, &user, id, &current, ip, now).await?;
    let done = if ended { "ended" } else { "none" };
    Ok(Redirect::to(&format!("/account/sessions?done={done}")).into_response())
}

/// `POST /account/sessions/end-others`: ends every session of the user but this one.
pub async fn end_other_sessions(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
) -> Result<Response, AppError> {
    let current = current_login_id(&session).await?;
    let now = state.booking.clock.now();
    sessions::end_others(&state.db, &user, &current, ip, now).await?;
    Ok(Redirect::to("/account/sessions?done=others").into_response())
}
