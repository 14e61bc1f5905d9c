//! `Idempotency-Key` on booking requests: a retry with the same key and the same body gets
//! the first answer (stored with the record, in its transaction); the same key with another
//! body is a 422; a retry while the first request is still running is a 409.
//!
//! [`IdempotencyKey`] is the extractor; [`IdempotencyKey::begin`] decides, and while a
//! fresh request runs an [`InFlight`] guard holds a short Redis marker that it releases
//! when dropped, so a request that ends in any way (an answer, an error, the client
//! hanging up, the request timeout) frees its key.

use axum::{
    extract::FromRequestParts,
    http::{StatusCode, request::Parts},
};
use fred::{interfaces::KeysInterface, types::Expiration};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{
    app::App,
    db::models::{idempotency, record::RecordView},
    domain::{booking::AnswerToKeep, values::Invalid},
    error::AppError,
    params,
    redis::Redis,
};

/// The `Idempotency-Key` header, if the request has one: 1 to 255 printable ASCII characters.
pub struct IdempotencyKey(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(raw) = parts.headers.get("idempotency-key") else {
            return Ok(Self(None));
        };
        let key = raw
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|k| (1..=255).contains(&k.len()) && k.chars().all(|c| c.is_ascii_graphic()))
            .ok_or(Invalid("От 1 до 255 печатных символов ASCII"));
        Ok(Self(Some(
            params::field("Idempotency-Key", key)?.to_owned(),
        )))
    }
}

/// What to do with a request.
pub enum Begin {
    /// A key seen before: answer this again.
    Replay(StatusCode, serde_json::Value),
    /// Run it; with a key, store the answer through `keep` while `in_flight` holds the key.
    Run {
        keep: Option<AnswerToKeep>,
        in_flight: Option<InFlight>,
    },
}

/// Holds a fresh key's in-progress marker; dropping it releases the marker.
pub struct InFlight {
    redis: Redis,
    marker: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let (redis, marker) = (self.redis.clone(), std::mem::take(&mut self.marker));
        // Drop cannot wait; the release runs on the runtime, and the marker's 60 s expiry
        // covers a runtime that is shutting down.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let released: Result<i64, _> = redis.pool.del(&marker).await;
                if let Err(e) = released {
                    tracing::warn!(error = %e, "idempotency marker not released; it expires by itself");
                }
            });
        }
    }
}

impl IdempotencyKey {
    /// Decides for a request of caller `scope` (`anon`, `user:<id>`) with body `request`;
    /// `render` gives the answer to store when it succeeds with `status`.
    pub async fn begin(
        self,
        app: &App,
        scope: &str,
        request: &impl Serialize,
        status: StatusCode,
        render: fn(&RecordView) -> serde_json::Value,
    ) -> Result<Begin, AppError> {
        let Some(key) = self.0 else {
            return Ok(Begin::Run {
                keep: None,
                in_flight: None,
            });
        };
        let body = serde_json::to_vec(request).map_err(|e| AppError::Internal(e.into()))?;
        let request_hash = format!("{:x}", Sha256::digest(body));
        let mut conn = app.db().await?;
        if let Some(stored) = idempotency::find(&mut conn, scope, &key).await? {
            if stored.request_hash != request_hash {
                return Err(AppError::field(
                    "Idempotency-Key",
                    "Ключ уже использован для другого запроса",
                ));
            }
            let status = u16::try_from(stored.status_code)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK);
            return Ok(Begin::Replay(status, stored.response));
        }
        drop(conn);
        let marker = app.redis.key(&format!(
            "idem:{scope}:{:x}",
            Sha256::digest(key.as_bytes())
        ));
        let acquired: Option<String> = app
            .redis
            .pool
            .set(
                &marker,
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
        Ok(Begin::Run {
            keep: Some(AnswerToKeep {
                scope: scope.to_owned(),
                key,
                request_hash,
                status: status.as_u16(),
                render,
            }),
            in_flight: Some(InFlight {
                redis: app.redis.clone(),
                marker,
            }),
        })
    }
}
