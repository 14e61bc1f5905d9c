//! The JSON API under `/api/v1`. It authenticates with `Authorization: Bearer` only and
//! answers errors in the contract's shape `{"error":{"code","message","fields"?}}`.

pub mod booking;
pub mod directory;
pub mod idempotency;
pub mod openapi;
pub mod phones;
pub mod types;
pub mod user;

use crate::error::AppError;

pub async fn api_not_found() -> AppError {
    AppError::NotFound
}

pub async fn api_method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}
