//! The code step every phone-proving flow of the pages shares: the flow (a booking without
//! an account, a registration, a password reset, a phone change) waits in the session
//! while the visitor types the code from the SMS; the right code carries it out.
//!
//! `GET /phone-code` shows the form, `POST /phone-code` checks the code, `POST
//! /phone-code/resend` sends a new one (no sooner than 60 s), `POST /phone-code/cancel`
//! drops the flow.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::{Deserialize, Serialize};

// The base layout names roles.
use crate::db::models::user::Role;
use crate::{
    app::{App, AppState},
    auth::{roles::MaybeUser, session::AuthSession},
    client_ip::ClientIp,
    domain::{
        phones::Started,
        values::{Email, Phone, VerificationPurpose},
    },
    error::AppError,
    extract::Form,
    web::Layout,
};

const PENDING_KEY: &str = "phone_pending";

/// A flow waiting for its code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub verification_id: String,
    /// Where the code went, masked, for the page ("+7916***4567"); empty for a reset.
    pub sent_to: String,
    pub action: PendingAction,
}

/// What the right code carries out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PendingAction {
    Booking(crate::web::anonymous::PendingBooking),
    Registration(crate::web::auth::PendingRegistration),
    /// A reset for the account with this e-mail (or none: the decoy looks the same).
    PasswordReset {
        email: String,
    },
    PhoneChange {
        phone: String,
    },
}

impl PendingAction {
    fn title(&self) -> &'static str {
        match self {
            PendingAction::Booking(_) => "Подтвердите запись кодом из SMS",
            PendingAction::Registration(_) => "Подтвердите телефон кодом из SMS",
            PendingAction::PasswordReset { .. } => "Введите код для восстановления пароля",
            PendingAction::PhoneChange { .. } => "Подтвердите новый номер кодом из SMS",
        }
    }
}

/// Sends a code for `action` and keeps it waiting in the session; then the code page.
pub async fn begin(
    app: &App,
    session: &AuthSession,
    action: PendingAction,
    ip: std::net::IpAddr,
    user_id: Option<i64>,
) -> Result<Result<Response, AppError>, AppError> {
    let started = match send_code(app, &action, ip, user_id).await {
        Ok(started) => started,
        Err(e) => return Ok(Err(e)),
    };
    let pending = Pending {
        verification_id: started.id,
        sent_to: sent_to(&action),
        action,
    };
    session.0.insert(PENDING_KEY, &pending).await?;
    Ok(Ok(Redirect::to("/phone-code").into_response()))
}

async fn send_code(
    app: &App,
    action: &PendingAction,
    ip: std::net::IpAddr,
    user_id: Option<i64>,
) -> Result<Started, AppError> {
    let phones = &app.booking.phones;
    let started = match action {
        PendingAction::Booking(b) => {
            phones
                .start(&stored_phone(&b.phone), VerificationPurpose::Booking, ip)
                .await
        }
        PendingAction::Registration(r) => {
            phones
                .start(
                    &stored_phone(&r.phone),
                    VerificationPurpose::Registration,
                    ip,
                )
                .await
        }
        PendingAction::PasswordReset { email } => match Email::parse(email) {
            Ok(email) => phones.start_reset(&email, ip).await,
            Err(_) => return Err(AppError::field("email", "Некорректный адрес")),
        },
        PendingAction::PhoneChange { phone } => match user_id {
            Some(user_id) => {
                phones
                    .start_for_account(
                        user_id,
                        &stored_phone(phone),
                        VerificationPurpose::PhoneChange,
                        ip,
                    )
                    .await
            }
            None => return Err(AppError::Unauthorized),
        },
    };
    Ok(started?)
}

fn stored_phone(phone: &str) -> Phone {
    Phone::from_stored(phone.to_owned())
}

fn sent_to(action: &PendingAction) -> String {
    match action {
        PendingAction::Booking(b) => stored_phone(&b.phone).masked(),
        PendingAction::Registration(r) => stored_phone(&r.phone).masked(),
        PendingAction::PhoneChange { phone } => stored_phone(phone).masked(),
        PendingAction::PasswordReset { .. } => String::new(),
    }
}

pub async fn pending(session: &AuthSession) -> Result<Option<Pending>, AppError> {
    Ok(session.0.get(PENDING_KEY).await?)
}

