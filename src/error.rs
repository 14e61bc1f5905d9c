//! `AppError`: the one error type of handlers, with a JSON face and an HTML face.
//!
//! Policy: every failure a client can cause maps to a 4xx with a stable snake_case code; a
//! dependency that is down is a 503 naming it; anything else is a 500 that is logged once
//! (inside the request's span, so with its request id) and shown to the client without
//! internals. `into_response` builds the JSON face and leaves an [`ErrorFace`] in the
//! response extensions; the page router's `render_html_errors` layer swaps in the HTML page.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::rejection::{FormRejection, JsonRejection, QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use crate::domain::{
    accounts::AccountError,
    booking::{BookingError, Change, TargetError},
    data_rights::DataRightsError,
    mfa::MfaError,
    phones::{ProofProblem, VerifyError},
    profile::ProfileError,
    refresh::RefreshError,
    retention::DeletionError,
    sessions::SessionsError,
    values::{ConsentPurpose, FieldErrors},
};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("authentication required")]
    Unauthorized,
    /// A login with an unknown e-mail, a wrong password or a disabled account: one answer.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// An access token of ours past its expiry.
    #[error("token expired")]
    TokenExpired,
    /// The password was right, but the account's role signs in with a second factor too
    /// (`MFA_REQUIRED_ROLES`) and none was sent, or none is set up yet.
    #[error("second factor required")]
    MfaRequired,
    #[error("forbidden")]
    Forbidden,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("validation failed: {message}")]
    Validation {
        message: String,
        fields: BTreeMap<String, String>,
    },
    #[error("conflict: {message}")]
    Conflict { code: &'static str, message: String },
    #[error("rate limited for {retry_after_secs}s")]
    RateLimited { retry_after_secs: u64 },
    #[error("{what} is unavailable")]
    Unavailable {
        what: &'static str,
        code: &'static str,
    },
    /// Password hashing is at capacity (`auth::password::Busy`): 503 with `Retry-After`.
    #[error("busy")]
    Busy,
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        if e.is::<crate::auth::password::Busy>() {
            AppError::Busy
        } else {
            AppError::Internal(e)
        }
    }
}

/// Every error's JSON: a stable snake_case `code`, a message, and per-field texts for 422.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// `unauthorized`, `invalid_credentials`, `mfa_required`, `token_expired`, `forbidden`, `not_found`,
    /// `validation_failed`, `slot_taken`, `too_many_upcoming`, `already_confirmed`, `conflict`, `request_in_progress`, `rate_limited`,
    /// `mis_unavailable`, `service_unavailable`, `timeout`, `busy`,
    /// `bad_request`, `method_not_allowed`, `payload_too_large`, `unsupported_media_type`, `internal`.
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
}

