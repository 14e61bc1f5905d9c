//! The audit trail as the core writes it: an append to `audit_events` that never fails the
//! operation it records (a failure to audit is logged at error level instead).

use std::net::IpAddr;

use crate::db::{
    DbPool,
    models::audit_event::{self, NewAuditEvent},
};

tokio::task_local! {
    /// The id of the request being served (`x-request-id`), set by the router for each
    /// request and carried into the tasks the core spawns for it, so every audit row of a
    /// request names it.
    static REQUEST_ID: Option<String>;
}

/// Runs `work` with `request_id` as the current request's id.
pub async fn with_request_id<F: std::future::Future>(
    request_id: Option<String>,
    work: F,
) -> F::Output {
    REQUEST_ID.scope(request_id, work).await
}

/// The current request's id, if a request is being served.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok().flatten()
}

/// Spawns `work` on the runtime, carrying the current request's id into it.
pub fn spawn_in_request<F>(work: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(with_request_id(current_request_id(), work))
}

/// Who did something, from where.
#[derive(Debug, Clone, Copy)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub ip: IpAddr,
}

impl Actor {
    /// A logged-in user acting from `ip`.
    pub fn user(user: &crate::db::models::user::User, ip: IpAddr) -> Self {
        Self {
            user_id: Some(user.id),
            ip,
        }
    }
}

/// Appends one event.
pub async fn append(db: &DbPool, actor: Actor, action: &str, subject: &str) {
    write(db, actor, action, subject, serde_json::json!({})).await;
}

/// The event's row, with the current request's id.
async fn insert(
    conn: &diesel_async::AsyncPgConnection,
    actor: Actor,
    action: &str,
    subject: &str,
    details: serde_json::Value,
) -> Result<(), diesel::result::Error> {
    let ip = actor.ip.to_string();
    let request_id = current_request_id();
    let event = NewAuditEvent {
        actor_user_id: actor.user_id,
        action,
        subject: Some(subject),
        client_ip: Some(&ip),
        request_id: request_id.as_deref(),
        details,
    };
    audit_event::insert(conn, &event).await
}

/// Appends one event with details (an export's filter).
pub async fn append_with(
    db: &DbPool,
    actor: Actor,
    action: &str,
    subject: &str,
    details: serde_json::Value,
) {
    write(db, actor, action, subject, details).await;
}

/// Notes that `actor` saw a list of records: one event naming the accounts whose records it
/// showed (`details.patients`), which each patient's "who saw my data" page reads. Nothing
/// is written for a list without account holders.
pub async fn append_listed(
    db: &DbPool,
    actor: Actor,
    place: &str,
    records: &[crate::db::models::record::RecordView],
) {
    let mut patients: Vec<i64> = records.iter().filter_map(|r| r.record.user_id).collect();
    patients.sort_unstable();
    patients.dedup();
    if patients.is_empty() {
        return;
    }
    write(
        db,
        actor,
        "records_listed",
        place,
        serde_json::json!({ "patients": patients }),
    )
    .await;
}

/// Appends an event of the server itself (the reconciler), marked `"actor": "system"`.
pub async fn append_system(db: &DbPool, action: &str, subject: &str, details: serde_json::Value) {
    let mut details = details;
    if let Some(map) = details.as_object_mut() {
        map.insert("actor".into(), "system".into());
    }
    write(db, Actor::command_line(), action, subject, details).await;
}

async fn write(db: &DbPool, actor: Actor, action: &str, subject: &str, details: serde_json::Value) {
    let result = match db.get().await {
        Ok(conn) => insert(&conn, actor, action, subject, details)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = result {
        tracing::error!(action, error = %e, "audit event not written");
    }
}
