//! Schedules and booking for the public site and patients: the slot grid, anonymous
//! booking, and a patient's own records (list, detail, book, cancel, move).

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::extract::path_id;
use crate::{
    app::{App, AppState},
    auth::roles::{ApiUser, Role},
    booking::{
        idempotent::{self, Idempotent},
        reserve::{self, BookRequest, PatientDetails},
        view::{record_json, record_with_notification},
    },
    client_ip::ClientIp,
    db::models::{
        outbox,
        record::{self, RecordFilter, RecordSource, RecordView},
        user::User,
    },
    error::AppError,
    extract::{Json as JsonBody, Query},
    web::{auth::normalize_phone, doctors::parse_id},
};

/// Longest window of one schedule request, in days.
const MAX_WINDOW_DAYS: i64 = 31;

fn required_id(field: &str, raw: &str) -> Result<i64, AppError> {
    parse_id(field, raw)?.ok_or_else(|| AppError::field(field, "обязательный параметр"))
}

fn parse_date(field: &str, raw: &str) -> Result<NaiveDate, AppError> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| AppError::field(field, "дата в формате ГГГГ-ММ-ДД"))
}

/// An RFC 3339 instant with an offset.
pub fn parse_start(field: &str, raw: &str) -> Result<DateTime<Utc>, AppError> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            AppError::field(
                field,
                "время в формате RFC 3339 со смещением, например 2030-03-18T09:00:00+05:00",
            )
        })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScheduleQuery {
    #[serde(default)]
    #[param(value_type = i64, minimum = 1, required = true)]
    specialist_id: String,
    #[serde(default)]
    #[param(value_type = i64, minimum = 1, required = true)]
    branch_id: String,
    /// First day, in the branch's calendar.
    #[serde(default)]
    #[param(value_type = String, format = Date, required = true)]
    date_from: String,
    /// Last day (default: `date_from`); at most 31 days in all.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Date)]
    date_to: String,
}

/// The JSON of a window of days.
pub fn window_json(
    target: &reserve::BookingTarget,
    window: &crate::booking::schedule::Window,
) -> Value {
    let now = Utc::now();
    let days: Vec<Value> = window
        .days
        .iter()
        .map(|day| {
            let slots: Vec<Value> = day
                .slots(target.zone, now)
                .iter()
                .map(|s| json!({ "start": s.start.to_rfc3339(), "end": s.end.to_rfc3339(), "free": s.free }))
                .collect();
            json!({ "date": day.date.to_string(), "slots": slots })
        })
        .collect();
    json!({
        "specialist_id": target.specialist_id,
        "branch_id": target.branch_id,
        "timezone": target.zone.name(),
        "days": days,
        "source": window.source,
        "fetched_at": window.fetched_at.to_rfc3339(),
    })
}

/// A doctor's slots in a branch, in the branch's zone; `source` says where they came from.
#[utoipa::path(get, path = "/api/v1/specialist/schedule", tag = "booking", params(ScheduleQuery),
    responses((status = 200, description = "Days and slots", body = crate::api::openapi::ScheduleOut),
        (status = 404, description = "No such doctor or branch, or the doctor does not work there", body = crate::api::openapi::ErrorBody),
        (status = 422, description = "Bad ids or dates, or a window over 31 days", body = crate::api::openapi::ErrorBody),
        (status = 503, description = "The MIS is down and no copy is stored", body = crate::api::openapi::ErrorBody)))]
