//! Prometheus metrics: one recorder per process, rendered at `/metrics`. Labels carry route
//! templates, message types and outcomes, never user ids, e-mails or phone numbers.
//!
//! Nothing here knows the application's state: the router hands [`show_metrics`] the pool it
//! reports on, so `app` may install the recorder without a dependency cycle.

use std::{sync::OnceLock, time::Instant};

use axum::{
    extract::{MatchedPath, Request},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::db::DbPool;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets in seconds: from a cached read to a slow MIS call.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A booking's steps (`booking_step_duration_seconds`): most of the app's own take well
/// under a millisecond to a few, where the latency buckets have one bucket; the MIS's two
/// land in the upper ones.
const STEP_BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

/// Installs the process-wide recorder once; later calls (tests start many servers in one
/// process) reuse it.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS)
                .ok()?
                // A full name wins over a suffix whatever the order.
                .set_buckets_for_metric(
                    Matcher::Full("booking_step_duration_seconds".into()),
                    STEP_BUCKETS,
                )
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// `GET /metrics`: Prometheus text, with the gauges of `db`, the database pool, read at
/// scrape time.
pub fn show_metrics(db: &DbPool) -> Response {
    let status = db.status();
    let in_use = status.size.saturating_sub(status.available);
    metrics::gauge!("db_pool_connections", "state" => "in_use").set(in_use as f64);
    metrics::gauge!("db_pool_connections", "state" => "idle").set(status.available as f64);
    let body = install().map(PrometheusHandle::render).unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Counts requests and times them by method, route template and status.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    // The template (`/doctors/{id}`), never the concrete path: ids stay out of labels.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
