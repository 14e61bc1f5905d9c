//! Schedules and booking for the public site and patients: the slot grid, anonymous
//! booking, and a patient's own records (list, detail, book, cancel, move). Each handler
//! parses its input into the core's values, calls one `Booking` operation and answers with
//! a type of `api::types`.

use axum::{
    Json,
    extract::{OriginalUri, Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::{
    api::{
        idempotency::{Begin, IdempotencyKey},
        types::{ErrorBody, RecordDetailOut, RecordList, RecordOut, ScheduleOut},
    },
    app::AppState,
    auth::roles::{self, ApiUser, Role},
    client_ip::ClientIp,
    db::models::user::User,
    domain::{
        audit::{self, Actor},
        booking::{BookRequest, BookingError, Patient, reserve::UserBooking},
        consent::ConsentGiven,
        values::{
            BirthDate, Comment, Email, FieldErrors, FullName, Invalid, NamePart, Phone,
            RecordSource,
        },
    },
    error::AppError,
    extract::{Json as JsonBody, path_id},
    params::{self, ApiQuery, FromQuery, QueryPairs, RecordsParams},
};

/// Longest window of one schedule request, in days.
const MAX_WINDOW_DAYS: i64 = 31;

/// Which doctor, branch and days.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScheduleQuery {
    #[param(minimum = 1)]
    specialist_id: i64,
    #[param(minimum = 1)]
    branch_id: i64,
    /// First day, in the branch's calendar.
    date_from: NaiveDate,
    /// Last day (default: `date_from`); at most 31 days in all.
    date_to: Option<NaiveDate>,
}

impl FromQuery for ScheduleQuery {
    fn from_query(query: &QueryPairs<'_>) -> Result<Self, AppError> {
        let mut errors = FieldErrors::new();
        let specialist_id = errors.check(
            "specialist_id",
            query.value("specialist_id").and_then(params::required_id),
        );
        let branch_id = errors.check(
            "branch_id",
            query.value("branch_id").and_then(params::required_id),
        );
        let from = errors.check(
            "date_from",
            query.value("date_from").and_then(params::required_date),
        );
        let to = match query.value("date_to") {
            Ok("") => from,
            raw => errors.check("date_to", raw.and_then(params::date)),
        };
        if let (Some(from), Some(to)) = (from, to) {
            if to < from {
                errors.add("date_to", Invalid("Не раньше date_from"));
            } else if (to - from).num_days() >= MAX_WINDOW_DAYS {
                errors.add("date_to", Invalid("Окно не больше 31 дня"));
            }
        }
        Ok(errors.or_value(|| {
            Some(Self {
                specialist_id: specialist_id?,
                branch_id: branch_id?,
                date_from: from?,
                date_to: to,
            })
        })?)
    }
}

/// A doctor's slots in a branch, in the branch's zone; `source` says where they came from.
#[utoipa::path(get, path = "/api/v1/specialist/schedule", tag = "booking", params(ScheduleQuery),
    responses((status = 200, description = "Days and slots", body = ScheduleOut),
        (status = 404, description = "No such doctor or branch, or the doctor does not work there", body = ErrorBody),
        (status = 422, description = "Bad ids or dates, a window over 31 days, or days outside yesterday … today + `SCHEDULE_HORIZON_DAYS`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many reads that missed the cache from this address (`Retry-After`)", body = ErrorBody),
        (status = 503, description = "The MIS is down and no copy is stored", body = ErrorBody)))]
pub async fn show_schedule(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiQuery(query): ApiQuery<ScheduleQuery>,
) -> Result<Response, AppError> {
    let (specialist_id, branch_id) = (query.specialist_id, query.branch_id);
    let (from, to) = (query.date_from, query.date_to.unwrap_or(query.date_from));
    // For a read, a doctor or branch that does not exist, or a doctor who does not work in
    // that branch, has no schedule to show: 404. The directory in memory answers it.
    let target = state
        .booking
        .read_target(specialist_id, branch_id)
        .await
        .map_err(|e| match e {
            BookingError::Target(_) => AppError::NotFound,
            other => other.into(),
        })?;
    let window = state
        .booking
        .read_schedule(&target, from, to, Some(ip))
        .await?;
    // The hottest answer of the server: written from the days' ready JSON, the same bytes
    // as `ScheduleOut` would give.
    let body = ScheduleOut::body(&target, &window, state.booking.clock.now());
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
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
    /// `YYYY-MM-DD` (or `DD.MM.YYYY`), from 1900 and not in the future.
    #[serde(default)]
    #[schema(format = Date)]
    birth_date: Option<String>,
    #[serde(default)]
    #[schema(format = Email, max_length = 254)]
    email: Option<String>,
}