/// What the HTML face needs to render an error page; left in the response extensions.
#[derive(Debug, Clone)]
pub struct ErrorFace {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl AppError {
    /// A 422 for one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        AppError::Validation {
            message: message.clone(),
            fields: BTreeMap::from([(field.to_owned(), message)]),
        }
    }

    /// A 503 for a dependency that is down, e.g. `AppError::unavailable("database")`.
    pub fn unavailable(what: &'static str) -> Self {
        AppError::Unavailable {
            what,
            code: "service_unavailable",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Unauthorized
            | AppError::InvalidCredentials
            | AppError::MfaRequired
            | AppError::TokenExpired => StatusCode::UNAUTHORIZED,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable { .. } | AppError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::NotFound => "not_found",
            AppError::Unauthorized => "unauthorized",
            AppError::InvalidCredentials => "invalid_credentials",
            AppError::MfaRequired => "mfa_required",
            AppError::TokenExpired => "token_expired",
            AppError::Forbidden => "forbidden",
            AppError::BadRequest(_) => "bad_request",
            AppError::MethodNotAllowed => "method_not_allowed",
            AppError::PayloadTooLarge => "payload_too_large",
            AppError::UnsupportedMediaType => "unsupported_media_type",
            AppError::Validation { .. } => "validation_failed",
            AppError::Conflict { code, .. } => code,
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Unavailable { code, .. } => code,
            AppError::Busy => "busy",
            AppError::Internal(_) => "internal",
        }
    }

    /// The message a client may see (Russian, like the rest of the interface).
    pub fn public_message(&self) -> String {
        match self {
            AppError::NotFound => "Страница или объект не найдены".into(),
            AppError::Unauthorized => "Требуется вход".into(),
            AppError::InvalidCredentials => "Неверная электронная почта или пароль".into(),
            AppError::MfaRequired => "Нужен второй фактор: код из приложения-аутентификатора \
                 или резервный код. Если второй фактор ещё не подключён, войдите на сайте \
                 и подключите его."
                .into(),
            AppError::TokenExpired => "Срок действия входа истёк: войдите снова".into(),
            AppError::Forbidden => "Недостаточно прав".into(),
            AppError::BadRequest(m) => format!("Некорректный запрос: {m}"),
            AppError::MethodNotAllowed => "Метод не поддерживается".into(),
            AppError::PayloadTooLarge => "Слишком большой запрос".into(),
            AppError::UnsupportedMediaType => "Ожидается Content-Type: application/json".into(),
            AppError::Validation { message, .. } => message.clone(),
            AppError::Conflict { message, .. } => message.clone(),
            AppError::RateLimited { retry_after_secs } => {
                format!(
                    "Слишком много попыток. Повторите через {} мин.",
                    retry_after_secs.div_ceil(60).max(1)
                )
            }
            AppError::Unavailable { what, .. } => {
                // The log names a dependency by its code; the client reads it in Russian.
                let what = match *what {
                    "database" => "база данных",
                    "redis" => "хранилище сеансов",
                    other => other,
                };
                format!("Временно недоступно: {what}. Повторите позже.")
            }
            AppError::Busy => "Сервер занят проверкой паролей. Повторите через секунду.".into(),
            AppError::Internal(_) => "Внутренняя ошибка. Повторите позже.".into(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            AppError::Internal(e) => tracing::error!(error = ?e, "internal error"),
            AppError::Unavailable { what, .. } => {
                tracing::warn!(dependency = what, "dependency unavailable")
            }
            _ => {}
        }
        let message = self.public_message();
        let fields = match &self {
            AppError::Validation { fields, .. } if !fields.is_empty() => Some(fields.clone()),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: message.clone(),
                fields,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let AppError::RateLimited { retry_after_secs } = self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            );
        }
        if let AppError::Busy = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response.extensions_mut().insert(ErrorFace {
            status,
            code: self.code(),
            message,
        });
        response
    }
}

impl From<FieldErrors> for AppError {
    fn from(errors: FieldErrors) -> Self {
        let message = errors
            .iter()
            .next()
            .map_or_else(|| "Проверьте данные".to_owned(), |(_, m)| m.to_owned());
        AppError::Validation {
            message,
            fields: errors.into_map(),
        }
    }
}

/// The 503 of an MIS that did not answer.
fn mis_unavailable() -> AppError {
    AppError::Unavailable {
        what: "МИС (медицинская информационная система)",
        code: "mis_unavailable",
    }
}

fn conflict(message: &str) -> AppError {
    AppError::Conflict {
        code: "conflict",
        message: message.to_owned(),
    }
}

