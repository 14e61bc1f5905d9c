//! The `idempotency_keys` table: the first successful answer to a request carrying an
//! `Idempotency-Key`, per caller, so a retry gets the same answer and never books twice.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::idempotency_keys;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = idempotency_keys, check_for_backend(diesel::pg::Pg))]
pub struct StoredAnswer {
    pub request_hash: String,
    pub status_code: i32,
    pub response: serde_json::Value,
}

pub async fn find(
    conn: &mut AsyncPgConnection,
    scope: &str,
    key: &str,
) -> QueryResult<Option<StoredAnswer>> {
    idempotency_keys::table
        .find((scope, key))
        .select(StoredAnswer::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    scope: &str,
    key: &str,
    request_hash: &str,
    status_code: i32,
    response: &serde_json::Value,
) -> QueryResult<()> {
    diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::scope.eq(scope),
            idempotency_keys::key.eq(key),
            idempotency_keys::request_hash.eq(request_hash),
            idempotency_keys::status_code.eq(status_code),
            idempotency_keys::response.eq(response),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}
