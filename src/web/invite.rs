//! The invitee's side of an invitation (`/invite/<token>`): the page that asks for the first
//! password of an account an admin created, and its form, which sets it and logs the
//! employee in.
//!
//! The token in the path is the only key, so every dead link (unknown, used, replaced,
//! expired, or of a disabled account) gets the same 404 page, and the token is never
//! logged (`telemetry::loggable_path`). These pages send `Referrer-Policy: no-referrer`,
//! so the link does not travel on in a `Referer` header either.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

// The base layout names roles.
use crate::db::models::user::Role;
use crate::{
    app::AppState,
    auth::{roles, session::AuthSession},
    client_ip::ClientIp,
    db::models::user::{self, User},
    domain::{
        accounts::{AccountError, NewPassword},
        invitations,
        values::{FieldErrors, Invalid},
    },
    error::AppError,
    extract::Form,
    web::Layout,
};

#[derive(Template, WebTemplate)]
#[template(path = "pages/invite/accept.html")]
struct AcceptPage {
    layout: Layout,
    /// 32 hex digits, checked against the stored hash before this page is shown.
    token: String,
    email: String,
    full_name: String,
    errors: FieldErrors,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/invite/invalid.html")]
struct InvalidPage {
    layout: Layout,
}

/// Adds `Referrer-Policy: no-referrer` (the global header is `same-origin`, which would still
/// send the link to this site's own pages).
fn no_referrer(status: StatusCode, page: impl IntoResponse) -> Response {
    (status, [(header::REFERRER_POLICY, "no-referrer")], page).into_response()
}

/// The one answer for every dead link. No form on it, so no session is created for a probe.
fn link_dead() -> Response {
    no_referrer(
        StatusCode::NOT_FOUND,
        InvalidPage {
            layout: Layout::anonymous(),
        },
    )
}

async fn accept_page(
    session: &AuthSession,
    token: &str,
    account: &User,
    errors: FieldErrors,
) -> Result<AcceptPage, AppError> {
    Ok(AcceptPage {
        layout: Layout::with_form(session, None).await?,
        token: token.to_owned(),
        email: account.email.clone(),
        full_name: account.full_name.clone(),
        errors,
    })
}

/// `GET /invite/{token}`: the password form with the account's e-mail and name, or the dead
/// link's 404.
pub async fn show_invitation(
    State(state): State<AppState>,
    session: AuthSession,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    let now = state.booking.clock.now();
    let account = match invitations::find_open(&state.db, &token, now).await {
        Ok(account) => account,
        Err(AccountError::InvitationInvalid) => return Ok(link_dead()),
        Err(e) => return Err(e.into()),
    };
    let page = accept_page(&session, &token, &account, FieldErrors::new()).await?;
    Ok(no_referrer(StatusCode::OK, page))
}

#[derive(Deserialize)]
pub struct InvitationForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

/// The password the form asks for, or the refusals by field: the policy on `password`, a
/// mismatch on `password_confirm`.
fn validate(form: &InvitationForm) -> Result<NewPassword, FieldErrors> {
    let mut errors = FieldErrors::new();
    let password = errors.check("password", NewPassword::parse(&form.password));
    if password.is_some() && form.password != form.password_confirm {
        errors.add("password_confirm", Invalid("Пароли не совпадают"));
    }
    errors.or_value(|| password)
}

/// `POST /invite/{token}` (`password`, `password_confirm`): sets the password, spends the
/// link, logs the employee in (a new session id and CSRF token) and sends them to their
/// role's home; a refused password shows the form again with 422.
pub async fn accept_invitation(
    State(state): State<AppState>,
    session: AuthSession,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<InvitationForm>,
) -> Result<Response, AppError> {
    let now = state.booking.clock.now();
    // The link first: a dead one answers the same 404 whatever the form holds.
    let account = match invitations::find_open(&state.db, &token, now).await {
        Ok(account) => account,
        Err(AccountError::InvitationInvalid) => return Ok(link_dead()),
        Err(e) => return Err(e.into()),
    };
    let password = match validate(&form) {
        Ok(password) => password,
        Err(errors) => {
            let page = accept_page(&session, &token, &account, errors).await?;
            return Ok(no_referrer(StatusCode::UNPROCESSABLE_ENTITY, page));
        }
    };
    let accepted =
        invitations::accept(&state.db, &state.passwords, &token, password, ip, now).await;
    let account = match accepted {
        Ok(account) => account,
        // Used or revoked between the check above and now.
        Err(AccountError::InvitationInvalid) => return Ok(link_dead()),
        Err(e) => return Err(e.into()),
    };
    session
        .log_in(&state, &account, roles::user_agent(&headers), ip)
        .await?;
    let mut conn = state.db().await?;
    user::touch_last_login(&mut conn, account.id).await?;
    Ok(Redirect::to(account.role().home_path()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(password: &str, confirm: &str) -> InvitationForm {
        InvitationForm {
            password: password.into(),
            password_confirm: confirm.into(),
        }
    }

    #[test]
    fn the_password_must_meet_the_policy_and_be_typed_twice_alike() {
        assert!(validate(&form("front desk passphrase", "front desk passphrase")).is_ok());
        let weak = validate(&form("password1", "password1")).unwrap_err();
        assert!(weak.get("password").is_some());
        assert!(weak.get("password_confirm").is_none());
        let mismatch =
            validate(&form("front desk passphrase", "front desk passphrasf")).unwrap_err();
        assert!(mismatch.get("password").is_none());
        assert_eq!(
            mismatch.get("password_confirm"),
            Some("Пароли не совпадают")
        );
    }
}
