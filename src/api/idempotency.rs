//! `Idempotency-Key` on booking requests: a retry with the same key and the same body gets
//! the first answer (stored with the record, in its transaction); the same key with another
//! body is a 422; a retry while the first request is still running is a 409.
//!
//! [`IdempotencyKey`] is the extractor; [`IdempotencyKey::begin`] decides. While a fresh
//! request's booking runs, an [`InFlight`] guard holds a short Redis marker; the core keeps
//! the guard until the booking has ended (which outlives a dropped request), and dropping it
//! releases the marker. A retry meanwhile waits for the first answer (the booking intent
//! tells it one is coming), so it never races its own booking into `slot_taken`.

use axum::{
    extract::FromRequestParts,
    http::{StatusCode, request::Parts},
};
use fred::{interfaces::KeysInterface, types::Expiration};
use serde::Serialize;
use sha2::{Digest, Sha256};

use std::time::Duration;

use crate::{
    app::App,
    db::models::{
        idempotency, intent,
        record::{self, RecordView},
    },
    domain::{
        booking::AnswerToKeep,
        values::{IntentState, Invalid},
    },
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
    /// Run it; with a key, store the answer through `keep`, whose guard holds the key's
    /// in-progress marker until the booking has ended.
    Run(Option<AnswerToKeep>),
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

/// How long a retry waits for a first request whose booking is still under way.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(10);

/// The answer a key already has: the stored first answer; or, while the first request's
/// booking intent is pending, that answer once it comes (a retry never races its own
/// booking into `slot_taken`); or the record the reconciler completed for it. `None` when
/// the key is new or its booking failed, so the request runs afresh.
async fn settled_answer(
    app: &App,
    scope: &str,
    key: &str,
    request_hash: &str,
    render: fn(&RecordView) -> serde_json::Value,
) -> Result<Option<Begin>, AppError> {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    loop {
        let mut conn = app.db().await?;
        if let Some(stored) = idempotency::find(&mut conn, scope, key).await? {
            if stored.request_hash != request_hash {
                return Err(key_reused());
            }
            let status = u16::try_from(stored.status_code)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK);
            return Ok(Some(Begin::Replay(status, stored.response)));
        }
        let Some(first) = intent::latest_for_key(&mut conn, scope, key).await? else {
            return Ok(None);
        };
        if first.request_hash.as_deref() != Some(request_hash) {
            return Err(key_reused());
        }
        match (first.state, first.record_id) {
            (IntentState::Failed, _) => return Ok(None),
            (IntentState::Done, Some(record_id)) => {
                let Some(view) = record::find_view(&conn, record_id).await? else {
                    return Ok(None);
                };
                return Ok(Some(Begin::Replay(StatusCode::CREATED, render(&view))));
            }
            _ if tokio::time::Instant::now() >= deadline => return Err(in_progress()),
            _ => {
                drop(conn);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

fn key_reused() -> AppError {
    AppError::field(
        "Idempotency-Key",
        "Ключ уже использован для другого запроса",
    )
}

fn in_progress() -> AppError {
    AppError::Conflict {
        code: "request_in_progress",
        message: "Запрос с этим Idempotency-Key ещё выполняется; повторите позже".into(),
    }
}

impl IdempotencyKey {
    /// Decides for a request of caller `scope` (`anon:<digest>`, `user:<id>`) with body `request`;
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
            return Ok(Begin::Run(None));
        };
        let body = serde_json::to_vec(request).map_err(|e| AppError::Internal(e.into()))?;
        let request_hash = format!("{:x}", Sha256::digest(body));
        if let Some(answer) = settled_answer(app, scope, &key, &request_hash, render).await? {
            return Ok(answer);
        }
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
            return Err(in_progress());
        }
        Ok(Begin::Run(Some(AnswerToKeep {
            scope: scope.to_owned(),
            key,
            request_hash,
            status: status.as_u16(),
            render,
            guard: Some(Box::new(InFlight {
                redis: app.redis.clone(),
                marker,
            })),
        })))
    }
}
