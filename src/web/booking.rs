//! Booking pages: the slot grid on the doctor page (an htmx partial), the confirm-and-book
//! step for patients, the patient's records (cancel, move) and the staff's record desk.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{OriginalUri, Path, State},
    response::{IntoResponse, Redirect, Response},
};
use chrono::{Days, NaiveDate, Utc};
use serde::Deserialize;

use crate::extract::path_id as parse_path_id;
use crate::{
    app::{App, AppState},
    auth::{
        roles::{self, CurrentUser, MaybeUser},
        session::AuthSession,
    },
    client_ip::ClientIp,
    db::models::{
        directory::{self, Branch, Specialist},
        record::RecordView,
        user::{Role, User},
    },
    domain::{
        booking::{
            BookingError, BookingTarget, grid::Slot, reserve::UserBooking, schedule::Source,
        },
        values::{Comment, PageNo, RecordSource},
    },
    error::AppError,
    extract::{Form, Query},
    params::{self, FormQuery, RecordsForm, RecordsParams},
    web::Layout,
};

/// A slot as the grid shows it.
pub struct SlotView {
    pub label: String,
    /// The start for a query string (RFC 3339, `+` escaped).
    pub start_param: String,
    pub free: bool,
}

impl SlotView {
    fn from_slot(slot: &Slot, with_date: bool) -> Self {
        let label = if with_date {
            slot.start.format("%d.%m %H:%M").to_string()
        } else {
            slot.start.format("%H:%M").to_string()
        };
        Self {
            label,
            start_param: slot.start.to_rfc3339().replace('+', "%2B"),
            free: slot.free,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "partials/booking/slots.html")]
pub struct SlotsPartial {
    pub doctor_id: i64,
    pub branches: Vec<Branch>,
    pub branch_id: i64,
    pub date: NaiveDate,
    pub date_title: String,
    pub prev_date: NaiveDate,
    pub next_date: NaiveDate,
    pub timezone: String,
    pub slots: Vec<SlotView>,
    pub stale: bool,
    pub error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct SlotsQuery {
    #[serde(default)]
    pub date: String,
    #[serde(default)]
    pub branch_id: String,
}

/// The grid of one day for a doctor; errors of the MIS become a message in the partial.
pub async fn slots_partial(
    app: &App,
    doctor: &Specialist,
    query: &SlotsQuery,
    reader: std::net::IpAddr,
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
    let zone = branch.timezone;
    let now = app.booking.clock.now();
    let date = match query.date.trim() {
        "" => zone.today(now),
        raw => params::field("date", params::date(raw))?,
    };
    let target = app.booking.target(doctor.row.id, branch.id).await?;
    let (slots, stale, error) = match app
        .booking
        .read_schedule(&target, date, date, Some(reader))
        .await
    {
        Ok(window) => {
            let slots = window
                .days
                .iter()
                .flat_map(|d| d.slots(zone.tz(), now))
                .map(|s| SlotView::from_slot(&s, false))
                .collect();
            (slots, window.source == Source::Stale, None)
        }
        Err(BookingError::MisUnavailable(_) | BookingError::MisRefused(_)) => (
            Vec::new(),
            false,
            Some("Расписание сейчас недоступно: МИС не отвечает. Попробуйте позже.".to_owned()),
        ),
        Err(BookingError::Invalid(errors)) => (
            Vec::new(),
            false,
            errors
                .get("date_from")
                .or(errors.get("date_to"))
                .map(str::to_owned),
        ),
        // The doctor page stays readable; only its grid waits.
        Err(BookingError::RateLimited { retry_after_secs }) => (
            Vec::new(),
            false,
            Some(format!(
                "Слишком много запросов расписания с вашего адреса. Повторите через {retry_after_secs} с."
            )),
        ),
        Err(e) => return Err(e.into()),
    };
    Ok(Some(SlotsPartial {
        doctor_id: doctor.row.id,
        branches: doctor.branches.clone(),
        branch_id: branch.id,
        date,
        date_title: date.format("%d.%m.%Y").to_string(),
        prev_date: date.checked_sub_days(Days::new(1)).unwrap_or(date),
        next_date: date.checked_add_days(Days::new(1)).unwrap_or(date),
        timezone: zone.name().to_owned(),
        slots,
        stale,
        error,
    }))
}

pub async fn show_doctor_slots(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Query(query): Query<SlotsQuery>,
) -> Result<Response, AppError> {
    let id = parse_path_id(&id)?;
    let mut conn = state.db().await?;
    let doctor = directory::find_specialist(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)?;
    drop(conn);
    match slots_partial(&state, &doctor, &query, ip).await? {
        Some(partial) => Ok(partial.into_response()),
        None => Err(AppError::NotFound),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/booking/confirm.html")]
struct ConfirmPage {
    layout: Layout,
    doctor_id: i64,
    doctor_name: String,
    branch_id: i64,
    branch_name: String,
    branch_address: String,
    when: String,
    start: String,
    patient_name: String,
    error: Option<String>,
    /// Another visit of the patient at that time.
    warning: Option<String>,
    /// After a refusal for a withdrawn consent: the page that gives it again, coming back
    /// to this slot.
    consent_link: Option<String>,
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

fn confirm_page(
    layout: Layout,
    target: &BookingTarget,
    start: chrono::DateTime<Utc>,
    patient_name: String,
    error: Option<String>,
) -> ConfirmPage {
    ConfirmPage {
        layout,
        doctor_id: target.specialist_id,
        doctor_name: target.specialist_name.clone(),
        branch_id: target.branch_id,
        branch_name: target.branch_name.clone(),
        branch_address: target.branch_address.clone(),
        when: target
            .zone
            .local(&start)
            .format("%d.%m.%Y %H:%M")
            .to_string(),
        start: target.zone.local(&start).to_rfc3339(),
        patient_name,
        error,
        warning: None,
        consent_link: None,
    }
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
/// gets the form to book without one (or to log in or register, keeping the slot).
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
        let page = crate::web::anonymous::anonymous_page(
            &session,
            &target,
            start,
            Default::default(),
            Default::default(),
            None,
        )
        .await?;
        return Ok(page.into_response());
    };
    let user = patient_only(&state, user, ip).await?;
    let overlaps = state
        .booking
        .overlapping_visits(&user, (start, start + chrono::Duration::minutes(1)), None)
        .await?;
    let layout = Layout::with_form(&session, Some(&user)).await?;
    let mut page = confirm_page(layout, &target, start, user.full_name.clone(), None);
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
        other.local_start().format("%d.%m.%Y %H:%M"),
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
            let mut page = confirm_page(
                layout,
                &target,
                start,
                user.full_name.clone(),
                Some(e.public_message()),
            );
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
#[template(path = "pages/cabinet/record.html")]
struct MyRecordPage {
    layout: Layout,
    view: RecordView,
    can_change: bool,
    move_slots: Vec<SlotView>,
    notice: Option<&'static str>,
}

#[derive(Deserialize, Default)]
pub struct NoticeQuery {
    #[serde(default)]
    pub booked: String,
    #[serde(default)]
    pub moved: String,
    #[serde(default)]
    pub cancelled: String,
}

impl NoticeQuery {
    pub fn notice(&self) -> Option<&'static str> {
        if !self.booked.is_empty() {
            Some("Вы записаны. SMS с подтверждением придёт на ваш телефон.")
        } else if !self.moved.is_empty() {
            Some("Запись перенесена.")
        } else if !self.cancelled.is_empty() {
            Some("Запись отменена.")
        } else {
            None
        }
    }
}

/// Free slots of the record's doctor and branch in the coming two weeks, to move to.
async fn move_options(app: &App, view: &RecordView) -> Vec<SlotView> {
    let Ok(target) = app
        .booking
        .target(view.record.specialist_id, view.record.branch_id)
        .await
    else {
        return Vec::new();
    };
    let now = app.booking.clock.now();
    let today = target.zone.today(now);
    let until = today.checked_add_days(Days::new(13)).unwrap_or(today);
    match app
        .booking
        .schedule
        .window(&target.grid(), today, until)
        .await
    {
        Ok(window) => window
            .days
            .iter()
            .flat_map(|d| d.slots(target.zone.tz(), now))
            .filter(|s| s.free)
            .take(40)
            .map(|s| SlotView::from_slot(&s, true))
            .collect(),
        Err(_) => Vec::new(),
    }
}

pub async fn show_my_record(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, AppError> {
    let id = parse_path_id(&id)?;
    let view = match state.booking.visible_record(&user, id).await {
        Ok(view) => view,
        Err(e) => return Err(roles::refuse_record(&state, &user, ip, uri.path(), id, e).await),
    };
    let can_change = view.record.is_changeable_at(state.booking.clock.now());
    let move_slots = if can_change {
        move_options(&state, &view).await
    } else {
        Vec::new()
    };
    Ok(MyRecordPage {
        layout: Layout::new(&session, Some(&user)).await?,
        view,
        can_change,
        move_slots,
        notice: query.notice(),
    }
    .into_response())
}

pub async fn cancel_my_record(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = parse_path_id(&id)?;
    let view = match state.booking.cancel_record(&user, id, ip).await {
        Ok(view) => view,
        Err(e) => return Err(roles::refuse_record(&state, &user, ip, uri.path(), id, e).await),
    };
    Ok(Redirect::to(&format!("/cabinet/records/{}?cancelled=1", view.record.id)).into_response())
}

#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    start: String,
}

pub async fn reschedule_my_record(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    Form(form): Form<MoveForm>,
) -> Result<Response, AppError> {
    let id = parse_path_id(&id)?;
    let start = params::field("start", params::instant(&form.start))?;
    let view = match state.booking.reschedule_record(&user, id, start, ip).await {
        Ok(view) => view,
        Err(e) => return Err(roles::refuse_record(&state, &user, ip, uri.path(), id, e).await),
    };
    Ok(Redirect::to(&format!("/cabinet/records/{}?moved=1", view.record.id)).into_response())
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
