//! CSRF protection for every state-changing page request: a synchronizer token bound to
//! the session, sent back in the form field `csrf_token` or the `X-CSRF-Token` header
//! (htmx). A request without a session, without a token, or with another session's token
//! gets 403 and reaches no handler.

use axum::{
    body::{Body, to_bytes},
    extract::Request,
    http::{Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use subtle::ConstantTimeEq;

use crate::{auth::session::AuthSession, error::AppError};

/// The form field carrying the token.
pub const FIELD: &str = "csrf_token";
/// Bodies of page forms are small; anything larger is refused before parsing.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

pub async fn verify_csrf(session: AuthSession, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    match check(&session, request).await {
        Ok(request) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

async fn check(session: &AuthSession, request: Request) -> Result<Request, AppError> {
    let expected = session.existing_csrf_token().await?;
    let from_header = request
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));

    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| AppError::PayloadTooLarge)?;
    let provided = from_header.or_else(|| {
        is_form
            .then(|| serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes).ok())
            .flatten()
            .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == FIELD).map(|(_, v)| v))
    });
    match (expected, provided) {
        (Some(expected), Some(provided))
            if bool::from(expected.as_bytes().ct_eq(provided.as_bytes())) =>
        {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => {
            tracing::warn!(
                path = %crate::telemetry::loggable_path(parts.uri.path()),
                "CSRF token missing or wrong"
            );
            Err(AppError::Forbidden)
        }
    }
}
