//! Login, logout and patient self-registration pages.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use chrono::Utc;
use serde::Deserialize;

use crate::{
    app::AppState,
    auth::{
        login::{LoginOutcome, audit, authenticate},
        roles::MaybeUser,
        session::AuthSession,
    },
    client_ip::ClientIp,
    domain::{
        accounts::{self, AccountError, NewAccount, NewPassword, Origin},
        values::{BirthDate, Email, FieldErrors, FullName, Invalid, Phone, Role},
    },
    error::AppError,
    extract::{Form, Query},
    web::{Layout, safe_next},
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
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
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
    Ok(LoginPage {
        layout,
        next,
        email: String::new(),
        error: None,
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
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let next = safe_next(&form.next).unwrap_or_default().to_owned();
    let (status, retry_after, error) =
        match authenticate(&state, &form.email, &form.password, ip).await? {
            LoginOutcome::LoggedIn(user) => {
                session.log_in(&user).await?;
                let target = if next.is_empty() {
                    user.role().home_path().to_owned()
                } else {
                    next
                };
                return Ok(Redirect::to(&target).into_response());
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
        next,
        email: String::new(),
        error: Some(error),
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

/// `GET /logout` ends the session when the browser says the request came from this site or
/// was typed in; a cross-site link only gets a confirmation form, so another site cannot
/// log a patient out.
pub async fn show_logout(
    State(state): State<AppState>,
    session: AuthSession,
    ClientIp(ip): ClientIp,
    MaybeUser(user): MaybeUser,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site" || v == "same-site");
    if cross_site && user.is_some() {
        return Ok(LogoutPage {
            layout: Layout::with_form(&session, user.as_ref()).await?,
        }
        .into_response());
    }
    end_session(&state, &session, user.map(|u| u.id), ip).await
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
    consent: Option<String>,
}

pub async fn show_register(
    session: AuthSession,
    MaybeUser(user): MaybeUser,
) -> Result<Response, AppError> {
    if let Some(user) = user {
        return Ok(Redirect::to(user.role().home_path()).into_response());
    }
    let layout = Layout::with_form(&session, None).await?;
    Ok(RegisterPage {
        layout,
        form: RegisterForm::default(),
        errors: FieldErrors::new(),
    }
    .into_response())
}

/// The account a registration form asks for, or the refusals by field.
fn validate(form: &RegisterForm, today: chrono::NaiveDate) -> Result<NewAccount, FieldErrors> {
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(&form.email));
    let password = errors.check("password", NewPassword::parse(&form.password));
    let full_name = errors.check("full_name", FullName::parse(&form.full_name));
    let phone = errors.check("phone", Phone::parse(&form.phone));
    let birth_date = errors.check("birth_date", BirthDate::parse(&form.birth_date, today));
    if form.consent.is_none() {
        errors.add(
            "consent",
            Invalid("Без согласия на обработку персональных данных регистрация невозможна"),
        );
    }
    errors.or_value(|| {
        Some(NewAccount {
            email: email?,
            full_name: full_name?,
            phone: Some(phone?),
            birth_date: Some(birth_date?),
            role: Role::Patient,
            password: password?,
        })
    })
}

pub async fn register(
    State(state): State<AppState>,
    session: AuthSession,
    ClientIp(ip): ClientIp,
    Form(form): Form<RegisterForm>,
) -> Result<Response, AppError> {
    let account = match validate(&form, Utc::now().date_naive()) {
        Ok(account) => account,
        Err(errors) => return registration_refused(&session, form, errors).await,
    };
    let created = accounts::create(
        &state.db,
        &state.passwords,
        account,
        Origin::Registration(ip),
    )
    .await;
    let user = match created {
        Ok(user) => user,
        Err(AccountError::EmailTaken) => {
            let errors = FieldErrors::one(
                "email",
                Invalid("Этот адрес уже зарегистрирован. Войдите в личный кабинет."),
            );
            return registration_refused(&session, form, errors).await;
        }
        Err(e) => return Err(e.into()),
    };
    session.log_in(&user).await?;
    Ok(Redirect::to(Role::Patient.home_path()).into_response())
}

async fn registration_refused(
    session: &AuthSession,
    mut form: RegisterForm,
    errors: FieldErrors,
) -> Result<Response, AppError> {
    form.password.clear();
    let page = RegisterPage {
        layout: Layout::with_form(session, None).await?,
        form,
        errors,
    };
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}
