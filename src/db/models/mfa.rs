//! The second factor's rows: the TOTP columns of `users` (the secret, when it was confirmed,
//! the last time step accepted) and `mfa_recovery_codes` (one-time codes, by their SHA-256).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::{mfa_recovery_codes, users};

/// The TOTP columns of one account.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct TotpColumns {
    /// Base32. `None`: no second factor, not even a pending one.
    pub totp_secret: Option<String>,
    /// `None` with a secret: the enrolment waits for its first valid code.
    pub totp_enrolled_at: Option<DateTime<Utc>>,
    /// The last time step whose code was accepted.
    pub totp_last_step: Option<i64>,
}

/// The TOTP columns of the account `user_id`, if it exists.
pub async fn find(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<Option<TotpColumns>> {
    users::table
        .find(user_id)
        .select(TotpColumns::as_select())
        .first(conn)
        .await
        .optional()
}

/// Stores `secret` as the pending enrolment of an account that has no secret at all; `0` when
/// it has one already (another tab was first, or the account is enrolled), and the caller
/// reads the one that is there.
pub async fn set_pending_secret(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    secret: &str,
) -> QueryResult<usize> {
    diesel::update(
        users::table
            .filter(users::id.eq(user_id))
            .filter(users::totp_secret.is_null())
            .filter(users::totp_enrolled_at.is_null()),
    )
    .set((
        users::totp_secret.eq(secret),
        users::totp_last_step.eq(None::<i64>),
    ))
    .execute(conn)
    .await
}

/// Confirms the pending enrolment of `secret` with the code of `step`; `0` when the account
/// is enrolled already or its pending secret is another one.
pub async fn confirm(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    secret: &str,
    step: i64,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        users::table
            .filter(users::id.eq(user_id))
            .filter(users::totp_secret.eq(secret))
            .filter(users::totp_enrolled_at.is_null()),
    )
    .set((
        users::totp_enrolled_at.eq(now),
        users::totp_last_step.eq(step),
    ))
    .execute(conn)
    .await
}

/// Takes time step `step` for the account: true only when no code of this step or a later
/// one was accepted before. One statement, so two requests with the same code cannot both
/// pass.
pub async fn accept_step(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    step: i64,
) -> QueryResult<bool> {
    let taken = diesel::sql_query(
        "UPDATE users SET totp_last_step = $1 \
         WHERE id = $2 AND totp_enrolled_at IS NOT NULL \
           AND (totp_last_step IS NULL OR totp_last_step < $1)",
    )
    .bind::<BigInt, _>(step)
    .bind::<BigInt, _>(user_id)
    .execute(conn)
    .await?;
    Ok(taken == 1)
}

/// Replaces the account's recovery codes with these (hashes of new codes).
pub async fn replace_recovery_codes(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    code_hashes: &[String],
) -> QueryResult<()> {
    diesel::delete(mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(user_id)))
        .execute(conn)
        .await?;
    let rows: Vec<_> = code_hashes
        .iter()
        .map(|hash| {
            (
                mfa_recovery_codes::user_id.eq(user_id),
                mfa_recovery_codes::code_hash.eq(hash.as_str()),
            )
        })
        .collect();
    diesel::insert_into(mfa_recovery_codes::table)
        .values(rows)
        .execute(conn)
        .await
        .map(drop)
}

/// Spends the unused recovery code with this hash: true when there was one. One statement,
/// so a code works once even when sent twice at the same time.
pub async fn use_recovery_code(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    code_hash: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let used = diesel::update(
        mfa_recovery_codes::table
            .filter(mfa_recovery_codes::user_id.eq(user_id))
            .filter(mfa_recovery_codes::code_hash.eq(code_hash))
            .filter(mfa_recovery_codes::used_at.is_null()),
    )
    .set(mfa_recovery_codes::used_at.eq(now))
    .execute(conn)
    .await?;
    Ok(used == 1)
}

/// How many recovery codes of the account are still unused.
pub async fn count_unused_recovery_codes(
    conn: &mut AsyncPgConnection,
    user_id: i64,
) -> QueryResult<i64> {
    mfa_recovery_codes::table
        .filter(mfa_recovery_codes::user_id.eq(user_id))
        .filter(mfa_recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)
        .await
}

/// Removes the account's second factor (secret, confirmation, last step) and its recovery
/// codes; the account enrols again at its next login. `false` for no such account.
pub async fn remove(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<bool> {
    diesel::delete(mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(user_id)))
        .execute(conn)
        .await?;
    let changed = diesel::update(users::table.find(user_id))
        .set((
            users::totp_secret.eq(None::<String>),
            users::totp_enrolled_at.eq(None::<DateTime<Utc>>),
            users::totp_last_step.eq(None::<i64>),
        ))
        .execute(conn)
        .await?;
    Ok(changed == 1)
}