pub async fn show_schedule(
    State(state): State<AppState>,
    Query(query): Query<ScheduleQuery>,
) -> Result<Json<Value>, AppError> {
    let specialist_id = required_id("specialist_id", &query.specialist_id)?;
    let branch_id = required_id("branch_id", &query.branch_id)?;
    let from = parse_date("date_from", &query.date_from)?;
    let to = if query.date_to.trim().is_empty() {
        from
    } else {
        parse_date("date_to", &query.date_to)?
    };
    if to < from {
        return Err(AppError::field("date_to", "не раньше date_from"));
    }
    if (to - from).num_days() >= MAX_WINDOW_DAYS {
        return Err(AppError::field("date_to", "окно не больше 31 дня"));
    }
    let mut conn = state.db().await?;
    // For a read, a doctor or branch that does not exist, or a doctor who does not work in
    // that branch, has no schedule to show: 404.
    let target = reserve::resolve_target(&mut conn, specialist_id, branch_id)
        .await
        .map_err(|e| match e {
            AppError::Validation { .. } => AppError::NotFound,
            other => other,
        })?;
    drop(conn);
    let window = state
        .booking
        .schedule
        .window(&target.grid(), from, to)
        .await
        .map_err(|e| match e {
            crate::booking::schedule::ScheduleError::NoCopy(e) => reserve::mis_error(e),
            crate::booking::schedule::ScheduleError::Database(_) => {
                AppError::unavailable("database")
            }
        })?;
    Ok(Json(window_json(&target, &window)))
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientInput {
    #[schema(min_length = 1, max_length = 100)]
    last_name: String,
    #[schema(min_length = 1, max_length = 100)]
    first_name: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    middle_name: Option<String>,
    /// Any common format; Russian numbers may omit the country code.
    #[schema(min_length = 5, max_length = 32)]
    phone: String,
    #[serde(default)]
    #[schema(format = Date)]
    birth_date: Option<String>,
    #[serde(default)]
    #[schema(format = Email, max_length = 254)]
    email: Option<String>,
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnonymousReserve {
    #[schema(minimum = 1)]
    specialist_id: i64,
    #[schema(minimum = 1)]
    branch_id: i64,
    /// The slot's start as the schedule gives it (RFC 3339 with offset).
    #[schema(format = DateTime)]
    start: String,
    patient: PatientInput,
    #[serde(default)]
    #[schema(max_length = 500)]
    comment: Option<String>,
}

fn clean_name(field: &str, raw: &str, errors: &mut BTreeMap<String, String>) -> String {
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        errors.insert(field.into(), "обязательное поле".into());
    } else if name.chars().count() > 100 || name.chars().any(char::is_control) {
        errors.insert(
            field.into(),
            "не длиннее 100 символов, без управляющих символов".into(),
        );
    }
    name
}

impl PatientInput {
    fn validate(&self, errors: &mut BTreeMap<String, String>) -> PatientDetails {
        let last_name = clean_name("patient.last_name", &self.last_name, errors);
        let first_name = clean_name("patient.first_name", &self.first_name, errors);
        let middle_name = self
            .middle_name
            .as_deref()
            .filter(|m| !m.trim().is_empty())
            .map(|m| clean_name("patient.middle_name", m, errors));
        let phone = normalize_phone(&self.phone).unwrap_or_else(|| {
            errors.insert("patient.phone".into(), "некорректный номер телефона".into());
            String::new()
        });
        let birth_date = self
            .birth_date
            .as_deref()
            .filter(|d| !d.trim().is_empty())
            .and_then(|d| {
                let parsed = NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
                    .ok()
                    .filter(|d| *d <= Utc::now().date_naive());
                if parsed.is_none() {
                    errors.insert(
                        "patient.birth_date".into(),
                        "дата в формате ГГГГ-ММ-ДД, не в будущем".into(),
                    );
                }
                parsed
            });
        let email = self
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| {
                if e.len() > 254 || !email_address::EmailAddress::is_valid(e) {
                    errors.insert("patient.email".into(), "некорректный адрес".into());
                }
                e.to_lowercase()
            });
        PatientDetails {
            last_name,
            first_name,
            middle_name,
            phone,
            birth_date,
            email,
        }
    }
}

/// Control characters other than line breaks and tabs (a NUL would not even reach PostgreSQL).
fn has_control(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

fn fields_error(errors: BTreeMap<String, String>) -> AppError {
    let message = errors.iter().next().map_or_else(
        || "Проверьте данные".to_owned(),
        |(field, text)| format!("{field}: {text}"),
    );
    AppError::Validation {
        message,
        fields: errors,
    }
}

fn created(view: &RecordView) -> Response {
    (
        StatusCode::CREATED,
        Json(json!({ "record": record_json(view) })),
    )
        .into_response()
}

/// Books a free slot without an account; the patient gets an SMS.
#[utoipa::path(post, path = "/api/v1/specialist/anonymous-reserve", tag = "booking", request_body = AnonymousReserve,
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key returns the first answer")),
    responses(
        (status = 400, description = "Malformed JSON", body = crate::api::openapi::ErrorBody),
        (status = 413, description = "Body too large", body = crate::api::openapi::ErrorBody),
        (status = 415, description = "Not JSON", body = crate::api::openapi::ErrorBody),
        (status = 201, description = "Booked", body = crate::api::openapi::RecordEnvelope),
        (status = 409, description = "`slot_taken`, or `request_in_progress` for a key still running", body = crate::api::openapi::ErrorBody),
        (status = 422, description = "Invalid input, named by field", body = crate::api::openapi::ErrorBody),
        (status = 429, description = "Too many bookings from this address or for this phone", body = crate::api::openapi::ErrorBody),
        (status = 503, description = "`mis_unavailable`", body = crate::api::openapi::ErrorBody)))]