impl From<BookingError> for AppError {
    fn from(e: BookingError) -> Self {
        match e {
            BookingError::Invalid(errors) => errors.into(),
            BookingError::Target(TargetError::NoSuchDoctor) => {
                AppError::field("specialist_id", "Врач не найден")
            }
            BookingError::Target(TargetError::NoSuchBranch) => {
                AppError::field("branch_id", "Филиал не найден")
            }
            BookingError::Target(TargetError::DoctorNotInBranch) => {
                AppError::field("branch_id", "Врач не принимает в этом филиале")
            }
            BookingError::StartInPast => AppError::field("start", "Время приёма уже прошло"),
            BookingError::NotASlot => AppError::field(
                "start",
                "В это время врач не ведёт приём: выберите время из расписания",
            ),
            BookingError::SameTime => AppError::field("start", "Это то же самое время"),
            BookingError::SlotTaken => AppError::Conflict {
                code: "slot_taken",
                message: "К сожалению, выбранное время уже занято. Выберите другое время.".into(),
            },
            BookingError::RecordNotFound => AppError::NotFound,
            BookingError::AlreadyCancelled(Change::Cancel) => conflict("Запись уже отменена"),
            BookingError::AlreadyCancelled(Change::Move) => {
                conflict("Запись отменена: перенести её нельзя")
            }
            BookingError::NoLongerChangeable(Change::Cancel) => {
                conflict("Приём уже прошёл: отменить его нельзя")
            }
            BookingError::NoLongerChangeable(Change::Move) => {
                conflict("Приём уже прошёл: перенести его нельзя")
            }
            BookingError::AlreadyCancelled(Change::Outcome) => {
                conflict("Запись отменена: отметить приход или неявку нельзя")
            }
            BookingError::NoLongerChangeable(Change::Outcome)
            | BookingError::OutcomeAlreadyMarked => {
                conflict("Приход или неявка по этой записи уже отмечены")
            }
            BookingError::OutcomeBeforeStart => {
                conflict("Приход или неявку можно отметить, когда приём начнётся")
            }
            BookingError::NotStaff => AppError::Forbidden,
            BookingError::MessageNotResendable => conflict(
                "Повторно отправляется только SMS, которое не удалось отправить или доставить",
            ),
            BookingError::RecordChanged => conflict("Запись изменилась, обновите страницу"),
            BookingError::PatientHasNoPhone => {
                AppError::field("phone", "Укажите телефон в профиле, чтобы записаться")
            }
            BookingError::ConsentWithdrawn(purpose) => AppError::Conflict {
                code: "consent_withdrawn",
                message: match purpose {
                    ConsentPurpose::PersonalData => "Вы отозвали согласие на обработку персональных данных, поэтому записаться нельзя. Чтобы записаться, дайте согласие снова в личном кабинете.",
                    ConsentPurpose::HealthData => "Вы отозвали согласие на обработку сведений о здоровье, поэтому записаться нельзя. Чтобы записаться, дайте согласие снова в личном кабинете.",
                }
                .into(),
            },
            BookingError::RateLimited { retry_after_secs } => {
                AppError::RateLimited { retry_after_secs }
            }
            BookingError::TooManyUpcoming { max } => AppError::Conflict {
                code: "too_many_upcoming",
                message: format!(
                    "У вас уже {max} предстоящих записей — это наибольшее число. Отмените одну из них или дождитесь приёма."
                ),
            },
            BookingError::PhoneProof(problem) => proof_refused(problem),
            BookingError::MisRefused(comment) => AppError::Conflict {
                code: "conflict",
                message: format!("МИС отказала: {comment}"),
            },
            BookingError::MisUnavailable(e) => {
                tracing::warn!(error = %e, "MIS call failed");
                mis_unavailable()
            }
            BookingError::NotKept(_) => AppError::Unavailable {
                what: "база данных: запись не сохранена, бронь в МИС снята",
                code: "service_unavailable",
            },
            BookingError::MoveNotKept(_) => AppError::Unavailable {
                what: "база данных: перенос не сохранён, в МИС прежнее время",
                code: "service_unavailable",
            },
            BookingError::Database(e) => e.into(),
            BookingError::Pool(e) => e.into(),
            BookingError::Store(e) => {
                tracing::warn!(error = %e, "schedule store");
                AppError::unavailable("database")
            }
            BookingError::Redis(e) => e.into(),
            BookingError::Interrupted(e) => AppError::Internal(anyhow::anyhow!(e)),
            BookingError::Deferred(_) => AppError::Unavailable {
                what: "база данных: изменение принято МИС и будет сохранено автоматически",
                code: "service_unavailable",
            },
        }
    }
}

/// A 422 on `phone_token`: the proof of the phone does not serve.
pub fn proof_refused(problem: ProofProblem) -> AppError {
    let message = match problem {
        ProofProblem::Missing => "Подтвердите номер телефона кодом из SMS",
        ProofProblem::Unknown => "Подтверждение телефона не найдено: запросите новый код",
        ProofProblem::Expired => "Подтверждение телефона устарело: запросите новый код",
        ProofProblem::Used => "Это подтверждение телефона уже использовано: запросите новый код",
        ProofProblem::OtherPhone => "Подтверждён другой номер телефона",
        ProofProblem::OtherPurpose => "Код подтверждения был запрошен для другой цели",
    };
    AppError::field("phone_token", message)
}

