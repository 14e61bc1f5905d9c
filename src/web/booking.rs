//! Booking pages: the confirm-and-book step for patients (a visitor without an account gets
//! the form of `web::anonymous` instead), and the lists of records for patients and staff.
//! The doctor page's slot picker is `web::slots`; one record's page is `web::my_record`.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use chrono::Utc;
use serde::Deserialize;

use crate::extract::path_id as parse_path_id;
use crate::{
    app::{App, AppState},
    auth::{
        roles::{CurrentUser, MaybeUser},
        session::AuthSession,
    },
    client_ip::ClientIp,
    db::models::{
        directory::{self, Branch, Specialist},
        record::RecordView,
        user::{Role, User},
    },
    domain::{
        booking::{BookingError, BookingTarget, reserve::UserBooking},
        values::{Comment, PageNo, RecordSource},
    },
    error::AppError,
    extract::{Form, Query},
    params::{self, FormQuery, RecordsForm, RecordsParams},
    web::{Layout, labels, slots::doctor_week_url, summary::VisitSummary},
};

#[derive(Template, WebTemplate)]
#[template(path = "pages/booking/confirm.html")]
struct ConfirmPage {
    layout: Layout,
    doctor_id: i64,
    branch_id: i64,
    summary: VisitSummary,
    start: String,
    patient_name: String,
    /// What the patient typed, shown again after a refusal.
    comment: String,
    /// Why this time cannot be booked (passed, not on the grid, taken): no button then.
    unavailable: Option<String>,
    error: Option<String>,
    /// Another visit of the patient at that time.
    warning: Option<String>,
    /// After a refusal for a withdrawn consent: the page that gives it again, coming back
    /// to this slot.
    consent_link: Option<String>,
    /// The doctor page at the week of this time.
    back_href: String,
}

#[derive(Deserialize)]
pub struct BookQuery {
    #[serde(default)]
    branch_id: String,
    #[serde(default)]
    start: String,
}

async fn target_for(
    app: &App,
    doctor_id: i64,
    branch_raw: &str,
) -> Result<BookingTarget, AppError> {
    let branch_id = params::field("branch_id", params::required_id(branch_raw))?;
    Ok(app.booking.target(doctor_id, branch_id).await?)
}

/// «← Выбрать другое время»: the doctor page at the week of `start`.
pub fn back_to_week(target: &BookingTarget, start: chrono::DateTime<Utc>) -> String {
    let day = target.zone.local(&start).date_naive();
    format!(
        "{}#slots",
        doctor_week_url(target.specialist_id, target.branch_id, day)
    )
}

