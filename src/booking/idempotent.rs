//! `Idempotency-Key` for booking requests: a retry with the same key and the same body gets
//! the first answer (stored with the record, in its transaction); the same key with another
//! body is a 422; a retry while the first request is still running is a 409.

use axum::http::{HeaderMap, StatusCode};
use fred::{interfaces::KeysInterface, types::Expiration};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::reserve::IdempotencyWrite;
use crate::{app::App, db::models::idempotency, error::AppError};

/// What to do with a request.
pub enum Idempotent {
    /// No key: just run it.
    Run,
    /// A key seen before: answer this.
    Replay(StatusCode, serde_json::Value),
    /// A new key: run it, store the answer with `write`, then release `lock`.
    Fresh {
        write: IdempotencyWrite,
        lock: String,
    },
}

/// Reads the key and decides; `scope` separates callers (`anon`, `user:<id>`).
pub async fn begin(
    app: &App,
    headers: &HeaderMap,
    scope: &str,
    request: &impl Serialize,
) -> Result<Idempotent, AppError> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(Idempotent::Run);
    };
    let key = raw
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| (1..=255).contains(&k.len()) && k.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| AppError::field("Idempotency-Key", "от 1 до 255 печатных ASCII-символов"))?
        .to_owned();
    let request_hash = format!(
        "{:x}",
        Sha256::digest(serde_json::to_vec(request).unwrap_or_default())
    );
    let mut conn = app.db().await?;
    if let Some(stored) = idempotency::find(&mut conn, scope, &key).await? {
        if stored.request_hash != request_hash {
            return Err(AppError::field(
                "Idempotency-Key",
                "ключ уже использован для другого запроса",
            ));
        }
        let status = u16::try_from(stored.status_code)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::OK);
        return Ok(Idempotent::Replay(status, stored.response));
    }
    drop(conn);
    let lock = app.redis.key(&format!(
        "idem:{scope}:{:x}",
        Sha256::digest(key.as_bytes())
    ));
    let acquired: Option<String> = app
        .redis
        .pool
        .set(
            &lock,
            "1",
            Some(Expiration::PX(60_000)),
            Some(fred::types::SetOptions::NX),
            false,
        )
        .await?;
    if acquired.is_none() {
        return Err(AppError::Conflict {
            code: "request_in_progress",
            message: "Запрос с этим Idempotency-Key ещё выполняется; повторите позже".into(),
        });
    }
    Ok(Idempotent::Fresh {
        write: IdempotencyWrite {
            scope: scope.to_owned(),
            key,
            request_hash,
        },
        lock,
    })
}

/// Releases the in-progress marker of a fresh key.
pub async fn finish(app: &App, lock: &str) {
    let released: Result<i64, _> = app.redis.pool.del(lock).await;
    if let Err(e) = released {
        tracing::warn!(error = %e, "idempotency lock not released; it expires by itself");
    }
}
