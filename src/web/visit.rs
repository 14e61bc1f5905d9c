//! A visit booked without an account, managed through the link in its SMS (`/v/<token>`):
//! see it, cancel it (after a question, with an optional reason), or move it to another free
//! time of the same doctor and branch, a week at a time. The link is the only key (128
//! random bits, stored hashed) and dies when the visit starts.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use chrono::NaiveDate;
use serde::Deserialize;

// The base layout names roles.
use crate::db::models::user::Role;
use crate::{
    app::{App, AppState},
    auth::session::AuthSession,
    client_ip::ClientIp,
    db::models::record::RecordView,
    domain::{booking::BookingError, values::CancelReason},
    error::AppError,
    extract::{Form, Query},
    params,
    web::{
        Layout,
        my_record::{CancelForm, CancelPage, book_again_href, move_week},
        summary::VisitSummary,
        week::{Week, WeekReader},
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "pages/visit/show.html")]
struct VisitPage {
    layout: Layout,
    token: String,
    view: RecordView,
    summary: VisitSummary,
    status: &'static str,
    changeable: bool,
    booked: bool,
    notice: Option<String>,
    error: Option<String>,
    /// Free times to move to; `None` when the doctor no longer works in the branch.
    week: Option<Week>,
    /// The doctor page in the visit's branch: «Записаться снова».
    again_href: String,
}

#[derive(Deserialize, Default)]
pub struct VisitQuery {
    #[serde(default)]
    booked: String,
    #[serde(default)]
    done: String,
    /// A day of the week of free times to move to; `date` is the same (older links).
    #[serde(default)]
    week: String,
    #[serde(default)]
    date: String,
}

/// The link is dead, or never was: one answer for both.
fn link_dead(e: BookingError) -> AppError {
    match e {
        BookingError::RecordNotFound => AppError::NotFound,
        other => other.into(),
    }
}

async fn visit_page(
    app: &App,
    (session, ip): (&AuthSession, std::net::IpAddr),
    token: &str,
    view: RecordView,
    wanted: Option<NaiveDate>,
    (notice, error): (Option<String>, Option<String>),
    booked: bool,
) -> Result<VisitPage, AppError> {
    let now = app.booking.clock.now();
    let changeable = view.record.is_changeable_at(now);
    let week = if changeable {
        let wanted = wanted.or_else(|| Some(view.local_start().date_naive()));
        let page = format!("/v/{token}?");
        move_week(app, &view, wanted, WeekReader::Patient(ip), &page).await?
    } else {
        None
    };
    Ok(VisitPage {
        layout: Layout::with_form(session, None).await?,
        token: token.to_owned(),
        summary: VisitSummary::of_record(app, &view).await?,
        status: view.record.status.title(),
        changeable,
        booked,
        notice,
        error,
        week,
        again_href: book_again_href(&view),
        view,
    })
}

pub async fn show_visit(
    State(state): State<AppState>,
    session: AuthSession,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
    Query(query): Query<VisitQuery>,
) -> Result<Response, AppError> {
    let view = state
        .booking
        .visit_by_link(&token)
        .await
        .map_err(link_dead)?;
    let week = params::field("week", params::optional_date(query.week.trim()))?;
    let date = params::field("date", params::optional_date(query.date.trim()))?;
    let notice = match query.done.as_str() {
        "cancelled" => Some("Запись отменена. Время освобождено.".to_owned()),
        "moved" => Some("Запись перенесена. Мы отправили SMS с новым временем.".to_owned()),
        _ => None,
    };
    let booked = query.booked == "1";
    let page = visit_page(
        &state,
        (&session, ip),
        &token,
        view,
        week.or(date),
        (notice, None),
        booked,
    )
    .await?;
    Ok(page.into_response())
}

/// `GET /v/{token}/cancel`: the question, with an optional reason; nothing is cancelled
/// here.
pub async fn show_cancel_visit(
    State(state): State<AppState>,
    session: AuthSession,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    let view = state
        .booking
        .visit_by_link(&token)
        .await
        .map_err(link_dead)?;
    if !view.record.is_changeable_at(state.booking.clock.now()) {
        return Ok(Redirect::to(&format!("/v/{token}")).into_response());
    }
    Ok(
        cancel_page(&state, &session, &token, &view, String::new(), None)
            .await?
            .into_response(),
    )
}

async fn cancel_page(
    app: &App,
    session: &AuthSession,
    token: &str,
    view: &RecordView,
    reason: String,
    error: Option<String>,
) -> Result<CancelPage, AppError> {
    Ok(CancelPage {
        layout: Layout::with_form(session, None).await?,
        summary: VisitSummary::of_record(app, view).await?,
        action: format!("/v/{token}/cancel"),
        back: format!("/v/{token}"),
        reason,
        error,
    })
}

/// `POST /v/{token}/cancel`: cancels, with the reason if one was given.
pub async fn cancel_visit(
    State(state): State<AppState>,
    session: AuthSession,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
    Form(form): Form<CancelForm>,
) -> Result<Response, AppError> {
    let reason = match CancelReason::parse(&form.reason) {
        Ok(reason) => reason,
        Err(invalid) => {
            let view = state
                .booking
                .visit_by_link(&token)
                .await
                .map_err(link_dead)?;
            let page = cancel_page(
                &state,
                &session,
                &token,
                &view,
                form.reason,
                Some(invalid.0.to_owned()),
            )
            .await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    match state
        .booking
        .cancel_by_link(&token, reason.as_ref(), ip)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/v/{token}?done=cancelled")).into_response()),
        Err(e) => refused(&state, (&session, ip), &token, e, None).await,
    }
}

#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    start: String,
}

pub async fn move_visit(
    State(state): State<AppState>,
    session: AuthSession,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
    Form(form): Form<MoveForm>,
) -> Result<Response, AppError> {
    let start = match params::instant(&form.start) {
        Ok(start) => start,
        Err(_) => {
            let e = BookingError::NotASlot;
            return refused(&state, (&session, ip), &token, e, None).await;
        }
    };
    match state.booking.reschedule_by_link(&token, start, ip).await {
        Ok(_) => Ok(Redirect::to(&format!("/v/{token}?done=moved")).into_response()),
        Err(e) => refused(&state, (&session, ip), &token, e, Some(start)).await,
    }
}

/// A change that did not happen: the visit's page again with the reason.
async fn refused(
    app: &App,
    (session, ip): (&AuthSession, std::net::IpAddr),
    token: &str,
    e: BookingError,
    tried: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Response, AppError> {
    let e = link_dead(e);
    if matches!(
        e,
        AppError::NotFound | AppError::Unavailable { .. } | AppError::Busy | AppError::Internal(_)
    ) {
        return Err(e);
    }
    let view = app.booking.visit_by_link(token).await.map_err(link_dead)?;
    let wanted = tried.map(|t| view.branch_zone.local(&t).date_naive());
    let status = e.status();
    let page = visit_page(
        app,
        (session, ip),
        token,
        view,
        wanted,
        (None, Some(e.public_message())),
        false,
    )
    .await?;
    Ok((status, page).into_response())
}