impl From<VerifyError> for AppError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::RateLimited { retry_after_secs } => {
                AppError::RateLimited { retry_after_secs }
            }
            VerifyError::NotFound => AppError::NotFound,
            VerifyError::Expired => {
                AppError::field("code", "Срок действия кода истёк: запросите новый код")
            }
            VerifyError::TooManyWrongCodes => AppError::field(
                "code",
                "Слишком много неверных попыток: запросите новый код",
            ),
            VerifyError::WrongCode { left } => {
                AppError::field("code", format!("Неверный код. Осталось попыток: {left}"))
            }
            VerifyError::AlreadyConfirmed => AppError::Conflict {
                code: "already_confirmed",
                message: "Этот код уже подтверждён".into(),
            },
            VerifyError::Proof(problem) => proof_refused(problem),
            VerifyError::Database(e) => e.into(),
            VerifyError::Pool(e) => e.into(),
            VerifyError::Redis(e) => e.into(),
        }
    }
}

impl From<RefreshError> for AppError {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::Refused | RefreshError::Reused => AppError::Unauthorized,
            RefreshError::Database(e) => e.into(),
            RefreshError::Pool(e) => e.into(),
        }
    }
}

impl From<MfaError> for AppError {
    fn from(e: MfaError) -> Self {
        match e {
            MfaError::WrongCode => AppError::field("code", "Неверный код"),
            MfaError::RateLimited { retry_after_secs } => {
                AppError::RateLimited { retry_after_secs }
            }
            MfaError::NotEnrolled => AppError::MfaRequired,
            MfaError::AlreadyEnrolled => conflict("Второй фактор уже подключён"),
            MfaError::BadSecret => {
                AppError::Internal(anyhow::anyhow!("stored TOTP secret is unusable"))
            }
            MfaError::Database(e) => e.into(),
            MfaError::Pool(e) => e.into(),
            MfaError::Redis(e) => e.into(),
        }
    }
}

impl From<SessionsError> for AppError {
    fn from(e: SessionsError) -> Self {
        match e {
            SessionsError::Database(e) => e.into(),
            SessionsError::Pool(e) => e.into(),
        }
    }
}

impl From<ProfileError> for AppError {
    fn from(e: ProfileError) -> Self {
        match e {
            ProfileError::Account(e) => e.into(),
            ProfileError::WrongPassword => {
                AppError::field("current_password", "Неверный текущий пароль")
            }
            ProfileError::Verify(e) => e.into(),
        }
    }
}

impl From<DataRightsError> for AppError {
    fn from(e: DataRightsError) -> Self {
        match e {
            DataRightsError::NotFound => AppError::NotFound,
            DataRightsError::Database(e) => e.into(),
            DataRightsError::Pool(e) => e.into(),
        }
    }
}

impl From<AccountError> for AppError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid(errors) => errors.into(),
            AccountError::EmailTaken => AppError::field("email", "Этот адрес уже зарегистрирован"),
            AccountError::NotFound => AppError::NotFound,
            AccountError::OwnAccount => conflict("Свою роль и статус изменить нельзя"),
            AccountError::InvitationInvalid => AppError::NotFound,
            AccountError::NotInvitable => conflict(
                "Новую ссылку можно выдать только включённой учётной записи, у которой ещё нет пароля",
            ),
            AccountError::Hashing(e) => e.into(),
            AccountError::Database(e) => e.into(),
            AccountError::Pool(e) => e.into(),
        }
    }
}

impl From<DeletionError> for AppError {
    fn from(e: DeletionError) -> Self {
        match e {
            DeletionError::WrongPassword => AppError::field("password", "Неверный пароль"),
            DeletionError::NotPatient => AppError::Forbidden,
            DeletionError::Cancel(e) => e.into(),
            DeletionError::Profile(e) => e.into(),
            DeletionError::Database(e) => e.into(),
            DeletionError::Pool(e) => e.into(),
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ClosedConnection,
                _,
            ) => {
                tracing::warn!(error = %e, "database connection closed");
                AppError::unavailable("database")
            }
            e => AppError::Internal(e.into()),
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for AppError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        tracing::warn!(error = %e, "database pool");
        AppError::unavailable("database")
    }
}

impl From<tower_sessions::session::Error> for AppError {
    fn from(e: tower_sessions::session::Error) -> Self {
        tracing::warn!(error = %e, "session store");
        AppError::unavailable("redis")
    }
}

impl From<fred::error::Error> for AppError {
    fn from(e: fred::error::Error) -> Self {
        tracing::warn!(error = %e, "redis");
        AppError::unavailable("redis")
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => validation_from_serde(&e.body_text()),
            JsonRejection::JsonSyntaxError(_) => {
                AppError::BadRequest("тело запроса — некорректный JSON".into())
            }
            JsonRejection::MissingJsonContentType(_) => AppError::UnsupportedMediaType,
            other => from_body_status(other.status()),
        }
    }
}

