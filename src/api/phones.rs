//! Phone verification for the public site: ask for a code, confirm it, and get a proof
//! (`phone_token`) that a booking without an account presents. The answers never say
//! whether the phone belongs to an account. Also the consent texts the forms link to.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};

use crate::{
    api::types::ErrorBody,
    app::AppState,
    client_ip::ClientIp,
    db::models::consent::ConsentText,
    domain::{
        consent,
        values::{ConsentPurpose, FieldErrors, Phone, VerificationPurpose},
    },
    error::AppError,
    extract::Json as JsonBody,
};

/// A code to send.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationRequest {
    /// Any common format; Russian numbers may omit the country code.
    #[schema(min_length = 5, max_length = 32)]
    pub phone: String,
    /// What the proof will be for; a proof serves only this purpose.
    pub purpose: VerificationPurpose,
}

/// The code is on its way.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerificationStarted {
    pub verification_id: String,
    /// The code is accepted until then (10 minutes).
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// A new code for the same phone and purpose may be asked from then on (60 s).
    #[schema(format = DateTime)]
    pub resend_after: String,
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeInput {
    /// The 6 digits from the SMS.
    #[schema(pattern = "^[0-9]{6}$")]
    pub code: String,
}

/// The proof of the phone: present it once, before it expires (15 minutes).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PhoneProofOut {
    pub phone_token: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// Sends a 6-digit code by SMS.
#[utoipa::path(post, path = "/api/v1/phone-verifications", tag = "phones", request_body = VerificationRequest,
    responses(
        (status = 202, description = "A code is on its way (the same answer whether or not the phone belongs to an account)", body = VerificationStarted),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Not a phone number, or an unknown purpose", body = ErrorBody),
        (status = 429, description = "A code was sent less than 60 s ago, or too many codes for this phone or address", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub async fn start_verification(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<VerificationRequest>,
) -> Result<(StatusCode, Json<VerificationStarted>), AppError> {
    let phone =
        Phone::parse(&body.phone).map_err(|e| AppError::from(FieldErrors::one("phone", e)))?;
    let started = state.booking.phones.start(&phone, body.purpose, ip).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(VerificationStarted {
            verification_id: started.id,
            expires_at: started.expires_at.to_rfc3339(),
            resend_after: started.resend_after.to_rfc3339(),
        }),
    ))
}

/// Checks the code; the right one yields the proof.
#[utoipa::path(post, path = "/api/v1/phone-verifications/{id}/confirm", tag = "phones", request_body = CodeInput,
    params(("id" = String, Path, description = "`verification_id`")),
    responses(
        (status = 200, description = "Confirmed", body = PhoneProofOut),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "No such verification", body = ErrorBody),
        (status = 409, description = "`already_confirmed`", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "`code`: wrong (with the tries left), expired, or out of tries (5 wrong codes)", body = ErrorBody)))]
pub async fn confirm_verification(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CodeInput>,
) -> Result<Json<PhoneProofOut>, AppError> {
    if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AppError::NotFound);
    }
    let code = body.code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AppError::field("code", "Код — 6 цифр из SMS"));
    }
    let proof = state.booking.phones.confirm(&id, code).await?;
    Ok(Json(PhoneProofOut {
        phone_token: proof.token,
        expires_at: proof.expires_at.to_rfc3339(),
    }))
}

/// A text a person agrees to.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsentTextOut {
    pub purpose: ConsentPurpose,
    pub version: i32,
    pub title: String,
    pub body: String,
    /// The page with the text, for a link beside the checkbox.
    pub url: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsentTextList {
    pub items: Vec<ConsentTextOut>,
}

/// The current consent texts: a form that asks for consent links to them; giving consent
/// records these versions.
#[utoipa::path(get, path = "/api/v1/consent-texts", tag = "phones",
    responses((status = 200, description = "The newest version of each text", body = ConsentTextList)))]
pub async fn list_consent_texts(
    State(state): State<AppState>,
) -> Result<Json<ConsentTextList>, AppError> {
    let conn = state.db().await?;
    let texts = consent::current_texts(&conn).await?;
    let base = &state.config.public_base_url;
    Ok(Json(ConsentTextList {
        items: texts
            .into_iter()
            .map(|t: ConsentText| ConsentTextOut {
                url: format!("{base}/consent/{}", t.purpose.as_str()),
                purpose: t.purpose,
                version: t.version,
                title: t.title,
                body: t.body,
            })
            .collect(),
    }))
}
