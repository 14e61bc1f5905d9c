//! The front desk (staff and admins): the day of a branch, the day of one doctor, the
//! caller being served (found by phone or name, or typed in) and booking for them a week at
//! a time. Moving, cancelling and marking a visit are on the record page (`desk_record.rs`).

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use chrono::{Days, NaiveDate};
use serde::Deserialize;

use crate::{
    app::{App, AppState},
    auth::{roles::CurrentUser, session::AuthSession},
    client_ip::ClientIp,
    db::models::{
        caller::CallerMatch,
        directory::{self, Branch, Specialist},
        record::RecordView,
        user::{self, Role},
    },
    domain::{
        audit::{self, Actor},
        booking::{
            BookingError,
            desk::{Caller, CallerRef, DeskBooking},
            grid::Slot,
            records::RecordQuery,
        },
        values::{BirthDate, CallerQuery, Comment, FieldErrors, FullName, NamePart, Phone},
    },
    error::AppError,
    extract::{Form, Query},
    params,
    web::{
        Layout, labels,
        week::{Week, WeekReader, read_week},
    },
};

/// The session key of the caller being served.
const CALLER_KEY: &str = "desk_caller";

/// The most records the day of a branch shows.
const DAY_RECORDS: i64 = 200;

async fn current_caller(app: &App, session: &AuthSession) -> Result<Option<Caller>, AppError> {
    let Some(reference) = session.0.get::<CallerRef>(CALLER_KEY).await? else {
        return Ok(None);
    };
    match app.booking.resolve_caller(&reference).await {
        Ok(caller) => Ok(Some(caller)),
        // The account was disabled or the record adopted meanwhile: serve nobody.
        Err(BookingError::RecordNotFound) => {
            session.0.remove::<CallerRef>(CALLER_KEY).await?;
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The caller as the banner shows them.
pub struct CallerBanner {
    pub name: String,
    pub phone: String,
    pub birth_date: String,
    pub has_account: bool,
}

impl CallerBanner {
    fn of(caller: &Caller) -> Self {
        Self {
            name: caller.patient.name.to_string(),
            phone: caller.patient.phone.to_string(),
            birth_date: caller
                .patient
                .birth_date
                .map(|d| d.date().format("%d.%m.%Y").to_string())
                .unwrap_or_default(),
            has_account: caller.account.is_some(),
        }
    }
}

/// Why a desk page shows no grid, in words; other failures stay errors.
fn schedule_gap(e: BookingError) -> Result<String, AppError> {
    match e {
        BookingError::MisUnavailable(_) | BookingError::MisRefused(_) => Ok(
            "Сетка расписания сейчас недоступна: МИС не отвечает. Записи, сделанные через этот сайт, видны."
                .to_owned(),
        ),
        BookingError::Invalid(errors) => Ok(errors
            .get("date_from")
            .or(errors.get("date_to"))
            .unwrap_or("Расписание на эти дни недоступно")
            .to_owned()),
        other => Err(other.into()),
    }
}

/// The records of one day in a branch (of one doctor, when given), as `user` sees them;
/// the view is audited with the patients it shows.
async fn day_records(
    state: &AppState,
    user: &crate::db::models::user::User,
    ip: std::net::IpAddr,
    (branch_id, specialist_id): (i64, Option<i64>),
    date: NaiveDate,
    place: &str,
) -> Result<Vec<RecordView>, AppError> {
    let records = state
        .booking
        .list_records(
            user,
            &RecordQuery {
                specialist_id,
                branch_id: Some(branch_id),
                date_from: Some(date),
                date_to: Some(date),
                per_page: Some(DAY_RECORDS),
                ..Default::default()
            },
            Default::default(),
        )
        .await?
        .items;
    audit::append_listed(&state.db, Actor::user(user, ip), place, &records).await;
    Ok(records)
}

// ---- the day of a branch -------------------------------------------------------------

#[derive(Deserialize, Default)]
pub struct DayQuery {
    #[serde(default)]
    branch_id: String,
    #[serde(default)]
    specialist_id: String,
    #[serde(default)]
    date: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/staff/desk.html")]
struct DeskPage {
    layout: Layout,
    branches: Vec<Branch>,
    branch: Option<Branch>,
    is_preferred: bool,
    date: NaiveDate,
    date_title: String,
    prev_date: NaiveDate,
    next_date: NaiveDate,
    zone_city: String,
    records: Vec<RecordView>,
    doctors: Vec<Specialist>,
    caller: Option<CallerBanner>,
}

/// `GET /staff`: today (or `date`) in the operator's branch (or `branch_id`).
pub async fn show_desk(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    Query(query): Query<DayQuery>,
) -> Result<Response, AppError> {
    let chosen = params::field("branch_id", params::optional_id(&query.branch_id))?;
    let mut conn = state.db().await?;
    let branches = directory::list_branches(&mut conn).await?;
    let wanted = chosen.or(user.preferred_branch_id);
    let branch = branches
        .iter()
        .find(|b| Some(b.id) == wanted)
        .or(branches.first())
        .cloned();
    let doctors = match &branch {
        Some(b) => {
            directory::search_specialists(
                &mut conn,
                &directory::SpecialistFilter {
                    branch_id: Some(b.id),
                    ..Default::default()
                },
            )
            .await?
        }
        None => Vec::new(),
    };
    drop(conn);
    let now = state.booking.clock.now();
    let zone = branch.as_ref().map(|b| b.timezone);
    let date = match query.date.trim() {
        "" => zone.map_or_else(|| now.date_naive(), |z| z.today(now)),
        raw => params::field("date", params::date(raw))?,
    };
    let records = match &branch {
        Some(b) => day_records(&state, &user, ip, (b.id, None), date, "/staff").await?,
        None => Vec::new(),
    };
    let caller = current_caller(&state, &session).await?;
    Ok(DeskPage {
        layout: Layout::new(&session, Some(&user)).await?,
        is_preferred: branch.as_ref().map(|b| b.id) == user.preferred_branch_id,
        branches,
        zone_city: zone
            .map(crate::domain::values::BranchZone::city_time)
            .unwrap_or_default(),
        branch,
        date,
        date_title: labels::weekday_date(date),
        prev_date: date.checked_sub_days(Days::new(1)).unwrap_or(date),
        next_date: date.checked_add_days(Days::new(1)).unwrap_or(date),
        records,
        doctors,
        caller: caller.as_ref().map(CallerBanner::of),
    }
    .into_response())
}

#[derive(Deserialize)]
pub struct BranchForm {
    #[serde(default)]
    branch_id: String,
}

/// `POST /staff/branch`: the branch the desk opens on.
pub async fn set_desk_branch(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    Form(form): Form<BranchForm>,
) -> Result<Response, AppError> {
    let branch_id = params::field("branch_id", params::required_id(&form.branch_id))?;
    let mut conn = state.db().await?;
    let known = directory::list_branches(&mut conn)
        .await?
        .iter()
        .any(|b| b.id == branch_id);
    if !known {
        return Err(AppError::field("branch_id", "Филиал не найден"));
    }
    user::set_preferred_branch(&mut conn, user.id, Some(branch_id)).await?;
    drop(conn);
    audit::append(
        &state.db,
        Actor::user(&user, ip),
        "desk_branch_set",
        &branch_id.to_string(),
    )
    .await;
    Ok(see_other(&format!("/staff?branch_id={branch_id}")))
}

fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, Redirect::to(to)).into_response()
}

// ---- the day of one doctor -----------------------------------------------------------

/// A row of a doctor's day: a slot of the grid, and the record in it if it is ours.
pub struct DayRow {
    pub time: String,
    pub start: String,
    pub free: bool,
    pub record: Option<RecordView>,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/staff/day.html")]
struct DoctorDayPage {
    layout: Layout,
    doctor: Specialist,
    branch: Branch,
    date: NaiveDate,
    date_title: String,
    prev_date: NaiveDate,
    next_date: NaiveDate,
    zone_city: String,
    rows: Vec<DayRow>,
    error: Option<String>,
    caller: Option<CallerBanner>,
}

/// `GET /staff/day?specialist_id&branch_id&date`: the doctor's slots of the day in order,
/// free or taken, and for ours the patient with a full phone.
pub async fn show_doctor_day(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    Query(query): Query<DayQuery>,
) -> Result<Response, AppError> {
    let specialist_id = params::field("specialist_id", params::required_id(&query.specialist_id))?;
    let branch_id = params::field("branch_id", params::required_id(&query.branch_id))?;
    let target = state.booking.target(specialist_id, branch_id).await?;
    let mut conn = state.db().await?;
    let doctor = directory::find_specialist(&mut conn, specialist_id)
        .await?
        .ok_or(AppError::NotFound)?;
    drop(conn);
    let branch = doctor
        .branches
        .iter()
        .find(|b| b.id == branch_id)
        .cloned()
        .ok_or(AppError::NotFound)?;
    let now = state.booking.clock.now();
    let date = match query.date.trim() {
        "" => target.zone.today(now),
        raw => params::field("date", params::date(raw))?,
    };
    let records = day_records(
        &state,
        &user,
        ip,
        (branch_id, Some(specialist_id)),
        date,
        "/staff/day",
    )
    .await?;
    let (slots, error) = match state.booking.read_schedule(&target, date, date, None).await {
        Ok(window) => (
            window
                .days
                .iter()
                .flat_map(|d| d.slots(target.zone.tz(), now))
                .collect::<Vec<_>>(),
            None,
        ),
        Err(e) => (Vec::new(), Some(schedule_gap(e)?)),
    };
    Ok(DoctorDayPage {
        layout: Layout::new(&session, Some(&user)).await?,
        rows: day_rows(&slots, records),
        zone_city: target.zone.city_time(),
        doctor,
        branch,
        date,
        date_title: labels::weekday_date(date),
        prev_date: date.checked_sub_days(Days::new(1)).unwrap_or(date),
        next_date: date.checked_add_days(Days::new(1)).unwrap_or(date),
        error,
        caller: current_caller(&state, &session)
            .await?
            .as_ref()
            .map(CallerBanner::of),
    }
    .into_response())
}

/// The grid's slots with the booked records placed in them; records at a time the grid
/// does not have (cancelled ones, or the grid is missing) follow in time order.
fn day_rows(slots: &[Slot], records: Vec<RecordView>) -> Vec<DayRow> {
    let mut records: Vec<Option<RecordView>> = records.into_iter().map(Some).collect();
    let mut rows: Vec<DayRow> = slots
        .iter()
        .map(|slot| {
            let start = slot.start.with_timezone(&chrono::Utc);
            let record = records
                .iter_mut()
                .find(|r| {
                    r.as_ref()
                        .is_some_and(|r| r.record.starts_at == start && r.record.is_active())
                })
                .and_then(Option::take);
            DayRow {
                time: slot.start.format("%H:%M").to_string(),
                start: slot.start.to_rfc3339(),
                free: slot.free,
                record,
            }
        })
        .collect();
    for record in records.into_iter().flatten() {
        rows.push(DayRow {
            time: record.local_start().format("%H:%M").to_string(),
            start: record.local_start().to_rfc3339(),
            free: false,
            record: Some(record),
        });
    }
    rows.sort_by(|a, b| a.start.cmp(&b.start));
    rows
}

// ---- the caller ----------------------------------------------------------------------

#[derive(Deserialize, Default)]
pub struct CallersQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    next: String,
}

/// What the new-caller form shows back.
#[derive(Deserialize, Default)]
pub struct NewCallerForm {
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    middle_name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    next: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/staff/callers.html")]
struct CallersPage {
    layout: Layout,
    q: String,
    next: String,
    searched: bool,
    matches: Vec<CallerMatch>,
    query_error: Option<String>,
    form: NewCallerForm,
    errors: FieldErrors,
    caller: Option<CallerBanner>,
}

/// `GET /staff/callers?q=`: find the patient on the phone by number or name.
pub async fn find_callers(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    Query(query): Query<CallersQuery>,
) -> Result<Response, AppError> {
    let searched = !query.q.trim().is_empty();
    let (matches, query_error) = if searched {
        match CallerQuery::parse(&query.q) {
            Ok(parsed) => (state.booking.find_callers(&parsed).await?, None),
            Err(invalid) => (Vec::new(), Some(invalid.0.to_owned())),
        }
    } else {
        (Vec::new(), None)
    };
    let status = if query_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = CallersPage {
        layout: Layout::new(&session, Some(&user)).await?,
        next: safe_next_or_book(&query.next),
        q: query.q,
        searched,
        matches,
        query_error,
        form: NewCallerForm::default(),
        errors: FieldErrors::new(),
        caller: current_caller(&state, &session)
            .await?
            .as_ref()
            .map(CallerBanner::of),
    };
    Ok((status, page).into_response())
}

fn safe_next_or_book(next: &str) -> String {
    crate::web::safe_next(next)
        .filter(|n| n.starts_with("/staff"))
        .unwrap_or("/staff/book")
        .to_owned()
}

#[derive(Deserialize)]
pub struct ChooseCallerForm {
    #[serde(default)]
    account_id: String,
    #[serde(default)]
    record_id: String,
    #[serde(default)]
    next: String,
}

/// `POST /staff/caller`: serve the patient the search found.
pub async fn choose_caller(
    State(state): State<AppState>,
    session: AuthSession,
    Form(form): Form<ChooseCallerForm>,
) -> Result<Response, AppError> {
    let account = params::field("account_id", params::optional_id(&form.account_id))?;
    let record = params::field("record_id", params::optional_id(&form.record_id))?;
    let reference = match (account, record) {
        (Some(id), None) => CallerRef::Account(id),
        (None, Some(id)) => CallerRef::Record(id),
        _ => return Err(AppError::field("account_id", "Выберите пациента из списка")),
    };
    state.booking.resolve_caller(&reference).await?;
    session.0.insert(CALLER_KEY, &reference).await?;
    Ok(see_other(&safe_next_or_book(&form.next)))
}

/// `POST /staff/caller/new`: serve a patient the clinic has not seen; the MIS card is
/// found or made (`CLIENT_ADD`) at the first booking.
pub async fn add_caller(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    Form(form): Form<NewCallerForm>,
) -> Result<Response, AppError> {
    let today = state.booking.clock.now().date_naive();
    let mut errors = FieldErrors::new();
    let last = errors.check("last_name", NamePart::parse(&form.last_name));
    let first = errors.check("first_name", NamePart::parse(&form.first_name));
    let middle = errors.check(
        "middle_name",
        NamePart::parse_optional(Some(form.middle_name.as_str())),
    );
    let phone = errors.check("phone", Phone::parse(&form.phone));
    let birth_date = errors.check("birth_date", BirthDate::parse(&form.birth_date, today));
    let reference = errors.or_value(|| {
        Some(CallerRef::new_person(
            &FullName::from_parts(last?, first?, middle?),
            &phone?,
            birth_date?,
        ))
    });
    let reference = match reference {
        Ok(reference) => reference,
        Err(errors) => {
            let page = CallersPage {
                layout: Layout::new(&session, Some(&user)).await?,
                q: String::new(),
                next: safe_next_or_book(&form.next),
                searched: false,
                matches: Vec::new(),
                query_error: None,
                form,
                errors,
                caller: current_caller(&state, &session)
                    .await?
                    .as_ref()
                    .map(CallerBanner::of),
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    session.0.insert(CALLER_KEY, &reference).await?;
    Ok(see_other(&safe_next_or_book(&form.next)))
}

/// `POST /staff/caller/forget`: the call is over.
pub async fn forget_caller(session: AuthSession) -> Result<Response, AppError> {
    session.0.remove::<CallerRef>(CALLER_KEY).await?;
    Ok(see_other("/staff"))
}

// ---- booking for the caller ----------------------------------------------------------

#[derive(Deserialize, Default)]
pub struct DeskBookQuery {
    #[serde(default)]
    specialist_id: String,
    #[serde(default)]
    branch_id: String,
    #[serde(default)]
    week: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/staff/book.html")]
struct DeskBookPage {
    layout: Layout,
    caller: Option<CallerBanner>,
    doctors: Vec<Specialist>,
    doctor: Option<Specialist>,
    branch_id: i64,
    week: Option<Week>,
    /// `next=<this page>`, for the caller search to come back to.
    next_param: String,
}

/// `GET /staff/book`: a doctor, a branch and a week of free time for the caller.
pub async fn show_desk_booking(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    Query(query): Query<DeskBookQuery>,
) -> Result<Response, AppError> {
    let specialist_id = params::field("specialist_id", params::optional_id(&query.specialist_id))?;
    let branch_id = params::field("branch_id", params::optional_id(&query.branch_id))?;
    let week_from = params::field("week", params::optional_date(&query.week))?;
    let mut conn = state.db().await?;
    let doctors = directory::search_specialists(&mut conn, &Default::default()).await?;
    let doctor = match specialist_id {
        Some(id) => Some(
            directory::find_specialist(&mut conn, id)
                .await?
                .ok_or_else(|| AppError::field("specialist_id", "Врач не найден"))?,
        ),
        None => None,
    };
    drop(conn);
    let branch_id = branch_id
        .or(doctor
            .as_ref()
            .and_then(|d| {
                d.branches
                    .iter()
                    .find(|b| Some(b.id) == user.preferred_branch_id)
                    .or(d.branches.first())
            })
            .map(|b| b.id))
        .unwrap_or_default();
    let week = match &doctor {
        Some(d) => {
            let target = state.booking.target(d.row.id, branch_id).await?;
            let doctor_id = d.row.id;
            Some(
                read_week(&state, &target, week_from, WeekReader::Staff)
                    .await?
                    .with_hrefs(|from| {
                        format!(
                            "/staff/book?specialist_id={doctor_id}&branch_id={branch_id}&week={from}"
                        )
                    }),
            )
        }
        None => None,
    };
    let here = match &doctor {
        Some(d) => format!(
            "/staff/book?specialist_id={}&branch_id={branch_id}{}",
            d.row.id,
            week.as_ref()
                .map(|w| format!("&week={}", w.from))
                .unwrap_or_default()
        ),
        None => "/staff/book".to_owned(),
    };
    Ok(DeskBookPage {
        layout: Layout::new(&session, Some(&user)).await?,
        caller: current_caller(&state, &session)
            .await?
            .as_ref()
            .map(CallerBanner::of),
        doctors,
        doctor,
        branch_id,
        week,
        next_param: serde_urlencoded::to_string([("next", here.as_str())]).unwrap_or_default(),
    }
    .into_response())
}

#[derive(Deserialize)]
pub struct DeskBookForm {
    #[serde(default)]
    specialist_id: String,
    #[serde(default)]
    branch_id: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    comment: String,
}

/// `POST /staff/book`: books the chosen time for the caller being served.
pub async fn book_for_caller(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    Form(form): Form<DeskBookForm>,
) -> Result<Response, AppError> {
    let specialist_id = params::field("specialist_id", params::required_id(&form.specialist_id))?;
    let branch_id = params::field("branch_id", params::required_id(&form.branch_id))?;
    let start = params::field("start", params::instant(&form.start))?;
    let comment = params::field("comment", Comment::parse(&form.comment))?;
    let Some(caller) = current_caller(&state, &session).await? else {
        return Err(AppError::Conflict {
            code: "no_caller",
            message: "Сначала выберите пациента, для которого записываете.".into(),
        });
    };
    let view = state
        .booking
        .book_for_caller(
            &user,
            &caller,
            DeskBooking {
                specialist_id,
                branch_id,
                start,
                comment: comment.as_ref(),
                ip,
            },
        )
        .await?;
    Ok(see_other(&format!(
        "/staff/records/{}?booked=1",
        view.record.id
    )))
}

/// Keeps `Role` in scope for the base layout's comparisons.
const _: Option<Role> = None;
