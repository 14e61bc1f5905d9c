//! The OpenAPI 3.1 document of `/api/v1`, built with utoipa from the handlers' annotations;
//! served at `/api/v1/openapi.json` and printed by `sovamed openapi`. The bodies are the
//! types the handlers send (`api::types`, `api::directory`), so the document cannot drift.

use axum::Json;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::api::{booking, directory, phones, user};

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
        user::refresh,
        user::log_out,
        user::show_me,
        directory::list_branches,
        directory::list_specialities,
        directory::list_specialists,
        directory::show_specialist,
        directory::list_specialist_reviews,
        directory::list_prices,
        booking::show_schedule,
        phones::start_verification,
        phones::confirm_verification,
        phones::list_consent_texts,
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
        (name = "phones", description = "Proving a phone by an SMS code; consent texts"),
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