impl PatientInput {
    /// The patient, or the refusals under `patient.<field>`.
    fn parse(&self, today: NaiveDate, errors: &mut FieldErrors) -> Option<Patient> {
        let last = errors.check("patient.last_name", NamePart::parse(&self.last_name));
        let first = errors.check("patient.first_name", NamePart::parse(&self.first_name));
        let middle = errors.check(
            "patient.middle_name",
            NamePart::parse_optional(self.middle_name.as_deref()),
        );
        let phone = errors.check("patient.phone", Phone::parse(&self.phone));
        let birth_date = errors.check(
            "patient.birth_date",
            BirthDate::parse_optional(self.birth_date.as_deref(), today),
        );
        let email = errors.check(
            "patient.email",
            match self.email.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(raw) => Email::parse(raw).map(Some),
            },
        );
        Some(Patient {
            name: FullName::from_parts(last?, first?, middle?),
            phone: phone?,
            birth_date: birth_date?,
            email: email?,
            mis_pcode: None,
        })
    }
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
    /// The proof of `patient.phone` from `POST /api/v1/phone-verifications/{id}/confirm`
    /// (purpose `booking`); required unless the clinic runs `ANONYMOUS_BOOKING_VERIFY=off`.
    #[serde(default)]
    phone_token: Option<String>,
    /// Consent to the processing of personal data and of health data; both are required
    /// and recorded with the current versions of the texts (`GET /api/v1/consent-texts`).
    #[serde(default)]
    consent: Option<ConsentInput>,
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    personal_data: bool,
    health_data: bool,
}

impl ConsentInput {
    fn parse(input: Option<&Self>) -> Result<ConsentGiven, Invalid> {
        let given = input.map_or_else(ConsentGiven::default, |c| ConsentGiven {
            personal_data: c.personal_data,
            health_data: c.health_data,
        });
        given.require_both()
    }
}

fn positive(id: i64) -> Result<i64, Invalid> {
    if id > 0 {
        Ok(id)
    } else {
        Err(Invalid("Должен быть положительным целым числом"))
    }
}

/// A 201 with the record's address in `Location` (also when a stored answer is replayed).
fn created(answer: serde_json::Value) -> Response {
    let location = answer["id"]
        .as_i64()
        .map(|id| format!("/api/v1/records/{id}"));
    let mut response = (StatusCode::CREATED, Json(answer)).into_response();
    if let Some(value) = location.and_then(|l| axum::http::HeaderValue::from_str(&l).ok()) {
        response
            .headers_mut()
            .insert(axum::http::header::LOCATION, value);
    }
    response
}

/// A first answer again, for a retry with the same `Idempotency-Key`.
fn replay(status: StatusCode, answer: serde_json::Value) -> Response {
    if status == StatusCode::CREATED {
        return created(answer);
    }
    (status, Json(answer)).into_response()
}

/// Books a free slot without an account, with the proof of the patient's phone and their
/// consent; the patient gets an SMS with a link to cancel or move the visit.
#[utoipa::path(post, path = "/api/v1/specialist/anonymous-reserve", tag = "booking", request_body = AnonymousReserve,
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key returns the first answer")),
    responses(
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 201, description = "Booked", body = RecordOut,
            headers(("Location" = String, description = "The record: `/api/v1/records/{id}`"))),
        (status = 409, description = "`slot_taken`, or `request_in_progress` for a key still running", body = ErrorBody),
        (status = 422, description = "Invalid input, named by field: also `phone_token` (missing, unknown, expired, used, for another phone or purpose) and `consent`", body = ErrorBody),
        (status = 429, description = "Too many bookings from this address or for this phone, or too many SMS to this phone today", body = ErrorBody),
        (status = 503, description = "`mis_unavailable`", body = ErrorBody)))]
