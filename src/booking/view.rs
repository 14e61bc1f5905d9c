//! The JSON shape of a record (the contract's `record` object).

use serde_json::{Value, json};

use crate::db::models::{outbox::OutboxMessage, record::RecordView};

/// `{"id","mis_id","status","start","end","specialist","branch","patient","source","created_at"}`
/// with times in the branch's zone.
pub fn record_json(view: &RecordView) -> Value {
    let r = &view.record;
    json!({
        "id": r.id,
        "mis_id": r.mis_id,
        "status": r.status,
        "start": view.local_start().to_rfc3339(),
        "end": view.local_end().to_rfc3339(),
        "timezone": view.branch_timezone,
        "specialist": { "id": r.specialist_id, "full_name": view.specialist_name },
        "branch": { "id": r.branch_id, "name": view.branch_name, "address": view.branch_address },
        "patient": { "full_name": r.patient_full_name(), "phone_masked": r.phone_masked() },
        "source": r.source,
        "created_at": r.created_at.to_rfc3339(),
    })
}

/// The record with the delivery state of its latest SMS.
pub fn record_with_notification(view: &RecordView, messages: &[OutboxMessage]) -> Value {
    let mut value = record_json(view);
    if let Some(last) = messages.last() {
        let mut notification =
            json!({ "kind": last.kind, "status": last.status, "attempts": last.attempts });
        if let Some(error) = &last.last_error {
            notification["last_error"] = json!(error);
        }
        value["notification"] = notification;
    } else {
        value["notification"] = Value::Null;
    }
    value
}