pub async fn clear(session: &AuthSession) -> Result<(), AppError> {
    session.0.remove::<Pending>(PENDING_KEY).await?;
    Ok(())
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/auth/phone_code.html")]
struct CodePage {
    layout: Layout,
    title: &'static str,
    sent_to: String,
    summary: Vec<(String, String)>,
    error: Option<String>,
    notice: Option<String>,
}

async fn code_page(
    session: &AuthSession,
    user: Option<&crate::db::models::user::User>,
    pending: &Pending,
    status: StatusCode,
    error: Option<String>,
    notice: Option<String>,
) -> Result<Response, AppError> {
    let summary = match &pending.action {
        PendingAction::Booking(b) => b.summary(),
        _ => Vec::new(),
    };
    let page = CodePage {
        layout: Layout::with_form(session, user).await?,
        title: pending.action.title(),
        sent_to: pending.sent_to.clone(),
        summary,
        error,
        notice,
    };
    Ok((status, page).into_response())
}

pub async fn show_code_form(
    session: AuthSession,
    MaybeUser(user): MaybeUser,
) -> Result<Response, AppError> {
    let Some(pending) = pending(&session).await? else {
        return Ok(Redirect::to("/").into_response());
    };
    code_page(
        &session,
        user.as_ref(),
        &pending,
        StatusCode::OK,
        None,
        None,
    )
    .await
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

pub async fn check_code(
    State(state): State<AppState>,
    session: AuthSession,
    MaybeUser(user): MaybeUser,
    ClientIp(ip): ClientIp,
    Form(form): Form<CodeForm>,
) -> Result<Response, AppError> {
    let Some(pending) = pending(&session).await? else {
        return Ok(Redirect::to("/").into_response());
    };
    let code: String = form.code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        let error = Some("Код — 6 цифр из SMS".to_owned());
        return code_page(
            &session,
            user.as_ref(),
            &pending,
            StatusCode::UNPROCESSABLE_ENTITY,
            error,
            None,
        )
        .await;
    }
    let proof = match state
        .booking
        .phones
        .confirm(&pending.verification_id, &code)
        .await
    {
        Ok(proof) => proof,
        Err(e) => {
            let e = AppError::from(e);
            return code_page(
                &session,
                user.as_ref(),
                &pending,
                e.status(),
                Some(e.public_message()),
                None,
            )
            .await;
        }
    };
    clear(&session).await?;
    match pending.action {
        PendingAction::Booking(booking) => {
            crate::web::anonymous::complete(&state, &session, booking, Some(&proof.token), ip).await
        }
        PendingAction::Registration(registration) => {
            crate::web::auth::complete_registration(&state, registration, &proof.token, ip).await
        }
        PendingAction::PasswordReset { .. } => {
            crate::web::auth::reset_ready(&session, &proof.token).await
        }
        PendingAction::PhoneChange { .. } => {
            crate::web::profile::complete_phone_change(&state, &session, user, &proof.token, ip)
                .await
        }
    }
}

pub async fn resend_code(
    State(state): State<AppState>,
    session: AuthSession,
    MaybeUser(user): MaybeUser,
    ClientIp(ip): ClientIp,
) -> Result<Response, AppError> {
    let Some(mut pending) = pending(&session).await? else {
        return Ok(Redirect::to("/").into_response());
    };
    let user_id = user.as_ref().map(|u| u.id);
    match send_code(&state, &pending.action, ip, user_id).await {
        Ok(started) => {
            pending.verification_id = started.id;
            session.0.insert(PENDING_KEY, &pending).await?;
            let notice = Some("Мы отправили новый код.".to_owned());
            code_page(
                &session,
                user.as_ref(),
                &pending,
                StatusCode::OK,
                None,
                notice,
            )
            .await
        }
        Err(e) => {
            let mut response = code_page(
                &session,
                user.as_ref(),
                &pending,
                e.status(),
                Some(resend_refusal(&e)),
                None,
            )
            .await?;
            crate::web::keep_retry_after(&mut response, &e);
            Ok(response)
        }
    }
}

fn resend_refusal(e: &AppError) -> String {
    match e {
        AppError::RateLimited { retry_after_secs } if *retry_after_secs <= 60 => {
            format!("Новый код можно запросить через {retry_after_secs} с.")
        }
        other => other.public_message(),
    }
}

pub async fn cancel_code(session: AuthSession) -> Result<Response, AppError> {
    let back = match pending(&session).await? {
        Some(Pending {
            action: PendingAction::Booking(b),
            ..
        }) => b.doctor_path(),
        Some(Pending {
            action: PendingAction::PhoneChange { .. },
            ..
        }) => "/cabinet/profile".to_owned(),
        _ => "/".to_owned(),
    };
    clear(&session).await?;
    Ok(Redirect::to(&back).into_response())
}
