//! Operations endpoints: `/healthz` (the process serves), `/readyz` (its dependencies
//! answer) and `/metrics` (Prometheus text, behind `METRICS_TOKEN`).

use std::{collections::BTreeMap, time::Duration};

use axum::{Json, extract::State, http::StatusCode};
use diesel_async::RunQueryDsl;
use serde::Serialize;

use crate::app::AppState;

pub async fn show_health() -> &'static str {
    "ok"
}

/// `GET /__bench/hello`, mounted only with `BENCH_ROUTES=1`: the HTTP-stack floor of
/// `just bench` (no state, no I/O, every layer of the router).
pub async fn bench_hello() -> &'static str {
    "ok"
}

/// `GET /metrics`. With `METRICS_TOKEN` set, only `Authorization: Bearer <token>` gets the
/// metrics (401 otherwise); without it, development serves them to anyone and production
/// not at all (404): the app must not rely on nginx alone to hide them.
pub async fn show_metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use subtle::ConstantTimeEq;
    match state.config.metrics_token.as_deref() {
        Some(token) => {
            let given = headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
                    "metrics need METRICS_TOKEN\n",
                )
                    .into_response();
            }
        }
        None if state.config.is_production() => return StatusCode::NOT_FOUND.into_response(),
        None => {}
    }
    crate::telemetry::metrics::show_metrics(&state.db)
}

/// The readiness answer: each dependency's state, and those that failed.
#[derive(Debug, Serialize)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<&'static str>,
    pub checks: BTreeMap<&'static str, String>,
}

/// 200 when PostgreSQL and Redis answer; 503 naming each one that does not.
pub async fn show_readiness(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let (postgres, redis) = tokio::join!(check_postgres(&state), state.redis.ping());
    let mut failed = Vec::new();
    let mut checks = BTreeMap::new();
    for (name, result) in [("postgres", postgres), ("redis", redis)] {
        match result {
            Ok(()) => {
                checks.insert(name, "ok".to_owned());
            }
            Err(e) => {
                tracing::warn!(dependency = name, error = %e, "not ready");
                failed.push(name);
                checks.insert(name, format!("unavailable: {e}"));
            }
        }
    }
    let status = if failed.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if failed.is_empty() {
            "ready"
        } else {
            "unavailable"
        },
        failed,
        checks,
    };
    (status, Json(body))
}

async fn check_postgres(state: &AppState) -> Result<(), String> {
    let probe = async {
        let mut conn = state.db.get().await.map_err(|e| e.to_string())?;
        diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(3), probe)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}
