//! Every route in one place: public pages, role-gated page groups, `/api/v1`, static files
//! and the operations endpoints, with the layers each group needs.

use std::time::Duration;

use axum::{
    Router,
    body::Body,
    extract::Request as AnyRequest,
    extract::{DefaultBodyLimit, State},
    http::{HeaderName, HeaderValue, Request, header},
    middleware::{Next, from_fn, from_fn_with_state},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    trace::TraceLayer,
};
use tower_sessions::{Expiry, SessionManagerLayer, cookie::SameSite};

use crate::{
    api,
    app::AppState,
    auth::{csrf, roles},
    error::AppError,
    ops, static_files,
    web::{self, errors},
};

/// Bodies larger than this are refused with 413 before any handler parses them.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// The schedule read's full path (see `build`: routed beside the API's nest, not in it).
const API_SCHEDULE_PATH: &str = "/api/v1/specialist/schedule";

/// The Content-Security-Policy of every response: only our own scripts and styles; images
/// also from the CMS site, where doctors' photos live.
fn content_security_policy(cms_url: Option<&str>) -> HeaderValue {
    let cms_origin = cms_url
        .and_then(|url| reqwest::Url::parse(url).ok())
        .map(|url| url.origin().ascii_serialization())
        .filter(|origin| origin != "null")
        .map(|origin| format!(" {origin}"))
        .unwrap_or_default();
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:{cms_origin}; \
         connect-src 'self'; form-action 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static(
        "default-src 'self'; object-src 'none'",
    ))
}

