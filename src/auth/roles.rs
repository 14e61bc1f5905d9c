//! Who is asking: the page extractors (cookie session only), the role gates for page
//! groups (which also send a session still waiting for its second factor to it), and the API
//! extractor (`Authorization: Bearer` only). Mixing the two is a bug.

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};

pub use crate::db::models::user::Role;
use crate::{
    app::{App, AppState},
    auth::session::{AuthSession, SessionLogin, unix_now},
    client_ip::ClientIp,
    db::models::user::{self, User},
    error::AppError,
};

/// The logged-in user of a page request, put in place by a role gate.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

/// The logged-in user of a page request, if any. A session still waiting for its second
/// factor counts as logged in here (the second-factor pages need its user); the role gates
/// are what keep it out of every area until it passes.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<User>);

/// Loads the session's login and user, ending the session when it is past its absolute
/// lifetime, the account is disabled, its `session_version` moved on (password change, role
/// change), or its row in `login_sessions` was ended (from the sessions page). A session from
/// before such rows existed gets its row now, from this request's device and address.
pub async fn session_login(
    app: &App,
    session: &AuthSession,
    user_agent: &str,
    ip: std::net::IpAddr,
) -> Result<Option<(User, SessionLogin)>, AppError> {
    let Some(mut login) = session.login().await? else {
        return Ok(None);
    };
    if unix_now().saturating_sub(login.logged_in_at) > app.config.session_absolute.as_secs() {
        session.log_out().await?;
        return Ok(None);
    }
    let mut conn = app.db().await?;
    let user = match user::find(&mut conn, login.user_id).await? {
        Some(user) if !user.disabled && user.session_version == login.version => user,
        _ => {
            session.log_out().await?;
            return Ok(None);
        }
    };
    let now = app.booking.clock.now();
    match login.login_id.clone() {
        Some(login_id) => {
            if !crate::domain::sessions::still_open(&mut conn, &login_id, &user, now).await? {
                session.log_out().await?;
                return Ok(None);
            }
        }
        None => {
            drop(conn);
            let login_id =
                crate::domain::sessions::start(&app.db, &user, user_agent, ip, now).await?;
            session.set_login_id(login_id.clone()).await?;
            login.login_id = Some(login_id);
        }
    }
    Ok(Some((user, login)))
}

/// The User-Agent of a request, or nothing.
pub fn user_agent(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The session's login of a page request, checked (see [`session_login`]).
async fn request_login(
    parts: &mut Parts,
    state: &AppState,
) -> Result<Option<(User, SessionLogin)>, AppError> {
    let session = AuthSession::from_request_parts(parts, state).await?;
    let Ok(ClientIp(ip)) = ClientIp::from_request_parts(parts, state).await;
    session_login(state, &session, user_agent(&parts.headers), ip).await
}

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(CurrentUser(user)) = parts.extensions.get::<CurrentUser>() {
            return Ok(MaybeUser(Some(user.clone())));
        }
        let login = request_login(parts, state).await?;
        Ok(MaybeUser(login.map(|(user, _)| user)))
    }
}

/// Whether `user`'s role signs in with a second factor (`MFA_REQUIRED_ROLES`).
pub fn needs_second_factor(app: &App, user: &User) -> bool {
    app.config.mfa_required_roles.contains(&user.role())
}

/// Where a session that passed the password but not yet the second factor goes: `/mfa` when
/// the account has a factor, `/mfa/setup` to set one up; `next` (a same-site path, checked
/// again there) goes along.
pub async fn second_step(app: &App, user: &User, next: &str) -> Result<String, AppError> {
    let enrolled = crate::domain::mfa::is_enrolled(&app.db, user.id).await?;
    let path = if enrolled { "/mfa" } else { "/mfa/setup" };
    if next.is_empty() {
        return Ok(path.to_owned());
    }
    let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
    Ok(format!("{path}?{query}"))
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<CurrentUser>()
            .cloned()
            .ok_or(AppError::Unauthorized)
    }
}

pub async fn require_patient(state: State<AppState>, request: Request, next: Next) -> Response {
    gate(state, request, next, &[Role::Patient]).await
}

