//! The `phone_verifications` table: codes sent by SMS and the proofs confirmed codes yield.
//! Codes and proofs are stored only as keyed hashes (`domain::phones`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::prepared::KeepPrepared;

use crate::{db::schema::phone_verifications, domain::values::VerificationPurpose};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = phone_verifications, check_for_backend(diesel::pg::Pg))]
pub struct Verification {
    pub id: String,
    /// `None` for a decoy: an answer for an account that does not exist, with nothing sent.
    pub phone: Option<String>,
    pub purpose: VerificationPurpose,
    pub user_id: Option<i64>,
    pub code_hash: String,
    pub wrong_attempts: i32,
    pub expires_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub token_hash: Option<String>,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub token_used_at: Option<DateTime<Utc>>,
    pub client_ip: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = phone_verifications)]
pub struct NewVerification<'a> {
    pub id: &'a str,
    pub phone: Option<&'a str>,
    pub purpose: VerificationPurpose,
    pub user_id: Option<i64>,
    pub code_hash: &'a str,
    pub expires_at: DateTime<Utc>,
    pub client_ip: &'a str,
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewVerification<'_>) -> QueryResult<()> {
    diesel::insert_into(phone_verifications::table)
        .values(new)
        .execute(conn)
        .await
        .map(drop)
}

/// The verification, locked for the rest of the transaction.
pub async fn lock(conn: &mut AsyncPgConnection, id: &str) -> QueryResult<Option<Verification>> {
    phone_verifications::table
        .find(id)
        .for_update()
        .select(Verification::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn count_wrong(conn: &mut AsyncPgConnection, id: &str) -> QueryResult<usize> {
    diesel::update(phone_verifications::table.find(id))
        .set(phone_verifications::wrong_attempts.eq(phone_verifications::wrong_attempts + 1))
        .execute(conn)
        .await
}

pub async fn confirm(
    conn: &mut AsyncPgConnection,
    id: &str,
    token_hash: &str,
    token_expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(phone_verifications::table.find(id))
        .set((
            phone_verifications::confirmed_at.eq(now),
            phone_verifications::token_hash.eq(token_hash),
            phone_verifications::token_expires_at.eq(token_expires_at),
        ))
        .execute(conn)
        .await
}

pub async fn find_by_token(
    conn: &AsyncPgConnection,
    token_hash: &str,
) -> QueryResult<Option<Verification>> {
    let mut conn = conn;
    phone_verifications::table
        .filter(phone_verifications::token_hash.eq(token_hash))
        .select(Verification::as_select())
        .first(&mut conn)
        .await
        .optional()
}

/// Marks the proof used; false when another request used it first.
pub async fn use_token(
    conn: &AsyncPgConnection,
    id: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let mut conn = conn;
    KeepPrepared(
        diesel::update(
            phone_verifications::table
                .find(id)
                .filter(phone_verifications::token_used_at.is_null()),
        )
        .set(phone_verifications::token_used_at.eq(now)),
    )
    .execute(&mut conn)
    .await
    .map(|n| n == 1)
}

/// Gives a proof back after the operation it was used for did not happen.
pub async fn release_token(conn: &mut AsyncPgConnection, id: &str) -> QueryResult<usize> {
    diesel::update(phone_verifications::table.find(id))
        .set(phone_verifications::token_used_at.eq(None::<DateTime<Utc>>))
        .execute(conn)
        .await
}

/// The phones the account proved by a code (a phone change, a password reset), with when,
/// oldest first. Decoys have no phone and are not among them.
pub async fn proven_phones(
    conn: &mut AsyncPgConnection,
    user_id: i64,
) -> QueryResult<Vec<(String, DateTime<Utc>)>> {
    let rows: Vec<(Option<String>, Option<DateTime<Utc>>)> = phone_verifications::table
        .filter(phone_verifications::user_id.eq(user_id))
        .filter(phone_verifications::phone.is_not_null())
        .filter(phone_verifications::confirmed_at.is_not_null())
        .order(phone_verifications::confirmed_at.asc())
        .select((
            phone_verifications::phone,
            phone_verifications::confirmed_at,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(phone, at)| Some((phone?, at?)))
        .collect())
}