pub async fn reserve_anonymous(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<AnonymousReserve>,
) -> Result<Response, AppError> {
    let mut errors = BTreeMap::new();
    let patient = body.patient.validate(&mut errors);
    let start = parse_start("start", &body.start)
        .map_err(|e| errors.insert("start".into(), e.public_message()));
    let comment = body
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if comment.is_some_and(|c| c.chars().count() > 500 || has_control(c)) {
        errors.insert(
            "comment".into(),
            "не длиннее 500 символов, без управляющих символов".into(),
        );
    }
    if body.specialist_id <= 0 {
        errors.insert("specialist_id".into(), "положительное целое".into());
    }
    if body.branch_id <= 0 {
        errors.insert("branch_id".into(), "положительное целое".into());
    }
    let (Ok(start), true) = (start, errors.is_empty()) else {
        return Err(fields_error(errors));
    };
    let lock = match idempotent::begin(&state, &headers, "anon", &body).await? {
        Idempotent::Replay(status, answer) => return Ok((status, Json(answer)).into_response()),
        Idempotent::Run => None,
        Idempotent::Fresh { write, lock } => Some((write, lock)),
    };
    let (write, lock_key) = lock.map_or((None, None), |(w, l)| (Some(w), Some(l)));
    let result = async {
        let mut conn = state.db().await?;
        let target = reserve::resolve_target(&mut conn, body.specialist_id, body.branch_id).await?;
        drop(conn);
        // Input that is wrong anyway is refused before it counts against the limits; what
        // counts is every attempt that would reach the MIS and the SMS gateway.
        reserve::find_slot(&state, &target, start).await?;
        state.booking.limits.check(ip, &patient.phone).await?;
        let view = reserve::book(
            &state,
            BookRequest {
                target: &target,
                start,
                patient: &patient,
                user: None,
                comment,
                source: RecordSource::Anonymous,
                idempotency: write,
                ip,
            },
        )
        .await?;
        Ok::<_, AppError>(created(&view))
    }
    .await;
    if let Some(lock) = lock_key {
        idempotent::finish(&state, &lock).await;
    }
    result
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientReserve {
    #[schema(minimum = 1)]
    specialist_id: i64,
    #[schema(minimum = 1)]
    branch_id: i64,
    #[schema(format = DateTime)]
    start: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    comment: Option<String>,
}

fn require_patient(user: &User) -> Result<(), AppError> {
    if user.role() == Role::Patient {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

/// Books a free slot for the logged-in patient.
#[utoipa::path(post, path = "/api/v1/records", tag = "records", request_body = PatientReserve, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key returns the first answer")),
    responses(
        (status = 400, description = "Malformed JSON", body = crate::api::openapi::ErrorBody),
        (status = 413, description = "Body too large", body = crate::api::openapi::ErrorBody),
        (status = 415, description = "Not JSON", body = crate::api::openapi::ErrorBody),
        (status = 201, description = "Booked", body = crate::api::openapi::RecordEnvelope),
        (status = 401, description = "No valid token", body = crate::api::openapi::ErrorBody), (status = 403, description = "Not a patient", body = crate::api::openapi::ErrorBody),
        (status = 409, description = "`slot_taken`", body = crate::api::openapi::ErrorBody), (status = 422, description = "Invalid input", body = crate::api::openapi::ErrorBody),
        (status = 503, description = "`mis_unavailable`", body = crate::api::openapi::ErrorBody)))]
pub async fn create_record(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PatientReserve>,
) -> Result<Response, AppError> {
    require_patient(&user)?;
    let start = parse_start("start", &body.start)?;
    let comment = body
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if comment.is_some_and(|c| c.chars().count() > 500 || has_control(c)) {
        return Err(AppError::field(
            "comment",
            "не длиннее 500 символов, без управляющих символов",
        ));
    }
    let scope = format!("user:{}", user.id);
    let (write, lock_key) = match idempotent::begin(&state, &headers, &scope, &body).await? {
        Idempotent::Replay(status, answer) => return Ok((status, Json(answer)).into_response()),
        Idempotent::Run => (None, None),
        Idempotent::Fresh { write, lock } => (Some(write), Some(lock)),
    };
    let result = book_for_user(
        &state,
        &user,
        body.specialist_id,
        body.branch_id,
        start,
        comment,
        RecordSource::Api,
        write,
        ip,
    )
    .await
    .map(|view| created(&view));
    if let Some(lock) = lock_key {
        idempotent::finish(&state, &lock).await;
    }
    result
}

/// Books for a logged-in patient (the API and the doctor page share it).
#[allow(clippy::too_many_arguments)]
pub async fn book_for_user(
    app: &App,
    user: &User,
    specialist_id: i64,
    branch_id: i64,
    start: DateTime<Utc>,
    comment: Option<&str>,
    source: RecordSource,
    idempotency: Option<reserve::IdempotencyWrite>,
    ip: std::net::IpAddr,
) -> Result<RecordView, AppError> {
    let patient = PatientDetails::of_user(user)?;
    let mut conn = app.db().await?;
    let target = reserve::resolve_target(&mut conn, specialist_id, branch_id).await?;
    drop(conn);
    let view = reserve::book(
        app,
        BookRequest {
            target: &target,
            start,
            patient: &patient,
            user: Some(user),
            comment,
            source,
            idempotency,
            ip,
        },
    )
    .await?;
    Ok(view)
}

/// A record the user may see: their own, or any for staff and admins. Another patient's
/// record is a 404, so its existence is not revealed.
pub async fn visible_record(app: &App, user: &User, id: i64) -> Result<RecordView, AppError> {
    let mut conn = app.db().await?;
    let view = record::find_view(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)?;
    match user.role() {
        Role::Patient if view.record.user_id != Some(user.id) => Err(AppError::NotFound),
        _ => Ok(view),
    }
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordsQuery {
    /// `booked`, `cancelled`, `visited` or `no_show`.
    #[serde(default)]
    #[param(value_type = Option<String>, pattern = "^(booked|cancelled|visited|no_show)?$")]
    status: String,
    /// `YYYY-MM-DD`; empty means no bound.
    #[serde(default)]
    #[param(value_type = Option<String>, pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2})?$")]
    date_from: String,
    #[serde(default)]
    #[param(value_type = Option<String>, pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2})?$")]
    date_to: String,
    #[serde(default)]
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100000)]
    page: String,
    #[serde(default)]
    #[param(value_type = Option<i64>, minimum = 1)]
    specialist_id: String,
    #[serde(default)]
    #[param(value_type = Option<i64>, minimum = 1)]
    branch_id: String,
    /// Staff only: a phone fragment or a surname.
    #[serde(default)]
    #[param(value_type = Option<String>, max_length = 100)]
    q: String,
}

