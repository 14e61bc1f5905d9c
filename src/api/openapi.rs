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

/// A request and an answer for every operation, recorded from the demo server
/// (`src/api/examples.json`, keyed by `"METHOD /path"`), put into the document as the
/// `example` of the request body and of the success answer. `scripts/check-openapi-examples.py`
/// validates each against its schema in CI; a unit test below checks that none is missing.
struct Examples;

const EXAMPLES: &str = include_str!("examples.json");

impl Modify for Examples {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Ok(serde_json::Value::Object(examples)) = serde_json::from_str(EXAMPLES) else {
            return;
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                ("GET", item.get.as_mut()),
                ("POST", item.post.as_mut()),
                ("PUT", item.put.as_mut()),
                ("DELETE", item.delete.as_mut()),
            ];
            for (method, operation) in operations {
                let (Some(operation), Some(example)) =
                    (operation, examples.get(&format!("{method} {path}")))
                else {
                    continue;
                };
                if let (Some(body), Some(request)) =
                    (operation.request_body.as_mut(), example.get("request"))
                {
                    for content in body.content.values_mut() {
                        content.example = Some(request.clone());
                    }
                }
                let Some(answer) = example.get("response") else {
                    continue;
                };
                for (status, response) in operation.responses.responses.iter_mut() {
                    if let (true, utoipa::openapi::RefOr::T(response)) =
                        (status.starts_with('2'), response)
                    {
                        for content in response.content.values_mut() {
                            content.example = Some(answer.clone());
                        }
                    }
                }
            }
        }
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
    modifiers(&BearerAuth, &Examples),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every request body and every success answer with content carries an example, except
    /// the document itself (its answer is this document).
    #[test]
    fn every_operation_has_its_examples() {
        let document = serde_json::to_value(document()).expect("document");
        let mut missing = Vec::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            if path == "/api/v1/openapi.json" {
                continue;
            }
            for (method, operation) in item.as_object().expect("item") {
                let name = format!("{} {path}", method.to_uppercase());
                if let Some(content) = operation["requestBody"]["content"].as_object()
                    && content.values().any(|c| c.get("example").is_none())
                {
                    missing.push(format!("{name}: request"));
                }
                for (status, response) in operation["responses"].as_object().expect("responses") {
                    let Some(content) = response["content"].as_object() else {
                        continue;
                    };
                    if status.starts_with('2')
                        && content.values().any(|c| c.get("example").is_none())
                    {
                        missing.push(format!("{name}: {status}"));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "operations without examples: {missing:?}"
        );
    }
}