pub async fn require_staff(state: State<AppState>, request: Request, next: Next) -> Response {
    gate(state, request, next, &[Role::Staff, Role::Admin]).await
}

pub async fn require_admin(state: State<AppState>, request: Request, next: Next) -> Response {
    gate(state, request, next, &[Role::Admin]).await
}

/// Any logged-in user (the account's own pages, such as its sessions).
pub async fn require_login(state: State<AppState>, request: Request, next: Next) -> Response {
    gate(state, request, next, Role::ALL).await
}

/// Anonymous: 303 to the login form with `next`. A role that signs in with a second factor,
/// in a session that has not passed it: 303 to the second step with `next`. Wrong role: 403
/// (audited). Otherwise the user goes into the request for [`CurrentUser`].
async fn gate(
    State(state): State<AppState>,
    request: Request,
    next: Next,
    roles: &[Role],
) -> Response {
    let (mut parts, body) = request.into_parts();
    let login = match request_login(&mut parts, &state).await {
        Ok(login) => login,
        Err(e) => return e.into_response(),
    };
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let Some((user, login)) = login else {
        let query = serde_urlencoded::to_string([("next", target)]).unwrap_or_default();
        return Redirect::to(&format!("/login?{query}")).into_response();
    };
    if needs_second_factor(&state, &user) && !login.second_factor {
        return match second_step(&state, &user, target).await {
            Ok(path) => Redirect::to(&path).into_response(),
            Err(e) => e.into_response(),
        };
    }
    if !roles.contains(&user.role()) {
        let Ok(ClientIp(ip)) = ClientIp::from_request_parts(&mut parts, &state).await;
        crate::auth::login::audit(&state, Some(user.id), "access_denied", parts.uri.path(), ip)
            .await;
        return AppError::Forbidden.into_response();
    }
    parts.extensions.insert(CurrentUser(user));
    next.run(Request::from_parts(parts, body)).await
}

/// A record `user` asked for by `path` (a page or the API) that the core refused. When the
/// record exists and is someone else's, the attempt is audited (`access_denied`, the path
/// and `details.record_id`), so its owner sees it in their access log; the answer is the
/// core's error all the same, a 404 like an id that does not exist, so ids cannot be probed.
pub async fn refuse_record(
    app: &App,
    user: &User,
    ip: std::net::IpAddr,
    path: &str,
    record_id: i64,
    e: crate::domain::booking::BookingError,
) -> AppError {
    if matches!(e, crate::domain::booking::BookingError::RecordNotFound) && !user.role().is_staff()
    {
        crate::domain::data_rights::note_refused_record(&app.db, user, ip, path, record_id).await;
    }
    AppError::from(e)
}

/// The record `record_id` as `user` may see it, or the refusal of [`refuse_record`].
pub async fn visible_record(
    app: &App,
    user: &User,
    ip: std::net::IpAddr,
    path: &str,
    record_id: i64,
) -> Result<crate::db::models::record::RecordView, AppError> {
    match app.booking.visible_record(user, record_id).await {
        Ok(view) => Ok(view),
        Err(e) => Err(refuse_record(app, user, ip, path, record_id, e).await),
    }
}

/// A 403 for `user` on `path` outside the role gates (an API operation for another role),
/// audited like the gates' (`access_denied`).
pub async fn refuse_role(app: &App, user: &User, ip: std::net::IpAddr, path: &str) -> AppError {
    crate::auth::login::audit(app, Some(user.id), "access_denied", path, ip).await;
    AppError::Forbidden
}

/// The user behind `Authorization: Bearer <jwt>` on an API request.
#[derive(Debug, Clone)]
pub struct ApiUser(pub User);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or(AppError::Unauthorized)?;
        let (user_id, version) = state.jwt.verify(token).map_err(|rejected| match rejected {
            crate::auth::jwt::TokenRejected::Expired => AppError::TokenExpired,
            crate::auth::jwt::TokenRejected::Invalid => AppError::Unauthorized,
        })?;
        let mut conn = state.db().await?;
        match user::find(&mut conn, user_id).await? {
            Some(user) if !user.disabled && user.session_version == version => Ok(ApiUser(user)),
            _ => Err(AppError::Unauthorized),
        }
    }
}
