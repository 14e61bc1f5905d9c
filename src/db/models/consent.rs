//! The `consent_texts` and `consents` tables: the versioned texts a person agrees to, and
//! each consent given (by an account or a phone), with its address and any withdrawal.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::prepared::KeepPrepared;

use crate::{
    db::schema::{consent_texts, consents},
    domain::values::ConsentPurpose,
};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = consent_texts, check_for_backend(diesel::pg::Pg))]
pub struct ConsentText {
    pub id: i64,
    pub purpose: ConsentPurpose,
    pub version: i32,
    pub title: String,
    pub body: String,
    pub published_at: DateTime<Utc>,
}

/// The newest version of each purpose's text.
pub async fn current_texts(conn: &AsyncPgConnection) -> QueryResult<Vec<ConsentText>> {
    let mut conn = conn;
    consent_texts::table
        .distinct_on(consent_texts::purpose)
        .order((consent_texts::purpose, consent_texts::version.desc()))
        .select(ConsentText::as_select())
        .load(&mut conn)
        .await
}

/// Consents of `user_id` or `phone` against the newest text of each of `purposes`: the texts
/// read and the rows written in one statement.
pub async fn insert_current(
    conn: &AsyncPgConnection,
    user_id: Option<i64>,
    phone: Option<&str>,
    purposes: &[ConsentPurpose],
    client_ip: &str,
) -> QueryResult<usize> {
    use diesel::sql_types::{BigInt, Nullable, Text};
    let mut conn = conn;
    let newest = consent_texts::table
        .distinct_on(consent_texts::purpose)
        .filter(consent_texts::purpose.eq_any(purposes))
        .order((consent_texts::purpose, consent_texts::version.desc()))
        .select((
            user_id.into_sql::<Nullable<BigInt>>(),
            phone.into_sql::<Nullable<Text>>(),
            consent_texts::id,
            client_ip.into_sql::<Text>(),
        ));
    // The purposes are one array parameter, so the text is the same whatever was ticked.
    KeepPrepared(
        diesel::insert_into(consents::table)
            .values(newest)
            .into_columns((
                consents::user_id,
                consents::phone,
                consents::text_id,
                consents::client_ip,
            )),
    )
    .execute(&mut conn)
    .await
}

/// Consents given on `phone` without an account become the account's.
pub async fn adopt_by_phone(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    phone: &str,
) -> QueryResult<usize> {
    diesel::update(
        consents::table
            .filter(consents::user_id.is_null())
            .filter(consents::phone.eq(phone)),
    )
    .set(consents::user_id.eq(user_id))
    .execute(conn)
    .await
}

/// A consent given by an account, with the text it was given against.
#[derive(Debug, Clone, Queryable)]
pub struct ConsentRecord {
    pub id: i64,
    pub purpose: ConsentPurpose,
    pub text_version: i32,
    pub text_title: String,
    pub given_at: DateTime<Utc>,
    pub client_ip: String,
    pub withdrawn_at: Option<DateTime<Utc>>,
}

/// Every consent the account gave, oldest first.
pub async fn of_user(
    conn: &mut AsyncPgConnection,
    user_id: i64,
) -> QueryResult<Vec<ConsentRecord>> {
    consents::table
        .inner_join(consent_texts::table)
        .filter(consents::user_id.eq(user_id))
        .order((consents::given_at.asc(), consents::id.asc()))
        .select((
            consents::id,
            consent_texts::purpose,
            consent_texts::version,
            consent_texts::title,
            consents::given_at,
            consents::client_ip,
            consents::withdrawn_at,
        ))
        .load(conn)
        .await
}

/// Marks every consent of the account for `purpose` that is still in force withdrawn at
/// `now`; how many were.
pub async fn withdraw(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    purpose: ConsentPurpose,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    // The texts of the purpose first (a handful of versions), then the update by their ids.
    let text_ids: Vec<i64> = consent_texts::table
        .filter(consent_texts::purpose.eq(purpose))
        .select(consent_texts::id)
        .load(conn)
        .await?;
    diesel::update(
        consents::table
            .filter(consents::user_id.eq(user_id))
            .filter(consents::withdrawn_at.is_null())
            .filter(consents::text_id.eq_any(text_ids)),
    )
    .set(consents::withdrawn_at.eq(now))
    .execute(conn)
    .await
}
