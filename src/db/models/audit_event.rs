//! The `audit_events` table: an append-only trail (a trigger refuses UPDATE and DELETE).

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::audit_events;

/// One event to append.
#[derive(Debug, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewAuditEvent<'a> {
    pub actor_user_id: Option<i64>,
    pub action: &'a str,
    pub subject: Option<&'a str>,
    pub client_ip: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub details: serde_json::Value,
}

pub async fn insert(conn: &mut AsyncPgConnection, event: &NewAuditEvent<'_>) -> QueryResult<()> {
    diesel::insert_into(audit_events::table)
        .values(event)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Counts events of one action about one subject; used by tests and the staff pages.
pub async fn count(conn: &mut AsyncPgConnection, action: &str, subject: &str) -> QueryResult<i64> {
    audit_events::table
        .filter(audit_events::action.eq(action))
        .filter(audit_events::subject.eq(subject))
        .count()
        .get_result(conn)
        .await
}
