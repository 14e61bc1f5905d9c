//! A patient deletes their own account (152-FZ art. 21): `GET /cabinet/delete` says what
//! happens and lists the visits that will be cancelled; `POST /cabinet/delete`, with the
//! password again, closes the account through `domain::retention`, logs this browser out and
//! shows what comes next. A wrong password changes nothing (422).

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;

// The base layout names roles.
use crate::db::models::user::Role;
use crate::{
    app::AppState,
    auth::{roles::CurrentUser, session::AuthSession},
    client_ip::ClientIp,
    db::models::{record::RecordView, user::User},
    domain::{
        booking::records::RecordQuery,
        retention::{self, DeletionError},
        values::{PageNo, RecordStatus},
    },
    error::AppError,
    extract::Form,
    web::{Layout, keep_retry_after},
};

#[derive(Template, WebTemplate)]
#[template(path = "pages/cabinet/delete.html")]
struct DeletePage {
    layout: Layout,
    /// "30 дней": how long the clinic may restore the account.
    grace: String,
    upcoming: Vec<RecordView>,
    password_error: Option<&'static str>,
    /// Why the account was not closed (the MIS did not cancel a visit, say).
    error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/cabinet/deleted.html")]
struct DeletedPage {
    layout: Layout,
    /// How many visits were cancelled, said in a sentence; `None` when none were.
    cancelled_note: Option<String>,
    /// The day (Moscow time) after which the personal data is erased.
    erase_after: String,
}

/// "1 день", "3 дня", "30 дней".
fn days_phrase(n: u32) -> String {
    let word = match (n % 10, n % 100) {
        (1, m) if m != 11 => "день",
        (2..=4, m) if !(12..=14).contains(&m) => "дня",
        _ => "дней",
    };
    format!("{n} {word}")
}

async fn page(
    state: &AppState,
    session: &AuthSession,
    user: &User,
    (password_error, error): (Option<&'static str>, Option<String>),
) -> Result<DeletePage, AppError> {
    let query = RecordQuery {
        status: Some(RecordStatus::Booked),
        upcoming: true,
        per_page: Some(100),
        ..RecordQuery::default()
    };
    let upcoming = state
        .booking
        .list_records(user, &query, PageNo::FIRST)
        .await?;
    Ok(DeletePage {
        layout: Layout::with_form(session, Some(user)).await?,
        grace: days_phrase(state.config.account_deletion_grace_days),
        upcoming: upcoming.items,
        password_error,
        error,
    })
}

pub async fn show_delete_account(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
) -> Result<Response, AppError> {
    let page = page(&state, &session, &user, (None, None)).await?;
    Ok(page.into_response())
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    password: String,
}

pub async fn request_account_deletion(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    Form(form): Form<DeleteForm>,
) -> Result<Response, AppError> {
    let grace = state.config.retention_policy().deletion_grace();
    let requested = retention::request_deletion(
        &state.booking,
        &state.passwords,
        grace,
        &user,
        &form.password,
        ip,
    )
    .await;
    match requested {
        Ok(done) => {
            // Every other session ended with the account's `session_version`; this one is
            // ended here, so the answer below is already a logged-out page.
            session.log_out().await?;
            let cancelled_note = (done.visits_cancelled > 0).then(|| {
                format!(
                    "Отменено предстоящих визитов: {}. Об отмене каждого придёт СМС.",
                    done.visits_cancelled
                )
            });
            Ok(DeletedPage {
                layout: Layout::anonymous(),
                cancelled_note,
                erase_after: done
                    .erase_after
                    .with_timezone(&chrono_tz::Europe::Moscow)
                    .format("%d.%m.%Y")
                    .to_string(),
            }
            .into_response())
        }
        Err(DeletionError::WrongPassword) => {
            let page = page(&state, &session, &user, (Some("Неверный пароль"), None)).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => {
            let e = AppError::from(e);
            match e {
                // The MIS did not cancel a visit, or it changed meanwhile: the account stays
                // open, and the page says why and that nothing was closed.
                AppError::Unavailable { .. }
                | AppError::Conflict { .. }
                | AppError::RateLimited { .. }
                | AppError::Busy => {
                    let status = e.status();
                    let message = format!("Учётная запись не закрыта. {}", e.public_message());
                    let page = page(&state, &session, &user, (None, Some(message))).await?;
                    let mut response = (status, page).into_response();
                    response
                        .extensions_mut()
                        .insert(crate::web::errors::OwnPage);
                    keep_retry_after(&mut response, &e);
                    Ok(response)
                }
                other => Err(other),
            }
        }
    }
}
