//! The OpenAPI 3.1 document of `/api/v1`, built with utoipa from the handlers' annotations;
//! served at `/api/v1/openapi.json` and printed by `sovamed openapi`. The types here only
//! describe answers that handlers build as JSON values.

use std::collections::BTreeMap;

use axum::Json;
use utoipa::{
    IntoParams, Modify, OpenApi, ToSchema,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::api::{booking, directory, user};

/// Every error: a stable snake_case `code`, a message, and per-field texts for 422.
#[derive(ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(ToSchema)]
pub struct ErrorDetail {
    /// `unauthorized`, `forbidden`, `not_found`, `validation_failed`, `slot_taken`, `conflict`,
    /// `request_in_progress`, `rate_limited`, `mis_unavailable`, `service_unavailable`,
    /// `bad_request`, `method_not_allowed`, `payload_too_large`, `unsupported_media_type`, `internal`.
    pub code: String,
    pub message: String,
    pub fields: Option<BTreeMap<String, String>>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum RecordStatus {
    Booked,
    Cancelled,
    Visited,
    NoShow,
}

#[derive(ToSchema)]
pub struct RecordSpecialist {
    pub id: i64,
    pub full_name: String,
}

#[derive(ToSchema)]
pub struct RecordBranch {
    pub id: i64,
    pub name: String,
    pub address: String,
}

#[derive(ToSchema)]
pub struct RecordPatient {
    pub full_name: String,
    /// `+7916***4567`: enough to recognise, not to reuse.
    pub phone_masked: String,
}

#[derive(ToSchema)]
pub struct Notification {
    /// `booked`, `moved` or `cancelled`.
    pub kind: String,
    /// `pending`, `sending`, `sent` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// A record; times are RFC 3339 with the branch's offset.
#[derive(ToSchema)]
pub struct RecordOut {
    pub id: i64,
    /// The appointment id in the MIS (`SCHEDID`).
    pub mis_id: i64,
    pub status: RecordStatus,
    #[schema(format = DateTime)]
    pub start: String,
    #[schema(format = DateTime)]
    pub end: String,
    /// The branch's IANA zone.
    pub timezone: String,
    pub specialist: RecordSpecialist,
    pub branch: RecordBranch,
    pub patient: RecordPatient,
    /// `cabinet`, `anonymous` or `api`.
    pub source: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The latest SMS about the record (detail only).
    pub notification: Option<Notification>,
}

#[derive(ToSchema)]
pub struct RecordEnvelope {
    pub record: RecordOut,
}

#[derive(ToSchema)]
pub struct RecordList {
    pub items: Vec<RecordOut>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

#[derive(ToSchema)]
pub struct SlotOut {
    #[schema(format = DateTime)]
    pub start: String,
    #[schema(format = DateTime)]
    pub end: String,
    /// Bookable now (never for a slot in the past).
    pub free: bool,
}

#[derive(ToSchema)]
pub struct DayOut {
    #[schema(format = Date)]
    pub date: String,
    pub slots: Vec<SlotOut>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ScheduleSource {
    Cache,
    Mis,
    Stale,
}

#[derive(ToSchema)]
pub struct ScheduleOut {
    pub specialist_id: i64,
    pub branch_id: i64,
    pub timezone: String,
    pub days: Vec<DayOut>,
    pub source: ScheduleSource,
    #[schema(format = DateTime)]
    pub fetched_at: String,
}

/// Filters of `GET /api/v1/specialists`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SpecialistFilterParams {
    #[param(minimum = 1)]
    pub speciality_id: Option<i64>,
    #[param(minimum = 1)]
    pub branch_id: Option<i64>,
    /// A part of the name, at most 100 characters.
    #[param(max_length = 100)]
    pub q: Option<String>,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "sovamed API", description = "Doctors, schedules, booking and records of the clinic network."),
    paths(
        user::log_in,
        user::show_me,
        directory::list_branches,
        directory::list_specialities,
        directory::list_specialists,
        directory::show_specialist,
        directory::list_specialist_reviews,
        directory::list_prices,
        booking::show_schedule,
        booking::reserve_anonymous,
        booking::create_record,
        booking::list_records,
        booking::show_record,
        booking::cancel_record,
        booking::reschedule_record,
        show_openapi,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "user", description = "Login and the current account"),
        (name = "directory", description = "Branches, specialities, doctors, reviews, prices"),
        (name = "booking", description = "Schedules and anonymous booking"),
        (name = "records", description = "A patient's records; all records for staff"),
    )
)]
pub struct ApiDoc;

/// The document as a JSON value.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "user",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn show_openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