pub async fn reserve_anonymous(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    key: IdempotencyKey,
    JsonBody(body): JsonBody<AnonymousReserve>,
) -> Result<Response, AppError> {
    let today = state.booking.clock.now().date_naive();
    let mut errors = FieldErrors::new();
    let patient = body.patient.parse(today, &mut errors);
    let start = errors.check("start", params::instant(&body.start));
    let comment = errors.check("comment", Comment::parse_optional(body.comment.as_deref()));
    let specialist_id = errors.check("specialist_id", positive(body.specialist_id));
    let branch_id = errors.check("branch_id", positive(body.branch_id));
    let consent = errors.check("consent", ConsentInput::parse(body.consent.as_ref()));
    let (patient, start, comment, specialist_id, branch_id, consent) = errors.or_value(|| {
        Some((
            patient?,
            start?,
            comment?,
            specialist_id?,
            branch_id?,
            consent?,
        ))
    })?;
    // Keys are the caller's own: a visitor is known by the proof of their phone (or, without
    // codes, by the phone), so nobody else's key can clash with theirs or replay their answer.
    let caller = body
        .phone_token
        .as_deref()
        .unwrap_or_else(|| patient.phone.as_str());
    let scope = format!("anon:{}", crate::domain::rate::digest(caller));
    let keep = match key
        .begin(&state, &scope, &body, StatusCode::CREATED, RecordOut::json)
        .await?
    {
        Begin::Replay(status, answer) => return Ok(replay(status, answer)),
        Begin::Run(keep) => keep,
    };
    let booked = state
        .booking
        .book_anonymous(
            BookRequest {
                specialist_id,
                branch_id,
                start,
                patient: &patient,
                user: None,
                comment: comment.as_ref(),
                source: RecordSource::Anonymous,
                keep_answer: keep,
                actor: Actor { user_id: None, ip },
            },
            body.phone_token.as_deref(),
            consent,
        )
        .await?;
    Ok(created(RecordOut::json(&booked.view)))
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

/// Booking for oneself is a patient's: staff and admins get a 403, audited like the pages'
/// role gates (`access_denied`, the path as the subject).
async fn require_patient(
    state: &AppState,
    user: &User,
    ip: std::net::IpAddr,
) -> Result<(), AppError> {
    if user.role() == Role::Patient {
        Ok(())
    } else {
        Err(roles::refuse_role(state, user, ip, "/api/v1/records").await)
    }
}

/// Books a free slot for the logged-in patient.
#[utoipa::path(post, path = "/api/v1/records", tag = "records", request_body = PatientReserve, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key returns the first answer")),
    responses(
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 201, description = "Booked", body = RecordOut,
            headers(("Location" = String, description = "The record: `/api/v1/records/{id}`"))),
        (status = 401, description = "`unauthorized` (no valid token) or `token_expired`", body = ErrorBody), (status = 403, description = "Not a patient", body = ErrorBody),
        (status = 409, description = "`slot_taken`, or `too_many_upcoming` (at most `MAX_ACTIVE_RECORDS_PER_PATIENT` visits ahead)", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody),
        (status = 429, description = "Too many bookings today, or too many SMS to the phone today", body = ErrorBody),
        (status = 503, description = "`mis_unavailable`", body = ErrorBody)))]
pub async fn create_record(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ClientIp(ip): ClientIp,
    key: IdempotencyKey,
    JsonBody(body): JsonBody<PatientReserve>,
) -> Result<Response, AppError> {
    require_patient(&state, &user, ip).await?;
    let mut errors = FieldErrors::new();
    let start = errors.check("start", params::instant(&body.start));
    let comment = errors.check("comment", Comment::parse_optional(body.comment.as_deref()));
    let specialist_id = errors.check("specialist_id", positive(body.specialist_id));
    let branch_id = errors.check("branch_id", positive(body.branch_id));
    let (start, comment, specialist_id, branch_id) =
        errors.or_value(|| Some((start?, comment?, specialist_id?, branch_id?)))?;
    let scope = format!("user:{}", user.id);
    let keep = match key
        .begin(&state, &scope, &body, StatusCode::CREATED, RecordOut::json)
        .await?
    {
        Begin::Replay(status, answer) => return Ok(replay(status, answer)),
        Begin::Run(keep) => keep,
    };
    let view = state
        .booking
        .book_for_user(
            &user,
            UserBooking {
                specialist_id,
                branch_id,
                start,
                comment: comment.as_ref(),
                source: RecordSource::Api,
                keep_answer: keep,
                ip,
            },
        )
        .await?;
    Ok(created(RecordOut::json(&view)))
}

