//! The `users` table: accounts of patients, staff and admins.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::users;

pub use crate::domain::values::Role;

/// A row of `users`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub full_name: String,
    pub phone: Option<String>,
    pub birth_date: Option<NaiveDate>,
    role: Role,
    pub disabled: bool,
    pub session_version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The patient card in the MIS, once known.
    pub mis_pcode: Option<i64>,
    /// When the phone was last proven by an SMS code; `None` if never.
    pub phone_verified_at: Option<DateTime<Utc>>,
    /// The branch a staff member works at: the desk opens on it.
    pub preferred_branch_id: Option<i64>,
    /// The last successful login (pages or API).
    pub last_login_at: Option<DateTime<Utc>>,
    /// When a person last set the password; `None` for an invited account that has not
    /// taken its link yet (its hash is an unusable one nobody knows).
    pub password_set_at: Option<DateTime<Utc>>,
}

impl User {
    pub fn role(&self) -> Role {
        self.role
    }
}

/// The fields of a new account, from validated values (`crate::domain::accounts`).
#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub password_hash: &'a str,
    pub full_name: &'a str,
    pub phone: Option<&'a str>,
    pub birth_date: Option<NaiveDate>,
    pub role: Role,
    pub phone_verified_at: Option<DateTime<Utc>>,
}

/// E-mail addresses are compared trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

pub async fn find_by_email(conn: &mut AsyncPgConnection, email: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::email.eq(normalize_email(email)))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