pub fn build(state: AppState) -> Router {
    let config = &state.config;
    let session_layer = SessionManagerLayer::new(state.sessions.clone())
        .with_name(session_cookie_name(config.is_production()))
        .with_secure(config.is_production())
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(time::Duration::seconds(
            i64::try_from(config.session_idle.as_secs()).unwrap_or(i64::MAX),
        )))
        // Saving on every request moves the idle deadline forward while the user is active.
        .with_always_save(true);

    let patient_pages = Router::new()
        .route("/cabinet", get(web::cabinet::show_cabinet))
        .route("/cabinet/records", get(web::booking::list_my_records))
        .route("/cabinet/records/{id}", get(web::my_record::show_my_record))
        .route(
            "/cabinet/records/{id}/calendar.ics",
            get(web::calendar::download_record_calendar),
        )
        .route(
            "/cabinet/calendar",
            get(web::calendar::show_calendar_settings).post(web::calendar::issue_calendar_feed),
        )
        .route(
            "/cabinet/calendar/off",
            post(web::calendar::revoke_calendar_feed),
        )
        .route(
            "/cabinet/records/{id}/cancel",
            get(web::my_record::show_cancel_my_record).post(web::my_record::cancel_my_record),
        )
        .route(
            "/cabinet/records/{id}/reschedule",
            post(web::my_record::reschedule_my_record),
        )
        .route("/cabinet/profile", get(web::profile::show_profile))
        .route(
            "/cabinet/profile/password",
            post(web::profile::change_password),
        )
        .route(
            "/cabinet/profile/details",
            post(web::profile::change_details),
        )
        .route(
            "/cabinet/profile/phone",
            post(web::profile::start_phone_change),
        )
        .route(
            "/cabinet/access-log",
            get(web::data_rights::show_access_log),
        )
        .route("/cabinet/my-data", get(web::data_rights::show_my_data))
        .route(
            "/cabinet/my-data.json",
            get(web::data_rights::download_my_data),
        )
        .route(
            "/cabinet/consents/{purpose}/withdraw",
            post(web::data_rights::withdraw_consent),
        )
        .route(
            "/cabinet/consent",
            get(web::data_rights::show_consent_form).post(web::data_rights::give_consent),
        )
        .route(
            "/cabinet/delete",
            get(web::deletion::show_delete_account).post(web::deletion::request_account_deletion),
        )
        .route_layer(from_fn_with_state(state.clone(), roles::require_patient));
    let staff_pages = Router::new()
        .route("/staff", get(web::desk::show_desk))
        .route("/staff/branch", post(web::desk::set_desk_branch))
        .route("/staff/day", get(web::desk::show_doctor_day))
        .route("/staff/callers", get(web::desk::find_callers))
        .route("/staff/caller", post(web::desk::choose_caller))
        .route("/staff/caller/new", post(web::desk::add_caller))
        .route("/staff/caller/forget", post(web::desk::forget_caller))
        .route(
            "/staff/book",
            get(web::desk::show_desk_booking).post(web::desk::book_for_caller),
        )
        .route("/staff/sync", get(web::staff::show_sync_status))
        .route("/staff/records", get(web::booking::list_staff_records))
        .route("/staff/records.csv", get(web::export::export_staff_records))
        .route(
            "/staff/records.xlsx",
            get(web::export::export_staff_records_xlsx),
        )
        .route(
            "/staff/records/{id}",
            get(web::desk_record::show_staff_record),
        )
        .route(
            "/staff/records/{id}/move",
            post(web::desk_record::move_staff_record),
        )
        .route(
            "/staff/records/{id}/sms/{message_id}/resend",
            post(web::desk_record::resend_record_sms),
        )
        .route(
            "/staff/records/{id}/outcome",
            post(web::desk_record::mark_staff_record_outcome),
        )
        .route(
            "/staff/records/{id}/cancel",
            post(web::desk_record::cancel_staff_record),
        )
        .route_layer(from_fn_with_state(state.clone(), roles::require_staff));
    let admin_pages = Router::new()
        .route("/admin", get(web::admin::show_admin_home))
        .route("/admin/sync", post(web::staff::run_sync_now))
        .route("/admin/audit", get(web::audit::show_audit))
        .route(
            "/admin/users",
            get(web::admin::list_users).post(web::admin::invite_user),
        )
        .route("/admin/users/{id}", get(web::admin::show_user))
        .route("/admin/users/{id}/invite", post(web::admin::reinvite_user))
        .route("/admin/users/{id}/role", post(web::admin::change_role))
        .route("/admin/users/{id}/disable", post(web::admin::disable_user))
        .route("/admin/users/{id}/enable", post(web::admin::enable_user))
        .route(
            "/admin/users/{id}/password",
            post(web::admin::reset_password),
        )
        .route(
            "/admin/users/{id}/sessions/end",
            post(web::admin::end_user_sessions),
        )
        .route_layer(from_fn_with_state(state.clone(), roles::require_admin));
    // Any logged-in role (past its second factor, where the role has one).
    let account_pages = Router::new()
        .route("/account/sessions", get(web::sessions::show_sessions))
        .route(
            "/account/sessions/end-others",
            post(web::sessions::end_other_sessions),
        )
        .route(
            "/account/sessions/{id}/end",
            post(web::sessions::end_session),
        )
        .route_layer(from_fn_with_state(state.clone(), roles::require_login));

    let pages = Router::new()
        .route("/", get(web::home::show_home))
        .route("/login", get(web::auth::show_login).post(web::auth::log_in))
        .route(
            "/logout",
            get(web::auth::show_logout).post(web::auth::log_out),
        )
        // The second step of sign-in; each handler serves only a session that passed the
        // password and waits for its second factor.
        .route("/mfa", get(web::mfa::show_mfa).post(web::mfa::check_mfa))
        .route(
            "/mfa/setup",
            get(web::mfa::show_mfa_setup).post(web::mfa::confirm_mfa_setup),
        )
        .route(
            "/register",
            get(web::auth::show_register).post(web::auth::register),
        )
        .route("/doctors", get(web::doctors::list_doctors))
        .route("/doctors/{id}", get(web::doctors::show_doctor))
        .route(
            "/doctors/{id}/reviews",
            get(web::doctors::list_doctor_reviews),
        )
        .route("/doctors/{id}/slots", get(web::slots::show_doctor_slots))
        // Anyone: a patient confirms and books, a visitor gets the form without an account.
        .route(
            "/doctors/{id}/book",
            get(web::booking::show_booking_confirm).post(web::booking::book_slot),
        )
        .route(
            "/doctors/{id}/book/anonymous",
            post(web::anonymous::start_anonymous_booking),
        )
        .route(
            "/phone-code",
            get(web::verify::show_code_form).post(web::verify::check_code),
        )
        .route("/phone-code/resend", post(web::verify::resend_code))
        .route("/phone-code/cancel", post(web::verify::cancel_code))
        .route("/v/{token}", get(web::visit::show_visit))
        .route(
            "/v/{token}/cancel",
            get(web::visit::show_cancel_visit).post(web::visit::cancel_visit),
        )
        .route("/v/{token}/move", post(web::visit::move_visit))
        .route(
            "/v/{token}/calendar.ics",
            get(web::calendar::download_visit_calendar),
        )
        // A patient's calendar feed, `/calendar/<token>.ics` (a route parameter cannot carry
        // a suffix, so the handler takes `.ics` off): no login, the address is the key.
        .route("/calendar/{file}", get(web::calendar::serve_calendar_feed))
        .route(
            "/password/forgot",
            get(web::auth::show_forgot).post(web::auth::start_reset),
        )
        .route(
            "/password/reset",
            get(web::auth::show_reset).post(web::auth::reset_password),
        )
        .route("/consent/{purpose}", get(web::consent::show_consent))
        // Whoever holds the link an admin handed over (staff and admins being invited).
        .route(
            "/invite/{token}",
            get(web::invite::show_invitation).post(web::invite::accept_invitation),
        )
        .merge(patient_pages)
        .merge(staff_pages)
        .merge(admin_pages)
        .merge(account_pages)
        .fallback(errors::page_not_found)
        .method_not_allowed_fallback(errors::method_not_allowed)
        .layer(from_fn(csrf::verify_csrf))
        .layer(session_layer)
        .layer(from_fn(errors::render_html_errors));

    let api = Router::new()
        .route("/user/login", post(api::user::log_in))
        .route("/user/refresh", post(api::user::refresh))
        .route("/user/logout", post(api::user::log_out))
        .route("/user/me", get(api::user::show_me))
        .route("/openapi.json", get(api::openapi::show_openapi))
        .route("/branches", get(api::directory::list_branches))
        .route("/specialities", get(api::directory::list_specialities))
        .route("/specialists", get(api::directory::list_specialists))
        .route("/specialists/{id}", get(api::directory::show_specialist))
        .route(
            "/specialists/{id}/reviews",
            get(api::directory::list_specialist_reviews),
        )
        .route("/prices", get(api::directory::list_prices))
        .route(
            "/phone-verifications",
            post(api::phones::start_verification),
        )
        .route(
            "/phone-verifications/{id}/confirm",
            post(api::phones::confirm_verification),
        )
        .route("/consent-texts", get(api::phones::list_consent_texts))
        .route(
            "/specialist/anonymous-reserve",
            post(api::booking::reserve_anonymous),
        )
        .route(
            "/records",
            get(api::booking::list_records).post(api::booking::create_record),
        )
        .route("/records/{id}", get(api::booking::show_record))
        .route("/records/{id}/cancel", post(api::booking::cancel_record))
        .route(
            "/records/{id}/reschedule",
            post(api::booking::reschedule_record),
        )
        .fallback(api::api_not_found)
        .method_not_allowed_fallback(api::api_method_not_allowed);
    // The hottest route of all, the website's free-time read, is routed by its full path
    // rather than through the nest: no second routing, no rebuilt URI per request. It keeps
    // the API's 405 answer and CORS.
    let schedule = get(api::booking::show_schedule).fallback(api::api_method_not_allowed);
    // Only the API, only for the configured origins: pages stay same-origin.
    let (api, schedule) = match cors_layer(&config.cors_allowed_origins) {
        Some(cors) => (api.layer(cors.clone()), schedule.layer(cors)),
        None => (api, schedule),
    };

    let mut router = Router::new();
    if config.bench_routes {
        // `just bench`'s HTTP floor: the cheapest route, behind the same layers as all others.
        router = router.route("/__bench/hello", get(ops::bench_hello));
    }
    let mut router = router
        .route("/healthz", get(ops::show_health))
        .route("/readyz", get(ops::show_readiness))
        .route("/metrics", get(ops::show_metrics))
        .route("/static/{*path}", get(static_files::serve_static))
        .route(API_SCHEDULE_PATH, schedule)
        .nest("/api/v1", api)
        .merge(pages)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // After routing, so the route template is known.
        .route_layer(from_fn(crate::telemetry::metrics::track_requests));
    for (name, value) in security_headers_list(config.is_production(), config.bitrix_url.as_deref())
    {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, value));
    }
    router
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<Body>| {
                    let request_id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    // The path only, with link tokens cut out: query strings and secrets are
                    // never logged.
                    let path = crate::telemetry::loggable_path(request.uri().path());
                    tracing::info_span!("request", method = %request.method(), path = %path, request_id)
                }))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(from_fn_with_state(config.request_timeout, limit_request_time)),
        )
        .with_state(state)
}

