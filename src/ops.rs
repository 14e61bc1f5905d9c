//! Operations endpoints: `/healthz` (the process serves) and `/readyz` (its dependencies
//! answer).

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