impl RecordsQuery {
    /// The same filters from a page's query string.
    pub fn from_parts(
        status: &str,
        date_from: &str,
        date_to: &str,
        page: &str,
        specialist_id: &str,
        branch_id: &str,
        q: &str,
    ) -> Self {
        Self {
            status: status.into(),
            date_from: date_from.into(),
            date_to: date_to.into(),
            page: page.into(),
            specialist_id: specialist_id.into(),
            branch_id: branch_id.into(),
            q: q.into(),
        }
    }
}

/// Records per page of the lists.
pub const PER_PAGE: i64 = 20;

/// Reads the list filters; `zone` turns dates into instants (the user's view of a day).
pub fn records_filter(query: &RecordsQuery, staff: bool) -> Result<(RecordFilter, i64), AppError> {
    let status = match query.status.as_str() {
        "" => None,
        s @ ("booked" | "cancelled" | "visited" | "no_show") => Some(s.to_owned()),
        _ => {
            return Err(AppError::field(
                "status",
                "booked, cancelled, visited или no_show",
            ));
        }
    };
    let day_start = |field: &str, raw: &str| -> Result<Option<DateTime<Utc>>, AppError> {
        if raw.is_empty() {
            return Ok(None);
        }
        let date = parse_date(field, raw)?;
        let moscow = chrono_tz::Tz::Europe__Moscow;
        Ok(
            crate::booking::grid::local_instant(moscow, date, chrono::NaiveTime::MIN)
                .map(|t| t.with_timezone(&Utc)),
        )
    };
    let from = day_start("date_from", &query.date_from)?;
    let to = day_start("date_to", &query.date_to)?.map(|t| t + chrono::Duration::days(1));
    let page = match query.page.trim() {
        "" => 1,
        p => p
            .parse::<i64>()
            .ok()
            .filter(|p| (1..=100_000).contains(p))
            .ok_or_else(|| AppError::field("page", "от 1"))?,
    };
    let (specialist_id, branch_id) = (
        parse_id("specialist_id", &query.specialist_id)?,
        parse_id("branch_id", &query.branch_id)?,
    );
    let q = query.q.trim();
    if q.chars().count() > 100 || q.chars().any(char::is_control) {
        return Err(AppError::field("q", "не длиннее 100 символов"));
    }
    let filter = RecordFilter {
        user_id: None,
        status,
        from,
        to,
        specialist_id,
        branch_id,
        query: (staff && !q.is_empty()).then(|| q.to_owned()),
    };
    Ok((filter, page))
}

