//! Refresh tokens of the JSON API: opaque (256 random bits), stored as SHA-256, valid
//! `REFRESH_TOKEN_TTL_DAYS`, and rotated on every use: a refresh spends the token and hands
//! out the next of its family. A spent token presented again means two parties hold it (one
//! of them stole it), so the whole family is revoked and both must log in again. A password,
//! role or status change (the account's `session_version`) refuses every token issued before.

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;

use crate::{
    db::{
        DbPool,
        models::{
            refresh_token::{self, NewRefreshToken},
            user::{self, User},
        },
    },
    domain::{
        clock::Clock,
        phones::{random_hex, sha256_hex},
    },
};

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Unknown, expired, revoked, or of an account that changed: log in again.
    #[error("refresh token refused")]
    Refused,
    /// A rotated token came back: its family is revoked.
    #[error("refresh token reused; its family is revoked")]
    Reused,
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
}

/// A refresh token to hand out.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct RefreshTokens {
    pub db: DbPool,
    pub clock: Clock,
    pub ttl: chrono::Duration,
}

impl RefreshTokens {
    /// The first token of a new family, at login.
    pub async fn issue(&self, account: &User) -> Result<Issued, RefreshError> {
        let mut conn = self.db.get().await?;
        let family = random_hex(16);
        Ok(self.insert(&mut conn, account, &family).await?)
    }

    async fn insert(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        account: &User,
        family: &str,
    ) -> Result<Issued, diesel::result::Error> {
        let token = random_hex(32);
        let expires_at = self.clock.now() + self.ttl;
        refresh_token::insert(
            conn,
            &NewRefreshToken {
                user_id: account.id,
                family,
                token_hash: &sha256_hex(&token),
                session_version: account.session_version,
                expires_at,
            },
        )
        .await?;
        Ok(Issued { token, expires_at })
    }

    /// Spends `token` for the next one of its family; the account it belongs to.
    pub async fn rotate(&self, token: &str) -> Result<(User, Issued), RefreshError> {
        let now = self.clock.now();
        let hash = sha256_hex(token.trim());
        let mut conn = self.db.get().await?;
        conn.transaction(async |conn| {
            let Some(row) = refresh_token::lock_by_hash(conn, &hash).await? else {
                return Ok(Err(RefreshError::Refused));
            };
            if row.revoked_at.is_some() || row.expires_at <= now {
                return Ok(Err(RefreshError::Refused));
            }
            if row.rotated_at.is_some() {
                refresh_token::revoke_family(conn, &row.family, now).await?;
                return Ok(Err(RefreshError::Reused));
            }
            let account = user::find(conn, row.user_id).await?;
            let Some(account) =
                account.filter(|a| !a.disabled && a.session_version == row.session_version)
            else {
                refresh_token::revoke_family(conn, &row.family, now).await?;
                return Ok(Err(RefreshError::Refused));
            };
            refresh_token::mark_rotated(conn, row.id, now).await?;
            let next = self.insert(conn, &account, &row.family).await?;
            Ok::<_, diesel::result::Error>(Ok((account, next)))
        })
        .await?
    }

    /// Revokes the family of `token` (logout). An unknown token is not an error: the
    /// client's goal, no valid token, holds either way.
    pub async fn revoke(&self, token: &str) -> Result<(), RefreshError> {
        let now = self.clock.now();
        let hash = sha256_hex(token.trim());
        let mut conn = self.db.get().await?;
        conn.transaction(async |conn| {
            if let Some(row) = refresh_token::lock_by_hash(conn, &hash).await? {
                refresh_token::revoke_family(conn, &row.family, now).await?;
            }
            Ok::<_, diesel::result::Error>(())
        })
        .await?;
        Ok(())
    }
}
