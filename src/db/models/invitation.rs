//! The `invitations` table: the one-time links by which an account made by an admin sets its
//! first password, by the SHA-256 of their token.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::invitations;

/// A row of `invitations`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invitations, check_for_backend(diesel::pg::Pg))]
pub struct Invitation {
    pub id: i64,
    pub user_id: i64,
    pub token_hash: String,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = invitations)]
pub struct NewInvitation<'a> {
    pub user_id: i64,
    pub token_hash: &'a str,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewInvitation<'_>) -> QueryResult<()> {
    diesel::insert_into(invitations::table)
        .values(new)
        .execute(conn)
        .await
        .map(drop)
}

/// The invitation with this token hash.
pub async fn find_by_hash(
    conn: &mut AsyncPgConnection,
    token_hash: &str,
) -> QueryResult<Option<Invitation>> {
    invitations::table
        .filter(invitations::token_hash.eq(token_hash))
        .select(Invitation::as_select())
        .first(conn)
        .await
        .optional()
}

/// The invitation with this token hash, locked for the rest of the transaction, so two
/// submissions of one link cannot both use it.
pub async fn lock_by_hash(
    conn: &mut AsyncPgConnection,
    token_hash: &str,
) -> QueryResult<Option<Invitation>> {
    invitations::table
        .filter(invitations::token_hash.eq(token_hash))
        .for_update()
        .select(Invitation::as_select())
        .first(conn)
        .await
        .optional()
}

/// The account's newest invitation, whatever its state.
pub async fn latest_for(
    conn: &mut AsyncPgConnection,
    user_id: i64,
) -> QueryResult<Option<Invitation>> {
    invitations::table
        .filter(invitations::user_id.eq(user_id))
        .order(invitations::id.desc())
        .select(Invitation::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn mark_used(
    conn: &mut AsyncPgConnection,
    id: i64,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(invitations::table.find(id))
        .set(invitations::used_at.eq(now))
        .execute(conn)
        .await
}

/// Revokes every invitation of the account that is neither used nor revoked yet.
pub async fn revoke_open(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        invitations::table
            .filter(invitations::user_id.eq(user_id))
            .filter(invitations::used_at.is_null())
            .filter(invitations::revoked_at.is_null()),
    )
    .set(invitations::revoked_at.eq(now))
    .execute(conn)
    .await
}
