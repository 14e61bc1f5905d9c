//! The patient's own account on the pages: change the password (the current one first;
//! every other session ends unless the patient unticks «Завершить остальные сеансы»), the
//! name and e-mail (the password first), and the phone (a code to the new number).

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

// The base layout names roles.
use crate::db::models::user::Role;
use crate::{
    app::{App, AppState},
    auth::{roles::CurrentUser, session::AuthSession},
    client_ip::ClientIp,
    db::models::user::User,
    domain::{
        accounts::NewPassword,
        phones::VerifyError,
        profile::{self, ProfileError},
        values::{Email, FieldErrors, FullName, Invalid, Phone},
    },
    error::AppError,
    extract::{Form, Query},
    web::{
        Layout,
        verify::{self, PendingAction},
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "pages/cabinet/profile.html")]
struct ProfilePage {
    layout: Layout,
    user: User,
    phone_verified: bool,
    notice: Option<&'static str>,
    /// Which form the errors belong to: `password`, `details` or `phone`.
    section: &'static str,
    errors: FieldErrors,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    #[serde(default)]
    done: String,
}

async fn page(
    session: &AuthSession,
    user: User,
    notice: Option<&'static str>,
    (section, errors, error): (&'static str, FieldErrors, Option<String>),
) -> Result<ProfilePage, AppError> {
    Ok(ProfilePage {
        layout: Layout::with_form(session, Some(&user)).await?,
        phone_verified: user.phone_verified_at.is_some(),
        user,
        notice,
        section,
        errors,
        error,
    })
}

pub async fn show_profile(
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    Query(query): Query<DoneQuery>,
) -> Result<Response, AppError> {
    let notice = match query.done.as_str() {
        "password" => Some("Пароль изменён. Входы на других устройствах завершены."),
        "password_kept" => Some("Пароль изменён. Остальные сеансы продолжаются."),
        "details" => Some("Данные сохранены."),
        "phone" => Some(
            "Телефон подтверждён. Записи, сделанные без кабинета на этот номер, теперь в вашем кабинете.",
        ),
        _ => None,
    };
    let page = page(&session, user, notice, ("", FieldErrors::new(), None)).await?;
    Ok(page.into_response())
}

async fn refused(
    session: &AuthSession,
    user: User,
    section: &'static str,
    e: ProfileError,
) -> Result<Response, AppError> {
    let (status, errors, error) = match e {
        ProfileError::WrongPassword => (
            StatusCode::UNPROCESSABLE_ENTITY,
            FieldErrors::one("current_password", Invalid("Неверный текущий пароль")),
            None,
        ),
        other => {
            let e = AppError::from(other);
            match e {
                AppError::Validation { fields, .. } => {
                    let mut errors = FieldErrors::new();
                    for (field, message) in fields {
                        errors.add_message(&field, message);
                    }
                    (StatusCode::UNPROCESSABLE_ENTITY, errors, None)
                }
                AppError::RateLimited { .. } => {
                    (e.status(), FieldErrors::new(), Some(e.public_message()))
                }
                other => return Err(other),
            }
        }
    };
    let page = page(session, user, None, (section, errors, error)).await?;
    Ok((status, page).into_response())
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    /// «Завершить остальные сеансы», ticked by default; an unticked box sends nothing.
    end_others: Option<String>,
}

/// A new password ends every other session and token of the account when the box is ticked
/// (the default); this session is renewed either way (a new id), so the patient stays in.
pub async fn change_password(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    let new = match NewPassword::parse(&form.new_password) {
        Ok(new) => new,
        Err(e) => {
            let errors = FieldErrors::one("new_password", e);
            let page = page(&session, user, None, ("password", errors, None)).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let end_others = form.end_others.is_some();
    match profile::change_password(
        &state.db,
        &state.passwords,
        &user,
        &form.current_password,
        (new, end_others),
        ip,
    )
    .await
    {
        Ok(updated) => {
            session.renew(&state, &updated).await?;
            let done = if end_others {
                "password"
            } else {
                "password_kept"
            };
            Ok(Redirect::to(&format!("/cabinet/profile?done={done}")).into_response())
        }
        Err(e) => refused(&session, user, "password", e).await,
    }
}

#[derive(Deserialize)]
pub struct DetailsForm {
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    current_password: String,
}

pub async fn change_details(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    Form(form): Form<DetailsForm>,
) -> Result<Response, AppError> {
    let mut errors = FieldErrors::new();
    let name = errors.check("full_name", FullName::parse(&form.full_name));
    let email = errors.check("email", Email::parse(&form.email));
    let (Some(name), Some(email)) = (name, email) else {
        let page = page(&session, user, None, ("details", errors, None)).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    match profile::update_profile(
        &state.db,
        &state.passwords,
        &user,
        &form.current_password,
        (name, email),
        ip,
    )
    .await
    {
        Ok(()) => Ok(Redirect::to("/cabinet/profile?done=details").into_response()),
        Err(e) => refused(&session, user, "details", e).await,
    }
}

#[derive(Deserialize)]
pub struct PhoneForm {
    #[serde(default)]
    phone: String,
}

pub async fn start_phone_change(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    Form(form): Form<PhoneForm>,
) -> Result<Response, AppError> {
    let phone = match Phone::parse(&form.phone) {
        Ok(phone) => phone,
        Err(e) => {
            let errors = FieldErrors::one("phone", e);
            let page = page(&session, user, None, ("phone", errors, None)).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let action = PendingAction::PhoneChange {
        phone: phone.as_str().to_owned(),
    };
    match verify::begin(&state, &session, action, ip, Some(user.id)).await? {
        Ok(next) => Ok(next),
        Err(e) => {
            let status = e.status();
            let page = page(
                &session,
                user,
                None,
                ("phone", FieldErrors::new(), Some(e.public_message())),
            )
            .await?;
            Ok((status, page).into_response())
        }
    }
}

/// The right code for the new phone came.
pub async fn complete_phone_change(
    app: &App,
    session: &AuthSession,
    user: Option<User>,
    token: &str,
    ip: std::net::IpAddr,
) -> Result<Response, AppError> {
    let Some(user) = user else {
        return Ok(Redirect::to("/login").into_response());
    };
    match profile::change_phone(&app.db, &app.booking.phones, &user, token, ip).await {
        Ok(_) => Ok(Redirect::to("/cabinet/profile?done=phone").into_response()),
        Err(ProfileError::Verify(VerifyError::Proof(_))) => {
            refused(
                session,
                user,
                "phone",
                ProfileError::Verify(VerifyError::Expired),
            )
            .await
        }
        Err(e) => refused(session, user, "phone", e).await,
    }
}
