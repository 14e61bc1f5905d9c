//! A visit booked without an account, managed through the link in its SMS (`/v/<token>`):
//! see it, cancel it, or move it to another free time of the same doctor and branch. The
//! link is the only key (128 random bits, stored hashed) and dies when the visit starts.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use chrono::{Days, NaiveDate};
use serde::Deserialize;

// The base layout names roles.
use crate::db::models::user::Role;
use crate::{
    app::{App, AppState},
    auth::session::AuthSession,
    client_ip::ClientIp,
    db::models::record::RecordView,
    domain::booking::BookingError,
    error::AppError,
    extract::{Form, Query},
    params,
    web::{Layout, labels::weekday_date},
};

/// A free time to move to.
pub struct FreeSlot {
    pub label: String,
    pub start: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/visit/show.html")]
struct VisitPage {
    layout: Layout,
    token: String,
    view: RecordView,
    when: String,
    status: &'static str,
    changeable: bool,
    booked: bool,
    notice: Option<String>,
    error: Option<String>,
    date_title: String,
    prev_date: Option<NaiveDate>,
    next_date: NaiveDate,
    free: Vec<FreeSlot>,
}

#[derive(Deserialize, Default)]
pub struct VisitQuery {
    #[serde(default)]
    booked: String,
    #[serde(default)]
    done: String,
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
    session: &AuthSession,
    token: &str,
    view: RecordView,
    date: Option<NaiveDate>,
    (notice, error): (Option<String>, Option<String>),
    booked: bool,
) -> Result<VisitPage, AppError> {
    let now = app.booking.clock.now();
    let zone = view.branch_zone;
    let today = zone.today(now);
    let date = date
        .unwrap_or_else(|| view.local_start().date_naive())
        .max(today);
    let changeable = view.record.is_changeable_at(now);
    let free = if changeable {
        let target = app
            .booking
            .target(view.record.specialist_id, view.record.branch_id)
            .await?;
        match app
            .booking
            .schedule
            .window(&target.grid(), date, date)
            .await
        {
            Ok(window) => window
                .days
                .iter()
                .flat_map(|d| d.slots(zone.tz(), now))
                .filter(|s| s.free)
                .map(|s| FreeSlot {
                    label: s.start.format("%H:%M").to_string(),
                    start: s.start.to_rfc3339(),
                })
                .collect(),
            Err(_) => Vec::new(),
        }
    } else {
        Vec::new()
    };
    let local = view.local_start();
    Ok(VisitPage {
        layout: Layout::with_form(session, None).await?,
        token: token.to_owned(),
        when: format!(
            "{} {}",
            weekday_date(local.date_naive()),
            local.format("%H:%M")
        ),
        status: view.record.status.title(),
        changeable,
        booked,
        notice,
        error,
        date_title: weekday_date(date),
        prev_date: date.checked_sub_days(Days::new(1)).filter(|d| *d >= today),
        next_date: date.checked_add_days(Days::new(1)).unwrap_or(date),
        free,
        view,
    })
}

pub async fn show_visit(
    State(state): State<AppState>,
    session: AuthSession,
    Path(token): Path<String>,
    Query(query): Query<VisitQuery>,
) -> Result<Response, AppError> {
    let view = state
        .booking
        .visit_by_link(&token)
        .await
        .map_err(link_dead)?;
    let date = match query.date.trim() {
        "" => None,
        raw => Some(params::field("date", params::date(raw))?),
    };
    let notice = match query.done.as_str() {
        "cancelled" => Some("Запись отменена.".to_owned()),
        "moved" => Some("Запись перенесена. Мы отправили SMS с новым временем.".to_owned()),
        _ => None,
    };
    let booked = query.booked == "1";
    let page = visit_page(&state, &session, &token, view, date, (notice, None), booked).await?;
    Ok(page.into_response())
}

pub async fn cancel_visit(
    State(state): State<AppState>,
    session: AuthSession,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    match state.booking.cancel_by_link(&token, ip).await {
        Ok(_) => Ok(Redirect::to(&format!("/v/{token}?done=cancelled")).into_response()),
        Err(e) => refused(&state, &session, &token, e, None).await,
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
            return refused(&state, &session, &token, e, None).await;
        }
    };
    match state.booking.reschedule_by_link(&token, start, ip).await {
        Ok(_) => Ok(Redirect::to(&format!("/v/{token}?done=moved")).into_response()),
        Err(e) => refused(&state, &session, &token, e, Some(start)).await,
    }
}

/// A change that did not happen: the visit's page again with the reason.
async fn refused(
    app: &App,
    session: &AuthSession,
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
    let date = tried.map(|t| view.branch_zone.local(&t).date_naive());
    let status = e.status();
    let page = visit_page(
        app,
        session,
        token,
        view,
        date,
        (None, Some(e.public_message())),
        false,
    )
    .await?;
    Ok((status, page).into_response())
}