/// Why `start` cannot be booked, in words, asked before anyone presses the button (through
/// the cache, within the reader's limit); `None` when it still can, or when the schedule
/// cannot be read now (the booking itself will tell).
pub async fn slot_problem(
    app: &App,
    target: &BookingTarget,
    start: chrono::DateTime<Utc>,
    ip: std::net::IpAddr,
) -> Result<Option<String>, AppError> {
    match app.booking.bookable_slot(target, start, Some(ip)).await {
        Ok(_) => Ok(None),
        Err(
            e @ (BookingError::StartInPast
            | BookingError::NotASlot
            | BookingError::SlotTaken
            | BookingError::Invalid(_)),
        ) => Ok(Some(AppError::from(e).public_message())),
        Err(
            BookingError::MisUnavailable(_)
            | BookingError::MisRefused(_)
            | BookingError::RateLimited { .. },
        ) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn confirm_page(
    app: &App,
    layout: Layout,
    target: &BookingTarget,
    start: chrono::DateTime<Utc>,
    patient_name: String,
) -> Result<ConfirmPage, AppError> {
    Ok(ConfirmPage {
        layout,
        doctor_id: target.specialist_id,
        branch_id: target.branch_id,
        summary: VisitSummary::of_slot(app, target, start).await?,
        start: target.zone.local(&start).to_rfc3339(),
        patient_name,
        comment: String::new(),
        unavailable: None,
        error: None,
        warning: None,
        consent_link: None,
        back_href: back_to_week(target, start),
    })
}

/// `/cabinet/consent?next=<this slot's confirmation page>`: every part URL-encoded, so the
/// link holds no `&` of its own.
fn consent_link(target: &BookingTarget, start: chrono::DateTime<Utc>) -> String {
    let slot = serde_urlencoded::to_string([
        ("branch_id", target.branch_id.to_string()),
        ("start", target.zone.local(&start).to_rfc3339()),
    ])
    .unwrap_or_default();
    let next = format!("/doctors/{}/book?{slot}", target.specialist_id);
    let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
    format!("/cabinet/consent?{query}")
}

/// The booking step after a free slot: a patient confirms; a visitor without an account
/// gets the form to book without one (or to log in or register, keeping the slot). Both
/// say so at once when the time has passed or is no longer free.
pub async fn show_booking_confirm(
    State(state): State<AppState>,
    session: AuthSession,
    MaybeUser(user): MaybeUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Query(query): Query<BookQuery>,
) -> Result<Response, AppError> {
    let target = target_for(&state, parse_path_id(&id)?, &query.branch_id).await?;
    let start = params::field("start", params::instant(&query.start))?;
    let Some(user) = user else {
        let unavailable = slot_problem(&state, &target, start, ip).await?;
        let page = crate::web::anonymous::anonymous_page(
            &state,
            &session,
            &target,
            start,
            Default::default(),
            crate::web::anonymous::Feedback {
                unavailable,
                ..Default::default()
            },
        )
        .await?;
        return Ok(page.into_response());
    };
    let user = patient_only(&state, user, ip).await?;
    let unavailable = slot_problem(&state, &target, start, ip).await?;
    // Also when the time is taken: the patient may be the one who holds it.
    let overlaps = state
        .booking
        .overlapping_visits(&user, (start, start + chrono::Duration::minutes(1)), None)
        .await?;
    let layout = Layout::with_form(&session, Some(&user)).await?;
    let mut page = confirm_page(&state, layout, &target, start, user.full_name.clone()).await?;
    page.unavailable = unavailable;
    page.warning = overlap_warning(&overlaps);
    Ok(page.into_response())
}

/// Pages open to anyone that only a patient may act on: staff and admins get the 403 of
/// the role gates, audited the same way.
async fn patient_only(app: &App, user: User, ip: std::net::IpAddr) -> Result<User, AppError> {
    if user.role() == Role::Patient {
        return Ok(user);
    }
    crate::auth::login::audit(app, Some(user.id), "access_denied", "/doctors/book", ip).await;
    Err(AppError::Forbidden)
}

/// A warning, not a refusal: another visit of the patient at the same time.
fn overlap_warning(overlaps: &[RecordView]) -> Option<String> {
    let other = overlaps.first()?;
    Some(format!(
        "В это время у вас уже есть запись: {} к врачу {}. Новая запись её не отменит.",
        labels::visit_when_in(other.branch_zone, other.record.starts_at),
        other.specialist_name
    ))
}

#[derive(Deserialize)]
pub struct BookForm {
    #[serde(default)]
    branch_id: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    comment: String,
}

pub async fn book_slot(
    State(state): State<AppState>,
    session: AuthSession,
    MaybeUser(user): MaybeUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Form(form): Form<BookForm>,
) -> Result<Response, AppError> {
    let Some(user) = user else {
        return Ok(Redirect::to(&format!("/doctors/{id}")).into_response());
    };
    let user = patient_only(&state, user, ip).await?;
    let target = target_for(&state, parse_path_id(&id)?, &form.branch_id).await?;
    let start = params::field("start", params::instant(&form.start))?;
    let booked = match params::field("comment", Comment::parse(&form.comment)) {
        Ok(comment) => state
            .booking
            .book_for_user(
                &user,
                UserBooking {
                    specialist_id: target.specialist_id,
                    branch_id: target.branch_id,
                    start,
                    comment: comment.as_ref(),
                    source: RecordSource::Cabinet,
                    keep_answer: None,
                    ip,
                },
            )
            .await
            .map_err(AppError::from),
        Err(e) => Err(e),
    };
    match booked {
        Ok(view) => Ok(
            Redirect::to(&format!("/cabinet/records/{}?booked=1", view.record.id)).into_response(),
        ),
        Err(e @ (AppError::Conflict { .. } | AppError::Validation { .. })) => {
            let status = e.status();
            let layout = Layout::with_form(&session, Some(&user)).await?;
            let mut page =
                confirm_page(&state, layout, &target, start, user.full_name.clone()).await?;
            page.comment = form.comment;
            // The time itself is refused: choosing another is the way on, not pressing
            // the button again.
            let about_the_time = e.code() == "slot_taken"
                || matches!(&e, AppError::Validation { fields, .. } if fields.contains_key("start"));
            if about_the_time {
                page.unavailable = Some(e.public_message());
            } else {
                page.error = Some(e.public_message());
            }
            if e.code() == "consent_withdrawn" {
                page.consent_link = Some(consent_link(&target, start));
            }
            Ok((status, page).into_response())
        }
        Err(e) => Err(e),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/cabinet/records.html")]
struct MyRecordsPage {
    layout: Layout,
    records: Vec<RecordView>,
    base_path: &'static str,
    show_patient: bool,
    page: i64,
    pages: i64,
    total: i64,
    query: String,
}

#[derive(Deserialize, Default)]
pub struct PageOnly {
    #[serde(default)]
    page: String,
}

pub async fn list_my_records(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    Query(query): Query<PageOnly>,
) -> Result<Response, AppError> {
    let page = params::field("page", PageNo::parse(&query.page))?;
    let list = state
        .booking
        .list_records(&user, &Default::default(), page)
        .await?;
    Ok(MyRecordsPage {
        layout: Layout::new(&session, Some(&user)).await?,
        base_path: "/cabinet/records",
        show_patient: false,
        page: list.page.get(),
        pages: list.pages(),
        total: list.total,
        records: list.items,
        query: String::new(),
    }
    .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/staff/records.html")]
struct StaffRecordsPage {
    layout: Layout,
    records: Vec<RecordView>,
    base_path: &'static str,
    show_patient: bool,
    page: i64,
    pages: i64,
    total: i64,
    query: String,
    form: RecordsForm,
    branches: Vec<Branch>,
    specialists: Vec<Specialist>,
}

pub async fn list_staff_records(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    FormQuery(params): FormQuery<RecordsParams>,
) -> Result<Response, AppError> {
    let list = state
        .booking
        .list_records(&user, &params.query(), params.page)
        .await?;
    crate::domain::audit::append_listed(
        &state.db,
        crate::domain::audit::Actor::user(&user, ip),
        "/staff/records",
        &list.items,
    )
    .await;
    let mut conn = state.db().await?;
    let branches = directory::list_branches(&mut conn).await?;
    let specialists = directory::search_specialists(&mut conn, &Default::default()).await?;
    drop(conn);
    let form = params.form();
    let query_string = serde_urlencoded::to_string(&form)
        .map(|q| format!("{q}&"))
        .unwrap_or_default();
    Ok(StaffRecordsPage {
        layout: Layout::new(&session, Some(&user)).await?,
        base_path: "/staff/records",
        show_patient: true,
        page: list.page.get(),
        pages: list.pages(),
        total: list.total,
        records: list.items,
        query: query_string,
        form,
        branches,
        specialists,
    }
    .into_response())
}

/// Keeps `Role` in scope for the base layout's comparisons.
const _: Option<Role> = None;
