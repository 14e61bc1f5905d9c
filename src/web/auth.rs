//! Login (with device cookies), logout, patient self-registration with a phone code, and
//! password reset by a code to the account's proven phone.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use chrono::Utc;
use serde::{Deserialize, Serialize};

// The base layout names roles.
use crate::db::models::user::Role;
use crate::{
    app::{App, AppState},
    auth::{
        device,
        login::{LoginOutcome, audit, authenticate},
        roles::{self, MaybeUser},
        session::AuthSession,
    },
    client_ip::ClientIp,
    domain::{
        accounts::NewPassword,
        consent::ConsentGiven,
        profile::{self, ProfileError, Registration},
        values::{BirthDate, Email, FieldErrors, FullName, Phone},
    },
    error::AppError,
    extract::{Form, Query},
    web::{
        Layout, safe_next,
        verify::{self, PendingAction},
    },
};

/// The one message for every failed login, whatever the cause.
const LOGIN_FAILED: &str = "Неверная электронная почта или пароль.";

#[derive(Template, WebTemplate)]
#[template(path = "pages/auth/login.html")]
struct LoginPage {
    layout: Layout,
    next: String,
    email: String,
    error: Option<String>,
    notice: Option<&'static str>,
    /// `next=...` for the registration link, so a chosen slot survives it.
    next_query: String,
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    registered: String,
    #[serde(default)]
    reset: String,
}

fn next_query(next: &str) -> String {
    if next.is_empty() {
        return String::new();
    }
    serde_urlencoded::to_string([("next", next)]).unwrap_or_default()
}