/// The account whose MIS patient card is `pcode`.
pub async fn find_by_mis_pcode(
    conn: &mut AsyncPgConnection,
    pcode: i64,
) -> QueryResult<Option<User>> {
    users::table
        .filter(users::mis_pcode.eq(pcode))
        .filter(users::disabled.eq(false))
        .order(users::id)
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn insert(conn: &mut AsyncPgConnection, new_user: &NewUser<'_>) -> QueryResult<User> {
    diesel::insert_into(users::table)
        .values(new_user)
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

/// Inserts an invited account: like [`insert`], but with `password_set_at` NULL (the
/// column's default is the insert's time), so it is known to have no password of its own.
pub async fn insert_invited(
    conn: &mut AsyncPgConnection,
    new_user: &NewUser<'_>,
) -> QueryResult<User> {
    diesel::insert_into(users::table)
        .values((
            users::email.eq(new_user.email),
            users::password_hash.eq(new_user.password_hash),
            users::full_name.eq(new_user.full_name),
            users::phone.eq(new_user.phone),
            users::birth_date.eq(new_user.birth_date),
            users::role.eq(new_user.role),
            users::phone_verified_at.eq(new_user.phone_verified_at),
            users::password_set_at.eq(None::<DateTime<Utc>>),
        ))
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

/// Sets a new password hash and ends every session and token of the account.
pub async fn set_password_hash(
    conn: &mut AsyncPgConnection,
    id: i64,
    hash: &str,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(hash),
            users::password_set_at.eq(diesel::dsl::now),
            users::session_version.eq(users::session_version + 1),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}

/// Sets the first password of an invited account, only while it is enabled and has none:
/// `None` when either no longer holds (disabled, or a password set meanwhile). Nothing else
/// changes: the account never had a session to end.
pub async fn set_first_password(
    conn: &mut AsyncPgConnection,
    id: i64,
    hash: &str,
    now: DateTime<Utc>,
) -> QueryResult<Option<User>> {
    diesel::update(
        users::table
            .filter(users::id.eq(id))
            .filter(users::disabled.eq(false))
            .filter(users::password_set_at.is_null()),
    )
    .set((
        users::password_hash.eq(hash),
        users::password_set_at.eq(now),
        users::updated_at.eq(now),
    ))
    .returning(User::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// Disables or re-enables an account; either way its sessions and tokens end.
pub async fn set_disabled(
    conn: &mut AsyncPgConnection,
    id: i64,
    disabled: bool,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((
            users::disabled.eq(disabled),
            users::session_version.eq(users::session_version + 1),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}

/// Is this the unique violation of the e-mail index?
pub fn is_duplicate_email(err: &diesel::result::Error) -> bool {
    matches!(
        err,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some("users_email_key")
    )
}

/// The newest accounts first.
pub async fn list_newest(conn: &mut AsyncPgConnection, limit: i64) -> QueryResult<Vec<User>> {
    users::table
        .order(users::id.desc())
        .limit(limit)
        .select(User::as_select())
        .load(conn)
        .await
}

/// Remembers the user's MIS patient card.
pub async fn set_mis_pcode(
    conn: &mut AsyncPgConnection,
    id: i64,
    pcode: i64,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set(users::mis_pcode.eq(pcode))
        .execute(conn)
        .await
}

/// Changes the role; the account's sessions and tokens end (privileges changed).
pub async fn set_role(conn: &mut AsyncPgConnection, id: i64, role: Role) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((
            users::role.eq(role),
            users::session_version.eq(users::session_version + 1),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}

/// Ends every session and token of the account.
pub async fn end_sessions(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((
            users::session_version.eq(users::session_version + 1),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}

/// What the admin's account list asks for; `None` is "any".
#[derive(Debug, Clone, Copy, Default)]
pub struct UserFilter<'a> {
    /// A part of the e-mail or the name.
    pub text: Option<&'a str>,
    pub role: Option<Role>,
    /// `Some(true)`: disabled accounts only; `Some(false)`: enabled ones only.
    pub disabled: Option<bool>,
}

/// Accounts that `filter` selects, newest first: one page and the total.
pub async fn search(
    conn: &mut AsyncPgConnection,
    filter: UserFilter<'_>,
    page: crate::domain::values::PageNo,
    per_page: i64,
) -> QueryResult<(Vec<User>, i64)> {
    let build = || {
        let mut q = users::table.into_boxed();
        if let Some(text) = filter.text.filter(|t| !t.is_empty()) {
            let pattern = crate::db::contains_pattern(text);
            q = q.filter(
                users::email
                    .ilike(pattern.clone())
                    .or(users::full_name.ilike(pattern)),
            );
        }
        if let Some(role) = filter.role {
            q = q.filter(users::role.eq(role));
        }
        if let Some(disabled) = filter.disabled {
            q = q.filter(users::disabled.eq(disabled));
        }
        q
    };
    let total = build().count().get_result(conn).await?;
    let items = build()
        .order(users::id.desc())
        .limit(per_page)
        .offset(page.offset(per_page))
        .select(User::as_select())
        .load(conn)
        .await?;
    Ok((items, total))
}

/// Changes the name and e-mail.
pub async fn set_profile(
    conn: &mut AsyncPgConnection,
    id: i64,
    full_name: &str,
    email: &str,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((
            users::full_name.eq(full_name),
            users::email.eq(email),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}

/// Sets a phone proven by a code just now. The MIS card stays: the patient is the same.
pub async fn set_verified_phone(
    conn: &mut AsyncPgConnection,
    id: i64,
    phone: &str,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((
            users::phone.eq(phone),
            users::phone_verified_at.eq(diesel::dsl::now),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}

/// An enabled account whose proven phone is `phone` (the most recently proven one).
pub async fn find_by_verified_phone(
    conn: &mut AsyncPgConnection,
    phone: &str,
) -> QueryResult<Option<User>> {
    users::table
        .filter(users::phone.eq(phone))
        .filter(users::phone_verified_at.is_not_null())
        .filter(users::disabled.eq(false))
        .order(users::phone_verified_at.desc())
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

/// Notes a successful login (shown to admins).
pub async fn touch_last_login(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::last_login_at.eq(diesel::dsl::now))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Sets the branch a staff member's desk opens on.
pub async fn set_preferred_branch(
    conn: &mut AsyncPgConnection,
    id: i64,
    branch_id: Option<i64>,
) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::preferred_branch_id.eq(branch_id))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Sets a new password hash and leaves the account's sessions and tokens alone: its owner
/// changed the password and chose to keep their other sessions.
pub async fn set_password_hash_keeping_sessions(
    conn: &mut AsyncPgConnection,
    id: i64,
    hash: &str,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(hash),
            users::password_set_at.eq(diesel::dsl::now),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}
