//! Login, logout and patient self-registration pages.

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use chrono::{Datelike, NaiveDate, Utc};
use serde::Deserialize;

use crate::{
    app::AppState,
    auth::{
        login::{LoginOutcome, audit, authenticate},
        password,
        roles::MaybeUser,
        session::AuthSession,
    },
    client_ip::ClientIp,
    db::models::user::{self, NewUser, Role},
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
    errors: BTreeMap<&'static str, String>,
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
        errors: BTreeMap::new(),
    }
    .into_response())
}

/// A registration that passed validation.
struct ValidRegistration {
    email: String,
    full_name: String,
    phone: String,
    birth_date: NaiveDate,
}

fn validate(form: &RegisterForm) -> Result<ValidRegistration, BTreeMap<&'static str, String>> {
    let mut errors = BTreeMap::new();
    let email = user::normalize_email(&form.email);
    if email.is_empty() {
        errors.insert("email", "Укажите электронную почту".into());
    } else if email.len() > 254 || !email_address::EmailAddress::is_valid(&email) {
        errors.insert("email", "Некорректный адрес электронной почты".into());
    }
    if let Err(message) = password::check_new(&form.password) {
        errors.insert("password", message.into());
    }
    let full_name = form
        .full_name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if full_name.chars().count() < 2 {
        errors.insert("full_name", "Укажите фамилию, имя и отчество".into());
    } else if full_name.chars().count() > 200 || full_name.chars().any(char::is_control) {
        errors.insert(
            "full_name",
            "Имя должно быть не длиннее 200 символов".into(),
        );
    }
    let phone = normalize_phone(&form.phone);
    if phone.is_none() {
        errors.insert("phone", "Некорректный номер телефона".into());
    }
    let birth_date = parse_birth_date(&form.birth_date);
    if birth_date.is_none() {
        errors.insert(
            "birth_date",
            "Укажите дату рождения в формате ГГГГ-ММ-ДД (не в будущем)".into(),
        );
    }
    if form.consent.is_none() {
        errors.insert(
            "consent",
            "Без согласия на обработку персональных данных регистрация невозможна".into(),
        );
    }
    match (phone, birth_date) {
        (Some(phone), Some(birth_date)) if errors.is_empty() => Ok(ValidRegistration {
            email,
            full_name,
            phone,
            birth_date,
        }),
        _ => Err(errors),
    }
}

/// A phone number in E.164, read as Russian when it has no country code.
pub fn normalize_phone(input: &str) -> Option<String> {
    let input = input.trim();
    if input.is_empty() || input.len() > 32 {
        return None;
    }
    let number = phonenumber::parse(Some(phonenumber::country::Id::RU), input).ok()?;
    phonenumber::is_valid(&number)
        .then(|| number.format().mode(phonenumber::Mode::E164).to_string())
}

fn parse_birth_date(input: &str) -> Option<NaiveDate> {
    let input = input.trim();
    let date = NaiveDate::parse_from_str(input, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(input, "%d.%m.%Y"))
        .ok()?;
    let today = Utc::now().date_naive();
    (date <= today && date.year() >= 1900).then_some(date)
}

pub async fn register(
    State(state): State<AppState>,
    session: AuthSession,
    ClientIp(ip): ClientIp,
    Form(form): Form<RegisterForm>,
) -> Result<Response, AppError> {
    let valid = match validate(&form) {
        Ok(valid) => valid,
        Err(errors) => return registration_refused(&session, form, errors).await,
    };
    let hash = state.passwords.hash(form.password.clone()).await?;
    let mut conn = state.db().await?;
    let new_user = NewUser {
        email: &valid.email,
        password_hash: &hash,
        full_name: &valid.full_name,
        phone: Some(&valid.phone),
        birth_date: Some(valid.birth_date),
        role: Role::Patient.as_str(),
    };
    let user = match user::insert(&mut conn, &new_user).await {
        Ok(user) => user,
        Err(e) if user::is_duplicate_email(&e) => {
            let errors = BTreeMap::from([(
                "email",
                "Этот адрес уже зарегистрирован. Войдите в личный кабинет.".to_owned(),
            )]);
            return registration_refused(&session, form, errors).await;
        }
        Err(e) => return Err(e.into()),
    };
    drop(conn);
    audit(
        &state,
        Some(user.id),
        "registered",
        &user.id.to_string(),
        ip,
    )
    .await;
    session.log_in(&user).await?;
    Ok(Redirect::to(Role::Patient.home_path()).into_response())
}

async fn registration_refused(
    session: &AuthSession,
    mut form: RegisterForm,
    errors: BTreeMap<&'static str, String>,
) -> Result<Response, AppError> {
    form.password.clear();
    let page = RegisterPage {
        layout: Layout::with_form(session, None).await?,
        form,
        errors,
    };
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_normalised_to_e164() {
        assert_eq!(
            normalize_phone("8 (912) 345-67-89").as_deref(),
            Some("+79123456789")
        );
        assert_eq!(
            normalize_phone("+7 912 345 67 89").as_deref(),
            Some("+79123456789")
        );
        assert_eq!(normalize_phone("abc"), None);
        assert_eq!(normalize_phone(&"9".repeat(1000)), None);
    }

    #[test]
    fn birth_dates_in_the_future_are_refused() {
        assert!(parse_birth_date("1990-05-17").is_some());
        assert!(parse_birth_date("17.05.1990").is_some());
        assert!(parse_birth_date("2999-01-01").is_none());
        assert!(parse_birth_date("yesterday").is_none());
    }
}