pub async fn show_login(
    session: AuthSession,
    MaybeUser(user): MaybeUser,
    Query(query): Query<NextQuery>,
) -> Result<Response, AppError> {
    if let Some(user) = &user {
        let target = safe_next(&query.next).unwrap_or(user.role().home_path());
        return Ok(Redirect::to(target).into_response());
    }
    let layout = Layout::with_form(&session, None).await?;
    let next = safe_next(&query.next).unwrap_or_default().to_owned();
    let notice = if query.registered == "1" {
        Some(
            "Телефон подтверждён. Войдите с электронной почтой и паролем, указанными при регистрации.",
        )
    } else if query.reset == "1" {
        Some("Пароль изменён. Войдите с новым паролем; прежние входы завершены.")
    } else {
        None
    };
    Ok(LoginPage {
        layout,
        next_query: next_query(&next),
        next,
        email: String::new(),
        error: None,
        notice,
    }
    .into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

pub async fn log_in(
    State(state): State<AppState>,
    session: AuthSession,
    ClientIp(ip): ClientIp,
    request_headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let next = safe_next(&form.next).unwrap_or_default().to_owned();
    let production = state.config.is_production();
    let cookie_name = device::cookie_name(production);
    let device_cookie = device::read(&request_headers, cookie_name);
    let outcome = authenticate(
        &state,
        &form.email,
        &form.password,
        ip,
        device_cookie.as_deref(),
    )
    .await?;
    let (status, retry_after, error) = match outcome {
        LoginOutcome::LoggedIn(user) => {
            let user_agent = roles::user_agent(&request_headers);
            session.log_in(&state, &user, user_agent, ip).await?;
            // A role that signs in with a second factor goes to it first, `next` kept; the
            // role gates would send it there anyway.
            let target = if roles::needs_second_factor(&state, &user) {
                roles::second_step(&state, &user, &next).await?
            } else if next.is_empty() {
                user.role().home_path().to_owned()
            } else {
                next
            };
            // This browser is known to the account from now on (see `auth::device`).
            let value = device::issue(&state.config.jwt_secret, &user.email);
            let mut response = Redirect::to(&target).into_response();
            if let Some(cookie) = device::set_cookie(cookie_name, &value, production) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            return Ok(response);
        }
        LoginOutcome::Failed => (StatusCode::OK, None, LOGIN_FAILED.to_owned()),
        LoginOutcome::Throttled { retry_after_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            Some(retry_after_secs),
            AppError::RateLimited { retry_after_secs }.public_message(),
        ),
    };
    // The e-mail is not echoed back, so the page for an unknown address and for a wrong
    // password are the same bytes.
    let page = LoginPage {
        layout: Layout::with_form(&session, None).await?,
        next_query: next_query(&next),
        next,
        email: String::new(),
        error: Some(error),
        notice: None,
    };
    let mut headers = HeaderMap::new();
    if let Some(secs) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    Ok((status, headers, page).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/auth/logout.html")]
struct LogoutPage {
    layout: Layout,
}

/// `GET /logout` only asks: a link, an image or a prefetch from anywhere must not end a
/// session, so logging out is the form's POST (with its CSRF token). Without a session it
/// goes to the login page.
pub async fn show_logout(
    session: AuthSession,
    MaybeUser(user): MaybeUser,
) -> Result<Response, AppError> {
    let Some(user) = user else {
        return Ok(Redirect::to("/login").into_response());
    };
    Ok(LogoutPage {
        layout: Layout::with_form(&session, Some(&user)).await?,
    }
    .into_response())
}

pub async fn log_out(
    State(state): State<AppState>,
    session: AuthSession,
    ClientIp(ip): ClientIp,
    MaybeUser(user): MaybeUser,
) -> Result<Response, AppError> {
    end_session(&state, &session, user.map(|u| u.id), ip).await
}

async fn end_session(
    state: &AppState,
    session: &AuthSession,
    user_id: Option<i64>,
    ip: std::net::IpAddr,
) -> Result<Response, AppError> {
    // The session's row leaves the list of sessions with it.
    if let Some(login_id) = session.login().await?.and_then(|login| login.login_id) {
        crate::domain::sessions::close(&state.db, &login_id, state.booking.clock.now()).await?;
    }
    session.log_out().await?;
    if let Some(id) = user_id {
        audit(state, Some(id), "logout", &id.to_string(), ip).await;
    }
    Ok(Redirect::to("/login").into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/auth/register.html")]
struct RegisterPage {
    layout: Layout,
    form: RegisterForm,
    errors: FieldErrors,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct RegisterForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    birth_date: String,
    consent_personal: Option<String>,
    consent_health: Option<String>,
    #[serde(default)]
    next: String,
}

impl RegisterForm {
    fn next_query(&self) -> String {
        next_query(&self.next)
    }
}

pub async fn show_register(
    session: AuthSession,
    MaybeUser(user): MaybeUser,
    Query(query): Query<NextQuery>,
) -> Result<Response, AppError> {
    if let Some(user) = user {
        return Ok(Redirect::to(user.role().home_path()).into_response());
    }
    let layout = Layout::with_form(&session, None).await?;
    let form = RegisterForm {
        next: safe_next(&query.next).unwrap_or_default().to_owned(),
        ..RegisterForm::default()
    };
    Ok(RegisterPage {
        layout,
        form,
        errors: FieldErrors::new(),
        error: None,
    }
    .into_response())
}

/// A registration waiting for its code; the password is hashed already.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingRegistration {
    email: String,
    password_hash: String,
    full_name: String,
    /// E.164.
    pub phone: String,
    birth_date: chrono::NaiveDate,
    consent: (bool, bool),
    next: String,
}

/// The registration a form asks for, or the refusals by field.
fn validate(
    form: &RegisterForm,
    today: chrono::NaiveDate,
) -> Result<(Email, NewPassword, FullName, Phone, BirthDate, ConsentGiven), FieldErrors> {
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(&form.email));
    let password = errors.check("password", NewPassword::parse(&form.password));
    let full_name = errors.check("full_name", FullName::parse(&form.full_name));
    let phone = errors.check("phone", Phone::parse(&form.phone));
    let birth_date = errors.check("birth_date", BirthDate::parse(&form.birth_date, today));
    let consent = errors.check(
        "consent",
        crate::web::ticked_consent(form.consent_personal.as_ref(), form.consent_health.as_ref()),
    );
    errors.or_value(|| Some((email?, password?, full_name?, phone?, birth_date?, consent?)))
}

/// `POST /register`: throttled per address; a valid form costs one hash and sends the code.
/// Whether the e-mail is taken is not said here (nor after the code).
pub async fn register(
    State(state): State<AppState>,
    session: AuthSession,
    ClientIp(ip): ClientIp,
    Form(mut form): Form<RegisterForm>,
) -> Result<Response, AppError> {
    form.next = safe_next(&form.next).unwrap_or_default().to_owned();
    if let Err(retry_after_secs) = profile::count_registration(
        &state.redis,
        ip,
        state.config.registration_limit_per_ip_hour,
    )
    .await?
    {
        let e = AppError::RateLimited { retry_after_secs };
        return registration_refused(&session, form, FieldErrors::new(), Some(e)).await;
    }
    let (email, password, full_name, phone, birth_date, consent) =
        match validate(&form, Utc::now().date_naive()) {
            Ok(valid) => valid,
            Err(errors) => return registration_refused(&session, form, errors, None).await,
        };
    let password_hash = state
        .passwords
        .hash(password.expose().to_owned())
        .await
        .map_err(AppError::from)?;
    let pending = PendingRegistration {
        email: email.as_str().to_owned(),
        password_hash,
        full_name: full_name.to_string(),
        phone: phone.as_str().to_owned(),
        birth_date: birth_date.date(),
        consent: (consent.personal_data, consent.health_data),
        next: form.next.clone(),
    };
    match verify::begin(
        &state,
        &session,
        PendingAction::Registration(pending),
        ip,
        None,
    )
    .await?
    {
        Ok(next) => Ok(next),
        Err(e) => registration_refused(&session, form, FieldErrors::new(), Some(e)).await,
    }
}

/// The right code came: the account is made (or, for a taken e-mail, its owner is told),
/// and either way the visitor is asked to log in, with the slot they chose still in `next`.
pub async fn complete_registration(
    app: &App,
    pending: PendingRegistration,
    token: &str,
    ip: std::net::IpAddr,
) -> Result<Response, AppError> {
    let stored = |e: crate::domain::values::Invalid| AppError::Internal(anyhow::anyhow!(e.0));
    let registration = Registration {
        email: Email::parse(&pending.email).map_err(stored)?,
        password_hash: pending.password_hash,
        full_name: FullName::parse(&pending.full_name).map_err(stored)?,
        phone: Phone::from_stored(pending.phone),
        birth_date: BirthDate::from_stored(pending.birth_date),
        consent: ConsentGiven {
            personal_data: pending.consent.0,
            health_data: pending.consent.1,
        },
    };
    profile::register(&app.db, &app.booking.phones, registration, token, ip).await?;
    let mut target = "/login?registered=1".to_owned();
    if !pending.next.is_empty() {
        target.push('&');
        target.push_str(&next_query(&pending.next));
    }
    Ok(Redirect::to(&target).into_response())
}

async fn registration_refused(
    session: &AuthSession,
    mut form: RegisterForm,
    errors: FieldErrors,
    error: Option<AppError>,
) -> Result<Response, AppError> {
    form.password.clear();
    let status = error
        .as_ref()
        .map_or(StatusCode::UNPROCESSABLE_ENTITY, AppError::status);
    let page = RegisterPage {
        layout: Layout::with_form(session, None).await?,
        form,
        errors,
        error: error.as_ref().map(AppError::public_message),
    };
    let mut response = (status, page).into_response();
    if let Some(error) = &error {
        crate::web::keep_retry_after(&mut response, error);
    }
    Ok(response)
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/auth/forgot.html")]
struct ForgotPage {
    layout: Layout,
    email: String,
    error: Option<String>,
}

pub async fn show_forgot(session: AuthSession) -> Result<Response, AppError> {
    Ok(ForgotPage {
        layout: Layout::with_form(&session, None).await?,
        email: String::new(),
        error: None,
    }
    .into_response())
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// `POST /password/forgot`: a code to the account's proven phone, or a decoy; the next
/// page is the same for both.
pub async fn start_reset(
    State(state): State<AppState>,
    session: AuthSession,
    ClientIp(ip): ClientIp,
    Form(form): Form<ForgotForm>,
) -> Result<Response, AppError> {
    let refuse = async |status: StatusCode, error: String, email: String| {
        let page = ForgotPage {
            layout: Layout::with_form(&session, None).await?,
            email,
            error: Some(error),
        };
        Ok::<_, AppError>((status, page).into_response())
    };
    let email = match Email::parse(&form.email) {
        Ok(email) => email,
        Err(e) => {
            return refuse(StatusCode::UNPROCESSABLE_ENTITY, e.0.to_owned(), form.email).await;
        }
    };
    let action = PendingAction::PasswordReset {
        email: email.as_str().to_owned(),
    };
    match verify::begin(&state, &session, action, ip, None).await? {
        Ok(next) => Ok(next),
        Err(e) => {
            let mut response = refuse(e.status(), e.public_message(), form.email).await?;
            crate::web::keep_retry_after(&mut response, &e);
            Ok(response)
        }
    }
}

const RESET_PROOF_KEY: &str = "reset_proof";

/// The right reset code came: the new-password form, holding the proof in the session.
pub async fn reset_ready(session: &AuthSession, token: &str) -> Result<Response, AppError> {
    session.0.insert(RESET_PROOF_KEY, token).await?;
    Ok(Redirect::to("/password/reset").into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/auth/reset.html")]
struct ResetPage {
    layout: Layout,
    error: Option<String>,
}

pub async fn show_reset(session: AuthSession) -> Result<Response, AppError> {
    if session.0.get::<String>(RESET_PROOF_KEY).await?.is_none() {
        return Ok(Redirect::to("/password/forgot").into_response());
    }
    Ok(ResetPage {
        layout: Layout::with_form(&session, None).await?,
        error: None,
    }
    .into_response())
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    password: String,
}

/// `POST /password/reset`: the new password; every session and token of the account ends.
pub async fn reset_password(
    State(state): State<AppState>,
    session: AuthSession,
    ClientIp(ip): ClientIp,
    Form(form): Form<ResetForm>,
) -> Result<Response, AppError> {
    let Some(token) = session.0.get::<String>(RESET_PROOF_KEY).await? else {
        return Ok(Redirect::to("/password/forgot").into_response());
    };
    let password = match NewPassword::parse(&form.password) {
        Ok(password) => password,
        Err(e) => {
            let page = ResetPage {
                layout: Layout::with_form(&session, None).await?,
                error: Some(e.0.to_owned()),
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let reset = profile::reset_password(
        &state.db,
        &state.passwords,
        &state.booking.phones,
        &token,
        password,
        ip,
    )
    .await;
    session.0.remove::<String>(RESET_PROOF_KEY).await?;
    match reset {
        Ok(_) => Ok(Redirect::to("/login?reset=1").into_response()),
        Err(ProfileError::Verify(_)) => Ok(Redirect::to("/password/forgot").into_response()),
        Err(e) => Err(e.into()),
    }
}