impl From<FormRejection> for AppError {
    fn from(rejection: FormRejection) -> Self {
        match rejection {
            FormRejection::FailedToDeserializeForm(e) => validation_from_serde(&e.body_text()),
            FormRejection::FailedToDeserializeFormBody(e) => validation_from_serde(&e.body_text()),
            FormRejection::InvalidFormContentType(_) => AppError::UnsupportedMediaType,
            other => from_body_status(other.status()),
        }
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        validation_from_serde(&rejection.body_text())
    }
}

fn from_body_status(status: StatusCode) -> AppError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge
    } else {
        AppError::BadRequest("тело запроса не читается".into())
    }
}

/// A body or query that did not parse, reported under the field it names with a Russian
/// message; serde's English never reaches the client. axum prefixes serde's text with its
/// own words and, through serde_path_to_error, the path of the field (`patient.phone: …`).
fn validation_from_serde(text: &str) -> AppError {
    const PREFIXES: [&str; 4] = [
        "Failed to deserialize the JSON body into the target type: ",
        "Failed to deserialize form body: ",
        "Failed to deserialize form: ",
        "Failed to deserialize query string: ",
    ];
    let body = PREFIXES
        .iter()
        .find_map(|p| text.strip_prefix(p))
        .unwrap_or(text);
    let is_path = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '-'))
    };
    let (path, rest) = match body.split_once(": ") {
        Some((path, rest)) if is_path(path) => (Some(path), rest),
        _ => (None, body),
    };
    let named = rest.split('`').nth(1).filter(|n| is_path(n));
    // The path of an unknown field already ends with it; that of a missing one is its parent.
    let within = |name: &str| match path {
        Some(p) if p == name || p.ends_with(&format!(".{name}")) => p.to_owned(),
        Some(p) => format!("{p}.{name}"),
        None => name.to_owned(),
    };
    let (field, message) = if rest.starts_with("missing field") {
        (
            named.map_or_else(|| "body".to_owned(), within),
            "Обязательное поле",
        )
    } else if rest.starts_with("unknown field") {
        (
            named.map_or_else(|| "body".to_owned(), within),
            "Неизвестное поле: уберите его из запроса",
        )
    } else if rest.starts_with("invalid type") {
        (path.unwrap_or("body").to_owned(), "Неверный тип значения")
    } else {
        (path.unwrap_or("body").to_owned(), "Некорректное значение")
    };
    AppError::Validation {
        message: format!("{field}: {message}"),
        fields: BTreeMap::from([(field, message.to_owned())]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_of(text: &str) -> BTreeMap<String, String> {
        match validation_from_serde(text) {
            AppError::Validation { fields, message } => {
                assert!(!message.is_ascii(), "a Russian message: {message}");
                fields
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn serde_messages_name_the_field_in_russian() {
        let cases = [
            (
                "Failed to deserialize the JSON body into the target type: unknown field `role`, expected `email` or `password` at line 1 column 7",
                "role",
                "Неизвестное поле: уберите его из запроса",
            ),
            (
                "Failed to deserialize the JSON body into the target type: missing field `password` at line 1 column 13",
                "password",
                "Обязательное поле",
            ),
            (
                "Failed to deserialize the JSON body into the target type: patient: missing field `phone` at line 1 column 80",
                "patient.phone",
                "Обязательное поле",
            ),
            (
                "Failed to deserialize the JSON body into the target type: specialist_id: invalid type: string \"x\", expected i64 at line 1 column 20",
                "specialist_id",
                "Неверный тип значения",
            ),
            (
                "Failed to deserialize form body: unknown field `admin`, expected one of `email`, `password`",
                "admin",
                "Неизвестное поле: уберите его из запроса",
            ),
            (
                "Failed to deserialize the JSON body into the target type: role: unknown field `role`, expected `email` or `password` at line 1 column 7",
                "role",
                "Неизвестное поле: уберите его из запроса",
            ),
        ];
        for (text, field, message) in cases {
            let fields = fields_of(text);
            assert_eq!(
                fields.get(field).map(String::as_str),
                Some(message),
                "{text}"
            );
            for m in fields.values() {
                assert!(!m.contains("expected") && !m.contains("line"), "{m}");
            }
        }
    }
}