/// Records: a patient's own; staff and admins see all.
#[utoipa::path(get, path = "/api/v1/records", tag = "records", params(RecordsQuery), security(("bearer" = [])),
    responses((status = 200, description = "One page", body = crate::api::openapi::RecordList),
        (status = 401, description = "No valid token", body = crate::api::openapi::ErrorBody), (status = 422, description = "A bad filter", body = crate::api::openapi::ErrorBody)))]
pub async fn list_records(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Query(query): Query<RecordsQuery>,
) -> Result<Json<Value>, AppError> {
    let staff = user.role() != Role::Patient;
    let (mut filter, page) = records_filter(&query, staff)?;
    if !staff {
        filter.user_id = Some(user.id);
    }
    let mut conn = state.db().await?;
    let (items, total) = record::list_views(&mut conn, &filter, page, PER_PAGE).await?;
    Ok(Json(json!({
        "items": items.iter().map(record_json).collect::<Vec<_>>(),
        "total": total,
        "page": page,
        "per_page": PER_PAGE,
    })))
}

/// One record with its SMS notification state; another patient's record is a 404.
#[utoipa::path(get, path = "/api/v1/records/{id}", tag = "records", params(("id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    responses((status = 200, description = "The record", body = crate::api::openapi::RecordOut),
        (status = 401, description = "No valid token", body = crate::api::openapi::ErrorBody), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody)))]
pub async fn show_record(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let view = visible_record(&state, &user, path_id(&id)?).await?;
    if user.role() != Role::Patient {
        crate::auth::login::audit(
            &state,
            Some(user.id),
            "record_viewed",
            &view.record.id.to_string(),
            ip,
        )
        .await;
    }
    let mut conn = state.db().await?;
    let messages = outbox::for_record(&mut conn, view.record.id).await?;
    Ok(Json(record_with_notification(&view, &messages)))
}

/// Cancels a booked, future record.
#[utoipa::path(post, path = "/api/v1/records/{id}/cancel", tag = "records", params(("id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    responses((status = 200, description = "Cancelled", body = crate::api::openapi::RecordOut),
        (status = 401, description = "No valid token", body = crate::api::openapi::ErrorBody), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody),
        (status = 409, description = "Already cancelled or in the past", body = crate::api::openapi::ErrorBody), (status = 503, description = "`mis_unavailable`", body = crate::api::openapi::ErrorBody)))]
pub async fn cancel_record(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let view = visible_record(&state, &user, path_id(&id)?).await?;
    let cancelled = reserve::cancel(&state, &view, Some(user.id), ip).await?;
    Ok(Json(record_json(&cancelled)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleBody {
    #[schema(format = DateTime)]
    start: String,
}

/// Moves a booked, future record to another free slot of the same doctor and branch.
#[utoipa::path(post, path = "/api/v1/records/{id}/reschedule", tag = "records", request_body = RescheduleBody,
    params(("id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    responses(
        (status = 400, description = "Malformed JSON", body = crate::api::openapi::ErrorBody),
        (status = 413, description = "Body too large", body = crate::api::openapi::ErrorBody),
        (status = 415, description = "Not JSON", body = crate::api::openapi::ErrorBody),
        (status = 200, description = "Moved", body = crate::api::openapi::RecordOut),
        (status = 401, description = "No valid token", body = crate::api::openapi::ErrorBody), (status = 404, description = "Not found", body = crate::api::openapi::ErrorBody),
        (status = 409, description = "`slot_taken`, cancelled or past", body = crate::api::openapi::ErrorBody), (status = 422, description = "Not a free slot", body = crate::api::openapi::ErrorBody),
        (status = 503, description = "`mis_unavailable`", body = crate::api::openapi::ErrorBody)))]
pub async fn reschedule_record(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RescheduleBody>,
) -> Result<Json<Value>, AppError> {
    let view = visible_record(&state, &user, path_id(&id)?).await?;
    let start = parse_start("start", &body.start)?;
    let moved = reserve::reschedule(&state, &view, start, Some(user.id), ip).await?;
    Ok(Json(record_json(&moved)))
}
