//! The `login_sessions` table: one row per page login, listed on the user's «Сеансы» page and
//! ended from there (or by logout). The cookie session in Redis holds the row's `login_id`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::login_sessions;

/// A row of `login_sessions`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = login_sessions, check_for_backend(diesel::pg::Pg))]
pub struct LoginSession {
    pub id: i64,
    pub user_id: i64,
    /// Random; the cookie session names its row by it. Never shown on a page.
    pub login_id: String,
    /// «Chrome, Windows».
    pub device: String,
    pub client_ip: String,
    /// The account's `session_version` at login (or at this session's password change).
    pub session_version: i32,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = login_sessions)]
pub struct NewLoginSession<'a> {
    pub user_id: i64,
    pub login_id: &'a str,
    pub device: &'a str,
    pub client_ip: &'a str,
    pub session_version: i32,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewLoginSession<'_>) -> QueryResult<()> {
    diesel::insert_into(login_sessions::table)
        .values(new)
        .execute(conn)
        .await
        .map(drop)
}

pub async fn find_by_login_id(
    conn: &mut AsyncPgConnection,
    login_id: &str,
) -> QueryResult<Option<LoginSession>> {
    login_sessions::table
        .filter(login_sessions::login_id.eq(login_id))
        .select(LoginSession::as_select())
        .first(conn)
        .await
        .optional()
}

/// Notes that the session was used at `now`.
pub async fn touch(conn: &mut AsyncPgConnection, id: i64, now: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(login_sessions::table.find(id))
        .set(login_sessions::last_seen_at.eq(now))
        .execute(conn)
        .await
        .map(drop)
}

/// The session's account changed its `session_version` and this session stays logged in
/// (its own password change).
pub async fn set_version(
    conn: &mut AsyncPgConnection,
    login_id: &str,
    session_version: i32,
) -> QueryResult<()> {
    diesel::update(login_sessions::table.filter(login_sessions::login_id.eq(login_id)))
        .set(login_sessions::session_version.eq(session_version))
        .execute(conn)
        .await
        .map(drop)
}

/// The account's sessions that may still be alive: not ended, of its current
/// `session_version`, used since `seen_since` and begun since `started_since`; newest first.
pub async fn list_live(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    session_version: i32,
    seen_since: DateTime<Utc>,
    started_since: DateTime<Utc>,
) -> QueryResult<Vec<LoginSession>> {
    login_sessions::table
        .filter(login_sessions::user_id.eq(user_id))
        .filter(login_sessions::ended_at.is_null())
        .filter(login_sessions::session_version.eq(session_version))
        .filter(login_sessions::last_seen_at.ge(seen_since))
        .filter(login_sessions::created_at.ge(started_since))
        .order((login_sessions::created_at.desc(), login_sessions::id.desc()))
        .select(LoginSession::as_select())
        .load(conn)
        .await
}

/// Ends the account's session `id` unless it is the one named `keep` (the asker's own) or
/// ended already; the ended row.
pub async fn end_one(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    id: i64,
    keep: &str,
    now: DateTime<Utc>,
) -> QueryResult<Option<LoginSession>> {
    diesel::update(
        login_sessions::table
            .filter(login_sessions::id.eq(id))
            .filter(login_sessions::user_id.eq(user_id))
            .filter(login_sessions::login_id.ne(keep))
            .filter(login_sessions::ended_at.is_null()),
    )
    .set(login_sessions::ended_at.eq(now))
    .returning(LoginSession::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// Ends every session of the account but the one named `keep`; the ended rows.
pub async fn end_all_but(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    keep: &str,
    now: DateTime<Utc>,
) -> QueryResult<Vec<LoginSession>> {
    diesel::update(
        login_sessions::table
            .filter(login_sessions::user_id.eq(user_id))
            .filter(login_sessions::login_id.ne(keep))
            .filter(login_sessions::ended_at.is_null()),
    )
    .set(login_sessions::ended_at.eq(now))
    .returning(LoginSession::as_returning())
    .get_results(conn)
    .await
}

/// Ends the session named `login_id` (its logout).
pub async fn end_by_login_id(
    conn: &mut AsyncPgConnection,
    login_id: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(
        login_sessions::table
            .filter(login_sessions::login_id.eq(login_id))
            .filter(login_sessions::ended_at.is_null()),
    )
    .set(login_sessions::ended_at.eq(now))
    .execute(conn)
    .await
    .map(drop)
}
