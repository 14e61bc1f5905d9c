//! Operations endpoints: `/healthz` (the process serves) and `/readyz` (its dependencies
//! answer).

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode};
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::app::AppState;

pub async fn show_health() -> &'static str {
    "ok"
}

/// `GET /__bench/hello`, mounted only with `BENCH_ROUTES=1`: the HTTP-stack floor of
/// `just bench` (no state, no I/O, every layer of the router).
pub async fn bench_hello() -> &'static str {
    "ok"
}

/// 200 when PostgreSQL and Redis answer; 503 naming each one that does not.
pub async fn show_readiness(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (postgres, redis) = tokio::join!(check_postgres(&state), state.redis.ping());
    let mut failed = Vec::new();
    let mut checks = serde_json::Map::new();
    for (name, result) in [("postgres", postgres), ("redis", redis)] {
        match result {
            Ok(()) => {
                checks.insert(name.into(), json!("ok"));
            }
            Err(e) => {
                tracing::warn!(dependency = name, error = %e, "not ready");
                failed.push(name);
                checks.insert(name.into(), json!(format!("unavailable: {e}")));
            }
        }
    }
    if failed.is_empty() {
        (
            StatusCode::OK,
            Json(json!({ "status": "ready", "checks": checks })),
        )
    } else {
        let body = json!({ "status": "unavailable", "failed": failed, "checks": checks });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
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
