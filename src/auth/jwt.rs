//! Access tokens for the JSON API: HS256 JWTs with `exp`, `iat`, `nbf`, `iss`, `aud` and a
//! token type, the algorithm pinned. The token carries the user's `session_version`, so a
//! password change or disabling refuses every token issued before it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

const ISSUER: &str = "sovamed";
const AUDIENCE: &str = "sovamed-api";
const ACCESS: &str = "access";

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
    /// Token type; only `access` is accepted by the API.
    pub typ: String,
    /// The user's `session_version` when the token was issued.
    pub ver: i32,
}

/// Signing and verification keys with the pinned validation rules.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl JwtKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues an access token for a user.
    pub fn issue(&self, user_id: i64, session_version: i32) -> anyhow::Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now,
            nbf: now,
            exp: now + self.ttl.as_secs(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            typ: ACCESS.into(),
            ver: session_version,
        };
        Ok(encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// Verifies the signature first, then the claims; returns the user id and version.
    /// Any failure is `None`: the caller answers 401 without saying why.
    pub fn verify(&self, token: &str) -> Result<(i64, i32), TokenRejected> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            tracing::debug!(error = %e, "rejected token");
            // Only a token signed with our key reaches the expiry check, so saying "expired"
            // tells nothing to anyone who could not have made the token.
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenRejected::Expired,
                _ => TokenRejected::Invalid,
            }
        })?;
        if data.claims.typ != ACCESS {
            return Err(TokenRejected::Invalid);
        }
        let user_id = data
            .claims
            .sub
            .parse()
            .map_err(|_| TokenRejected::Invalid)?;
        Ok((user_id, data.claims.ver))
    }
}

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejected {
    /// Ours, but past its `exp`: the client should refresh or log in again.
    Expired,
    /// Anything else: not ours, tampered, of the wrong type, not yet valid.
    Invalid,
}
