//! The second step of sign-in for the roles in `MFA_REQUIRED_ROLES`: `/mfa/setup` (an
//! account without a factor scans a QR code, or types the secret, and confirms with a first
//! code; then its recovery codes, shown once) and `/mfa` (a code of the app or a recovery
//! code). Both serve only a session that passed the password and not yet the second factor;
//! anyone else is sent to the login form or on to where they were going. Passing gives the
//! session a new id and CSRF token.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

// The base layout names roles.
use crate::db::models::user::Role;
use crate::{
    app::AppState,
    auth::{
        roles::{self, MaybeUser},
        session::AuthSession,
    },
    client_ip::ClientIp,
    db::models::user::User,
    domain::mfa::{self, MfaError, Passed},
    error::AppError,
    extract::{Form, Query},
    web::{Layout, keep_retry_after, safe_next},
};

/// The message for every refused code: wrong, used before, too old, an unknown or spent
/// recovery code.
const CODE_REFUSED: &str = "Код не подошёл. Введите новый код из приложения (каждый код действует один раз) или неиспользованный резервный код.";

#[derive(Template, WebTemplate)]
#[template(path = "pages/auth/mfa_setup.html")]
struct SetupPage {
    layout: Layout,
    next: String,
    /// The QR code of the `otpauth://` URL, an inline SVG made here (no `style` attribute).
    qr_svg: String,
    /// The secret in groups of four, for typing by hand.
    secret_groups: String,
    email: String,
    error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/auth/mfa_recovery.html")]
struct RecoveryCodesPage {
    layout: Layout,
    codes: Vec<String>,
    /// Where «Продолжить» goes.
    target: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/auth/mfa.html")]
struct CodePage {
    layout: Layout,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    next: String,
}

/// `next` if it is a same-site path, else the role's home.
fn target(next: &str, user: &User) -> String {
    safe_next(next)
        .unwrap_or(user.role().home_path())
        .to_owned()
}

fn with_next(path: &str, next: &str) -> String {
    if next.is_empty() {
        return path.to_owned();
    }
    let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
    format!("{path}?{query}")
}

/// The user of a session that passed the password and waits for its second factor; anyone
/// else gets where they belong instead: no login, the login form; no factor needed or passed
/// already, on to `next`.
async fn waiting(
    state: &AppState,
    session: &AuthSession,
    user: Option<User>,
    next: &str,
) -> Result<Result<User, Response>, AppError> {
    let Some(user) = user else {
        return Ok(Err(Redirect::to(&with_next("/login", next)).into_response()));
    };
    let passed = session
        .login()
        .await?
        .is_some_and(|login| login.second_factor);
    if passed || !roles::needs_second_factor(state, &user) {
        return Ok(Err(Redirect::to(&target(next, &user)).into_response()));
    }
    Ok(Ok(user))
}

/// The `otpauth://` URL as an inline SVG QR code. The renderer writes presentation
/// attributes only (`fill`, `shape-rendering`), never a `style` attribute, so the CSP's
/// `style-src 'self'` has nothing to block; its XML declaration is dropped, having no place
/// inside HTML.
fn qr_svg(url: &str) -> Result<String, AppError> {
    let code = qrcode::QrCode::with_error_correction_level(url.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("QR code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build();
    let start = svg.find("<svg").unwrap_or(0);
    Ok(svg[start..].replacen(
        "<svg ",
        "<svg class=\"qr\" role=\"img\" aria-label=\"QR-код для приложения-аутентификатора\" ",
        1,
    ))
}

async fn setup_page(
    state: &AppState,
    session: &AuthSession,
    user: &User,
    next: &str,
    error: Option<String>,
) -> Result<Result<SetupPage, Response>, AppError> {
    let enrolment = match mfa::begin_enrolment(&state.db, user).await {
        Ok(enrolment) => enrolment,
        Err(MfaError::AlreadyEnrolled) => {
            return Ok(Err(Redirect::to(&with_next("/mfa", next)).into_response()));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Ok(SetupPage {
        layout: Layout::with_form(session, Some(user)).await?,
        next: safe_next(next).unwrap_or_default().to_owned(),
        qr_svg: qr_svg(&enrolment.url)?,
        secret_groups: mfa::grouped(&enrolment.secret),
        email: user.email.clone(),
        error,
    }))
}

/// `GET /mfa/setup`: the QR code, the secret in text, and the field for the first code.
pub async fn show_mfa_setup(
    State(state): State<AppState>,
    session: AuthSession,
    MaybeUser(user): MaybeUser,
    Query(query): Query<NextQuery>,
) -> Result<Response, AppError> {
    let user = match waiting(&state, &session, user, &query.next).await? {
        Ok(user) => user,
        Err(elsewhere) => return Ok(elsewhere),
    };
    Ok(
        match setup_page(&state, &session, &user, &query.next, None).await? {
            Ok(page) => page.into_response(),
            Err(elsewhere) => elsewhere,
        },
    )
}

/// `POST /mfa/setup` (`code`, `next`): the first code confirms the factor; the session
/// passes, and the recovery codes are shown this once.
pub async fn confirm_mfa_setup(
    State(state): State<AppState>,
    session: AuthSession,
    MaybeUser(user): MaybeUser,
    ClientIp(ip): ClientIp,
    Form(form): Form<CodeForm>,
) -> Result<Response, AppError> {
    let user = match waiting(&state, &session, user, &form.next).await? {
        Ok(user) => user,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let now = state.booking.clock.now();
    let error =
        match mfa::confirm_enrolment(&state.db, &state.redis, &user, &form.code, now, ip).await {
            Ok(codes) => {
                session.pass_second_factor().await?;
                let page = RecoveryCodesPage {
                    layout: Layout::with_form(&session, Some(&user)).await?,
                    codes,
                    target: target(&form.next, &user),
                };
                return Ok(page.into_response());
            }
            Err(MfaError::AlreadyEnrolled) => {
                return Ok(Redirect::to(&with_next("/mfa", &form.next)).into_response());
            }
            Err(MfaError::WrongCode) => AppError::field("code", CODE_REFUSED),
            Err(e @ MfaError::RateLimited { .. }) => AppError::from(e),
            Err(e) => return Err(e.into()),
        };
    let page = match setup_page(&state, &session, &user, &form.next, Some(shown(&error))).await? {
        Ok(page) => page,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let mut response = (error.status(), page).into_response();
    keep_retry_after(&mut response, &error);
    Ok(response)
}

/// The words of a refusal on the page.
fn shown(error: &AppError) -> String {
    match error {
        AppError::Validation { message, .. } => message.clone(),
        other => other.public_message(),
    }
}

/// `GET /mfa`: the field for a code of the app or a recovery code.
pub async fn show_mfa(
    State(state): State<AppState>,
    session: AuthSession,
    MaybeUser(user): MaybeUser,
    Query(query): Query<NextQuery>,
) -> Result<Response, AppError> {
    let user = match waiting(&state, &session, user, &query.next).await? {
        Ok(user) => user,
        Err(elsewhere) => return Ok(elsewhere),
    };
    if !mfa::is_enrolled(&state.db, user.id).await? {
        return Ok(Redirect::to(&with_next("/mfa/setup", &query.next)).into_response());
    }
    Ok(CodePage {
        layout: Layout::with_form(&session, Some(&user)).await?,
        next: safe_next(&query.next).unwrap_or_default().to_owned(),
        error: None,
    }
    .into_response())
}

/// `POST /mfa` (`code`, `next`): a right code passes the session (a new id) and sends it on
/// to `next` or the role's home; a refused one shows the form again.
pub async fn check_mfa(
    State(state): State<AppState>,
    session: AuthSession,
    MaybeUser(user): MaybeUser,
    ClientIp(ip): ClientIp,
    Form(form): Form<CodeForm>,
) -> Result<Response, AppError> {
    let user = match waiting(&state, &session, user, &form.next).await? {
        Ok(user) => user,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let now = state.booking.clock.now();
    let error = match mfa::verify(&state.db, &state.redis, &user, &form.code, now, ip).await {
        Ok(Passed::Code | Passed::Recovery { .. }) => {
            session.pass_second_factor().await?;
            return Ok(Redirect::to(&target(&form.next, &user)).into_response());
        }
        Err(MfaError::NotEnrolled) => {
            return Ok(Redirect::to(&with_next("/mfa/setup", &form.next)).into_response());
        }
        Err(MfaError::WrongCode) => AppError::field("code", CODE_REFUSED),
        Err(e @ MfaError::RateLimited { .. }) => AppError::from(e),
        Err(e) => return Err(e.into()),
    };
    let page = CodePage {
        layout: Layout::with_form(&session, Some(&user)).await?,
        next: safe_next(&form.next).unwrap_or_default().to_owned(),
        error: Some(shown(&error)),
    };
    let mut response = (error.status(), page).into_response();
    keep_retry_after(&mut response, &error);
    Ok(response)
}
