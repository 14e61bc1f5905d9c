//! The slot picker of the doctor page: a week of a doctor in a branch, its free times as
//! links to the confirmation page, a week back and forth, and a jump to the nearest free
//! time. The week and the branch live in the doctor page's address: without JavaScript
//! every link is that page; with htmx the picker swaps in place and the address follows
//! (`hx-push-url`, and the `HX-Push-Url` answer header for the branch form and the jump),
//! so reload and Back show the same week.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, State},
    http::{HeaderName, HeaderValue},
    response::{IntoResponse, Response},
};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;

use crate::{
    app::{App, AppState},
    client_ip::ClientIp,
    db::models::directory::{self, Branch, Specialist},
    error::AppError,
    extract::{Query, path_id},
    params,
    web::{
        labels,
        week::{Week, WeekBounds, WeekReader, read_week, schedule_gap},
    },
};

/// The doctor page at a week of a branch, without the fragment (as history keeps it).
pub fn doctor_week_url(doctor_id: i64, branch_id: i64, week: NaiveDate) -> String {
    format!("/doctors/{doctor_id}?branch_id={branch_id}&week={week}")
}

/// A link of the picker: the doctor page (followed without JavaScript), the partial (htmx
/// swaps it in) and the address the browser's history gets.
pub struct PickerLink {
    pub page: String,
    pub partial: String,
    pub push: String,
}

impl PickerLink {
    fn week(doctor_id: i64, branch_id: i64, week: NaiveDate) -> Self {
        let push = doctor_week_url(doctor_id, branch_id, week);
        Self {
            page: format!("{push}#slots"),
            partial: format!("/doctors/{doctor_id}/slots?branch_id={branch_id}&week={week}"),
            push,
        }
    }

    fn nearest(doctor_id: i64, branch_id: i64) -> Self {
        let push = format!("/doctors/{doctor_id}?branch_id={branch_id}&nearest=1");
        Self {
            page: format!("{push}#slots"),
            partial: format!("/doctors/{doctor_id}/slots?branch_id={branch_id}&nearest=1"),
            push,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "partials/booking/slots.html")]
pub struct SlotsPartial {
    pub doctor_id: i64,
    pub branches: Vec<Branch>,
    pub branch_id: i64,
    pub week: Week,
    pub prev: Option<PickerLink>,
    pub next: Option<PickerLink>,
    pub nearest: PickerLink,
    /// Today's week, offered when another one is shown.
    pub this_week: Option<PickerLink>,
    /// The doctor page at the week shown: the address the browser keeps.
    pub page_url: String,
    /// What the jump to the nearest free time found, in words.
    pub found: Option<String>,
    /// The jump found a free time (and the week shown holds it).
    pub found_free: bool,
}

#[derive(Debug, Deserialize, Default)]
pub struct SlotsQuery {
    #[serde(default)]
    pub branch_id: String,
    /// A day of the week to show (any day of it); `date` is the same, as the doctor list
    /// links with it.
    #[serde(default)]
    pub week: String,
    #[serde(default)]
    pub date: String,
    /// Non-empty: show the week of the first free time from today.
    #[serde(default)]
    pub nearest: String,
}

/// The picker of a doctor; `None` when the doctor sees patients in no branch. The MIS
/// being down or the reader being limited is a message inside it.
pub async fn slots_partial(
    app: &App,
    doctor: &Specialist,
    query: &SlotsQuery,
    ip: std::net::IpAddr,
) -> Result<Option<SlotsPartial>, AppError> {
    let Some(first_branch) = doctor.branches.first() else {
        return Ok(None);
    };
    let branch_id = params::field("branch_id", params::optional_id(&query.branch_id))?
        .unwrap_or(first_branch.id);
    let branch = doctor
        .branches
        .iter()
        .find(|b| b.id == branch_id)
        .ok_or_else(|| AppError::field("branch_id", "Врач не принимает в этом филиале"))?;
    let week_day = params::field("week", params::optional_date(query.week.trim()))?;
    let date = params::field("date", params::optional_date(query.date.trim()))?;
    let mut wanted = week_day.or(date);
    // A read: the directory in memory answers (booking checks PostgreSQL again).
    let target = app.booking.read_target(doctor.row.id, branch.id).await?;
    let reader = WeekReader::Patient(ip);
    let bounds = WeekBounds::of(app, target.zone);
    let (mut found, mut found_free, mut marked, mut failed) = (None, false, None, None);
    if !query.nearest.trim().is_empty() {
        match app.booking.first_free_slot(&target, Some(ip)).await {
            Ok(Some(slot)) => {
                let start = slot.start.with_timezone(&Utc);
                wanted = Some(slot.start.date_naive());
                found = Some(format!(
                    "Ближайшее свободное время: {}.",
                    labels::visit_when_in(target.zone, start)
                ));
                found_free = true;
                marked = Some(slot.start.to_rfc3339());
            }
            Ok(None) => {
                wanted = None;
                found = Some(format!(
                    "До {} включительно свободного времени у врача в этом филиале нет.",
                    labels::day_and_month(bounds.last)
                ));
            }
            Err(e) => failed = Some(schedule_gap(e, reader)?),
        }
    }
    let mut week = match failed {
        // The jump could not read the schedule: the same read of a week would fail too.
        Some(message) => Week::unread(bounds, target.zone, message),
        None => read_week(app, &target, wanted, reader).await?,
    };
    if let Some(start) = &marked {
        week.mark(start);
    }
    let (doctor_id, branch_id) = (doctor.row.id, branch.id);
    Ok(Some(SlotsPartial {
        doctor_id,
        branches: doctor.branches.clone(),
        branch_id,
        prev: week.prev.map(|d| PickerLink::week(doctor_id, branch_id, d)),
        next: week.next.map(|d| PickerLink::week(doctor_id, branch_id, d)),
        nearest: PickerLink::nearest(doctor_id, branch_id),
        this_week: (week.from != bounds.today || week.days.is_empty())
            .then(|| PickerLink::week(doctor_id, branch_id, bounds.today)),
        page_url: doctor_week_url(doctor_id, branch_id, week.from),
        found,
        found_free,
        week,
    }))
}

/// `GET /doctors/{id}/slots`: the picker alone, for htmx; the answer names the doctor
/// page at the week shown, which htmx puts into the address bar.
pub async fn show_doctor_slots(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Query(query): Query<SlotsQuery>,
) -> Result<Response, AppError> {
    let id = path_id(&id)?;
    let mut conn = state.db().await?;
    let doctor = directory::find_specialist(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)?;
    drop(conn);
    let Some(partial) = slots_partial(&state, &doctor, &query, ip).await? else {
        return Err(AppError::NotFound);
    };
    let push = HeaderValue::from_str(&partial.page_url)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("push url: {e}")))?;
    Ok(([(HeaderName::from_static("hx-push-url"), push)], partial).into_response())
}
