//! The `refresh_tokens` table: the API's refresh tokens, by the SHA-256 of their value, in
//! families that descend from one login.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::refresh_tokens;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens, check_for_backend(diesel::pg::Pg))]
pub struct RefreshToken {
    pub id: i64,
    pub user_id: i64,
    pub family: String,
    pub token_hash: String,
    pub session_version: i32,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct NewRefreshToken<'a> {
    pub user_id: i64,
    pub family: &'a str,
    pub token_hash: &'a str,
    pub session_version: i32,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewRefreshToken<'_>) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(new)
        .execute(conn)
        .await
        .map(drop)
}

/// The token with this hash, locked for the rest of the transaction.
pub async fn lock_by_hash(
    conn: &mut AsyncPgConnection,
    token_hash: &str,
) -> QueryResult<Option<RefreshToken>> {
    refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .for_update()
        .select(RefreshToken::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn mark_rotated(
    conn: &mut AsyncPgConnection,
    id: i64,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(refresh_tokens::table.find(id))
        .set(refresh_tokens::rotated_at.eq(now))
        .execute(conn)
        .await
}

/// Revokes every token of the family that is not revoked yet.
pub async fn revoke_family(
    conn: &mut AsyncPgConnection,
    family: &str,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family.eq(family))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)
    .await
}