/// Records: a patient's own; staff and admins see all.
#[utoipa::path(get, path = "/api/v1/records", tag = "records", params(RecordsParams), security(("bearer" = [])),
    responses((status = 200, description = "One page", body = RecordList),
        (status = 401, description = "`unauthorized` (no valid token) or `token_expired`", body = ErrorBody), (status = 422, description = "A bad filter", body = ErrorBody)))]
pub async fn list_records(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ClientIp(ip): ClientIp,
    ApiQuery(params): ApiQuery<RecordsParams>,
) -> Result<Json<RecordList>, AppError> {
    let page = state
        .booking
        .list_records(&user, &params.query(), params.page)
        .await?;
    if user.role().is_staff() {
        // A staff list shows other people's visits: each patient with an account on the
        // page finds it in their access log (`details.patients`, account ids as numbers).
        let mut patients: Vec<i64> = page.items.iter().filter_map(|v| v.record.user_id).collect();
        patients.sort_unstable();
        patients.dedup();
        audit::append_with(
            &state.db,
            Actor::user(&user, ip),
            "records_listed",
            "/api/v1/records",
            serde_json::json!({ "patients": patients, "page": page.page.get() }),
        )
        .await;
    }
    Ok(Json(RecordList::from(&page)))
}

/// One record with its SMS notification state; another patient's record is a 404.
#[utoipa::path(get, path = "/api/v1/records/{id}", tag = "records", params(("id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    responses((status = 200, description = "The record", body = RecordDetailOut),
        (status = 401, description = "`unauthorized` (no valid token) or `token_expired`", body = ErrorBody), (status = 404, description = "Not found", body = ErrorBody)))]
pub async fn show_record(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ClientIp(ip): ClientIp,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
) -> Result<Json<RecordDetailOut>, AppError> {
    let id = path_id(&id)?;
    let (view, messages) = match state.booking.record_with_messages(&user, id).await {
        Ok(found) => found,
        Err(e) => return Err(roles::refuse_record(&state, &user, ip, uri.path(), id, e).await),
    };
    if user.role().is_staff() {
        let actor = Actor {
            user_id: Some(user.id),
            ip,
        };
        audit::append(
            &state.db,
            actor,
            "record_viewed",
            &view.record.id.to_string(),
        )
        .await;
    }
    Ok(Json(RecordDetailOut::new(&view, &messages)))
}

/// Cancels a booked, future record.
#[utoipa::path(post, path = "/api/v1/records/{id}/cancel", tag = "records", params(("id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    responses((status = 200, description = "Cancelled", body = RecordOut),
        (status = 401, description = "`unauthorized` (no valid token) or `token_expired`", body = ErrorBody), (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Already cancelled or in the past", body = ErrorBody), (status = 503, description = "`mis_unavailable`", body = ErrorBody)))]
pub async fn cancel_record(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ClientIp(ip): ClientIp,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
) -> Result<Json<RecordOut>, AppError> {
    let id = path_id(&id)?;
    let cancelled = match state.booking.cancel_record(&user, id, None, ip).await {
        Ok(cancelled) => cancelled,
        Err(e) => return Err(roles::refuse_record(&state, &user, ip, uri.path(), id, e).await),
    };
    Ok(Json(RecordOut::from(&cancelled)))
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
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 200, description = "Moved", body = RecordOut),
        (status = 401, description = "`unauthorized` (no valid token) or `token_expired`", body = ErrorBody), (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "`slot_taken`, cancelled or past", body = ErrorBody), (status = 422, description = "Not a free slot", body = ErrorBody),
        (status = 503, description = "`mis_unavailable`", body = ErrorBody)))]
pub async fn reschedule_record(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    ClientIp(ip): ClientIp,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RescheduleBody>,
) -> Result<Json<RecordOut>, AppError> {
    let id = path_id(&id)?;
    let start = params::field("start", params::instant(&body.start))?;
    let moved = match state.booking.reschedule_record(&user, id, start, ip).await {
        Ok(moved) => moved,
        Err(e) => return Err(roles::refuse_record(&state, &user, ip, uri.path(), id, e).await),
    };
    Ok(Json(RecordOut::from(&moved)))
}