/// Ends a request that runs past `REQUEST_TIMEOUT_SECONDS` with a 503 in the error shape
/// (code `timeout`) and a warn-level line naming the route and the request id. Work the
/// request started in the core (a booking, a move) runs on to its end regardless.
async fn limit_request_time(
    State(limit): State<Duration>,
    request: AnyRequest,
    next: Next,
) -> Response {
    let path = crate::telemetry::loggable_path(request.uri().path()).into_owned();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let served = crate::domain::audit::with_request_id(
        (!request_id.is_empty()).then(|| request_id.clone()),
        tokio::time::timeout(limit, next.run(request)),
    );
    match served.await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                path,
                request_id,
                limit_secs = limit.as_secs(),
                "request timed out"
            );
            AppError::Unavailable {
                what: "сервер не успел ответить вовремя",
                code: "timeout",
            }
            .into_response()
        }
    }
}

/// CORS for the website's origins: bearer tokens, no cookies (credentials not allowed); the
/// headers a booking client sends, and those it needs to read, allowed and exposed.
fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};

    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
            ])
            .expose_headers([
                header::RETRY_AFTER,
                header::LOCATION,
                HeaderName::from_static("x-request-id"),
            ])
            .allow_credentials(false)
            .max_age(Duration::from_secs(600)),
    )
}

fn security_headers_list(
    production: bool,
    cms_url: Option<&str>,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = vec![
        (
            header::CONTENT_SECURITY_POLICY,
            content_security_policy(cms_url),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        // Pages and API answers carry personal data: nothing is cached unless a handler
        // says otherwise (static files do).
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    if production {
        headers.push((
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    headers
}

/// `__Host-` binds the cookie to this exact host over HTTPS; browsers refuse it without
/// `Secure`, so development over plain HTTP uses a plain name.
pub fn session_cookie_name(production: bool) -> &'static str {
    if production {
        "__Host-sovamed_session"
    } else {
        "sovamed_session"
    }
}

/// The OpenAPI document of the JSON API (`sovamed openapi` prints it).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    api::openapi::document()
}
