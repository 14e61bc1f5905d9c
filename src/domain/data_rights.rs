//! A patient's rights over their data (152-FZ art. 14, 20): who has seen it (the access
//! log), everything the clinic holds about them in one export, and the refused attempts to
//! reach their records, which that log shows too.
//!
//! The access log is read from `audit_events` and `sms_outbox` (see
//! `db::models::audit_event::access_log` for what counts). The export is plain data with a
//! published JSON Schema (`docs/public/my-data.schema.json`), built from these types by
//! utoipa, so the file and the code cannot drift apart (a unit test compares them).

use std::{collections::BTreeMap, net::IpAddr};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    db::{
        DbPool,
        models::{
            audit_event::{self, AccessRow},
            consent::{self as consent_rows, ConsentRecord},
            outbox::{self, OutboxMessage},
            record::{self, RecordView},
            user::User,
            verification,
        },
    },
    domain::{
        audit::{self, Actor},
        values::{ConsentPurpose, PageNo, RecordSource, RecordStatus, Role},
    },
};

/// Why a data-rights operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DataRightsError {
    /// Nothing to act on (no consent in force for the purpose).
    #[error("not found")]
    NotFound,
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
}

/// The actions of the MIS change feed: the clinic changed the record in its own system.
const CLINIC_ACTIONS: [&str; 4] = [
    "record_booked_by_clinic",
    "record_cancelled_by_clinic",
    "record_moved_by_clinic",
    "record_visited",
];

/// Who reached the patient's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Accessor {
    // An employee of the clinic (named in `who_name`).
    Staff,
    // An administrator (named in `who_name`).
    Admin,
    // Another patient's account (a refused attempt); never named.
    OtherPatient,
    // The clinic in its own system (the MIS), brought in by the change feed.
    Clinic,
    // The server itself: reconciliation, the operator's command line, an SMS.
    System,
    // Someone without an account: a visit link from an SMS, a registration attempt.
    Visitor,
    // An account that no longer exists.
    RemovedAccount,
}

/// One access to the patient's data by someone else, or an SMS sent to them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccessEntry {
    /// When it happened (UTC); for an SMS, when it was sent.
    pub at: DateTime<Utc>,
    pub who: Accessor,
    /// The employee's full name, for `staff` and `admin` only.
    pub who_name: Option<String>,
    /// The audit action (`record_viewed`, `records_exported`, ...), or `sms_sent`.
    pub action: String,
    /// The patient's record it was about, if any (see `visits`).
    pub record_id: Option<i64>,
    /// For `sms_sent`: the kind of the message (`booked`, `moved`, `cancelled`, `reminder`,
    /// `code`, `notice`).
    pub sms_kind: Option<String>,
}

impl AccessEntry {
    fn from_row(row: AccessRow) -> Self {
        let (who, who_name) = accessor(&row);
        Self {
            at: row.at,
            who,
            who_name,
            record_id: row.record_ref.as_deref().and_then(|r| r.parse().ok()),
            sms_kind: row.sms_kind,
            action: row.action,
        }
    }
}

/// Who acted, from the event's actor and action. Another patient is never named: their
/// name is their own data.
fn accessor(row: &AccessRow) -> (Accessor, Option<String>) {
    match (row.actor_user_id, row.actor_role) {
        (Some(_), Some(Role::Staff)) => (Accessor::Staff, row.actor_name.clone()),
        (Some(_), Some(Role::Admin)) => (Accessor::Admin, row.actor_name.clone()),
        (Some(_), Some(Role::Patient)) => (Accessor::OtherPatient, None),
        (Some(_), None) => (Accessor::RemovedAccount, None),
        (None, _) if CLINIC_ACTIONS.contains(&row.action.as_str()) => (Accessor::Clinic, None),
        (None, _) if row.by_system => (Accessor::System, None),
        // Without an account and not the server: a visitor with a visit link (record
        // actions) or someone registering with the patient's e-mail.
        (None, _)
            if row.action.starts_with("record_") || row.action == "registration_email_taken" =>
        {
            (Accessor::Visitor, None)
        }
        // An account changed without an actor: the operator's command line on the server.
        (None, _) => (Accessor::System, None),
    }
}

/// One page of the access log, with the patient's records it names.
#[derive(Debug, Clone)]
pub struct AccessLogPage {
    pub entries: Vec<AccessEntry>,
    /// The patient's records named by `entries` (with doctor, branch and time).
    pub records: Vec<RecordView>,
    pub total: i64,
    pub page: PageNo,
    pub per_page: i64,
}

impl AccessLogPage {
    pub fn pages(&self) -> i64 {
        PageNo::count(self.total, self.per_page)
    }
}

/// One page of `patient`'s access log, newest first.
pub async fn access_log(
    db: &DbPool,
    patient: &User,
    page: PageNo,
    per_page: i64,
) -> Result<AccessLogPage, DataRightsError> {
    let mut conn = db.get().await?;
    let (rows, total) = audit_event::access_log(
        &mut conn,
        patient.id,
        patient.phone.as_deref(),
        per_page,
        page.offset(per_page),
    )
    .await?;
    let entries: Vec<AccessEntry> = rows.into_iter().map(AccessEntry::from_row).collect();
    let mut ids: Vec<i64> = entries.iter().filter_map(|e| e.record_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let records = record::views_of_user(&mut conn, patient.id, Some(ids.as_slice())).await?;
    Ok(AccessLogPage {
        entries,
        records,
        total,
        page,
        per_page,
    })
}

/// The account, as the export shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountData {
    pub id: i64,
    pub email: String,
    pub full_name: String,
    pub birth_date: Option<NaiveDate>,
    pub role: Role,
    /// When the account was created (UTC).
    pub created_at: DateTime<Utc>,
    /// The last successful login (UTC).
    pub last_login_at: Option<DateTime<Utc>>,
    /// The patient's card number in the clinic's system (MIS), once known.
    pub mis_patient_card: Option<i64>,
}

/// A phone of the account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PhoneData {
    /// E.164.
    pub phone: String,
    /// The phone the account has now.
    pub current: bool,
    /// When it was last proven by an SMS code (UTC), if ever.
    pub proven_at: Option<DateTime<Utc>>,
}

/// A consent given, against a version of its text.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentData {
    pub id: i64,
    pub purpose: ConsentPurpose,
    pub text_version: i32,
    pub text_title: String,
    /// When it was given (UTC).
    pub given_at: DateTime<Utc>,
    /// The address it was given from.
    pub given_from: String,
    /// When it was withdrawn (UTC); `null` while in force.
    pub withdrawn_at: Option<DateTime<Utc>>,
}

/// A visit (a record); `start` and `end` are RFC 3339 with the branch's offset.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VisitData {
    pub id: i64,
    /// The appointment's number in the clinic's system (MIS).
    pub mis_id: i64,
    #[schema(format = DateTime)]
    pub start: String,
    #[schema(format = DateTime)]
    pub end: String,
    /// The branch's IANA zone.
    pub timezone: String,
    pub status: RecordStatus,
    pub source: RecordSource,
    pub doctor: String,
    pub specialities: Vec<String>,
    pub branch: String,
    pub branch_address: String,
    /// The patient as the record names them.
    pub patient_name: String,
    pub patient_phone: String,
    pub patient_birth_date: Option<NaiveDate>,
    pub patient_email: Option<String>,
    pub comment: Option<String>,
    /// The patient's words when cancelling, if any.
    pub cancel_reason: Option<String>,
    /// When it was booked (UTC).
    pub created_at: DateTime<Utc>,
    /// When it was cancelled (UTC).
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl VisitData {
    fn new(view: &RecordView) -> Self {
        let r = &view.record;
        Self {
            id: r.id,
            mis_id: r.mis_id,
            start: view.local_start().to_rfc3339(),
            end: view.local_end().to_rfc3339(),
            timezone: view.branch_zone.name().to_owned(),
            status: r.status,
            source: r.source,
            doctor: view.specialist_name.clone(),
            specialities: view.specialities.clone(),
            branch: view.branch_name.clone(),
            branch_address: view.branch_address.clone(),
            patient_name: r.patient_full_name(),
            patient_phone: r.patient_phone.clone(),
            patient_birth_date: r.patient_birth_date,
            patient_email: r.patient_email.clone(),
            comment: r.comment.clone(),
            cancel_reason: r.cancel_reason.clone(),
            created_at: r.created_at,
            cancelled_at: r.cancelled_at,
        }
    }
}

/// An SMS to the patient. Codes and visit links are blanked once a message has left.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SmsData {
    pub id: i64,
    /// The record it is about, if any.
    pub record_id: Option<i64>,
    /// `booked`, `moved`, `cancelled`, `reminder`, `code` or `notice`.
    pub kind: String,
    pub phone: String,
    pub text: String,
    /// `pending`, `sending`, `unknown`, `sent` or `failed`.
    pub status: String,
    /// Once sent: `pending`, `delivered`, `undelivered` or `expired`.
    pub delivery: Option<String>,
    /// When it was queued (UTC).
    pub created_at: DateTime<Utc>,
    /// When it was sent (UTC).
    pub sent_at: Option<DateTime<Utc>>,
}

impl SmsData {
    fn new(m: OutboxMessage) -> Self {
        Self {
            id: m.id,
            record_id: m.record_id,
            kind: m.kind,
            phone: m.phone,
            text: m.body,
            status: m.status,
            delivery: m.delivery,
            created_at: m.created_at,
            sent_at: m.sent_at,
        }
    }
}

/// Everything the clinic's server holds about a patient: `GET /cabinet/my-data.json`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MyDataExport {
    /// The version of this format.
    pub format_version: i32,
    /// When the export was made (UTC).
    pub generated_at: DateTime<Utc>,
    pub account: AccountData,
    pub phones: Vec<PhoneData>,
    pub consents: Vec<ConsentData>,
    pub visits: Vec<VisitData>,
    pub sms: Vec<SmsData>,
    /// Every access to the patient's data by someone else, and every SMS sent, newest first.
    pub access_log: Vec<AccessEntry>,
}

/// The export, and the records it holds as the pages show them.
#[derive(Debug, Clone)]
pub struct MyData {
    pub export: MyDataExport,
    pub records: Vec<RecordView>,
}

/// The phones of the account: the current one first, then the others it proved.
fn phones(patient: &User, proven: Vec<(String, DateTime<Utc>)>) -> Vec<PhoneData> {
    let mut phones: Vec<PhoneData> = patient
        .phone
        .iter()
        .map(|phone| PhoneData {
            phone: phone.clone(),
            current: true,
            proven_at: patient.phone_verified_at,
        })
        .collect();
    // The latest proof of each other phone.
    let mut others: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for (phone, at) in proven {
        if patient.phone.as_deref() != Some(phone.as_str()) {
            others.insert(phone, at);
        }
    }
    phones.extend(others.into_iter().map(|(phone, at)| PhoneData {
        phone,
        current: false,
        proven_at: Some(at),
    }));
    phones
}

fn consent_data(c: ConsentRecord) -> ConsentData {
    ConsentData {
        id: c.id,
        purpose: c.purpose,
        text_version: c.text_version,
        text_title: c.text_title,
        given_at: c.given_at,
        given_from: c.client_ip,
        withdrawn_at: c.withdrawn_at,
    }
}

/// Everything about `patient`, as of `now`; audited (`my_data_exported`, with `format`,
/// the face's name for how it was shown).
pub async fn export(
    db: &DbPool,
    patient: &User,
    now: DateTime<Utc>,
    ip: IpAddr,
    format: &'static str,
) -> Result<MyData, DataRightsError> {
    let mut conn = db.get().await?;
    let records = record::views_of_user(&mut conn, patient.id, None).await?;
    let record_ids: Vec<i64> = records.iter().map(|v| v.record.id).collect();
    let messages = outbox::to_person(&mut conn, &record_ids, patient.phone.as_deref()).await?;
    let consents = consent_rows::of_user(&mut conn, patient.id).await?;
    let proven = verification::proven_phones(&mut conn, patient.id).await?;
    let (log, _) =
        audit_event::access_log(&mut conn, patient.id, patient.phone.as_deref(), i64::MAX, 0)
            .await?;
    drop(conn);
    let export = MyDataExport {
        format_version: 1,
        generated_at: now,
        account: AccountData {
            id: patient.id,
            email: patient.email.clone(),
            full_name: patient.full_name.clone(),
            birth_date: patient.birth_date,
            role: patient.role(),
            created_at: patient.created_at,
            last_login_at: patient.last_login_at,
            mis_patient_card: patient.mis_pcode,
        },
        phones: phones(patient, proven),
        consents: consents.into_iter().map(consent_data).collect(),
        visits: records.iter().map(VisitData::new).collect(),
        sms: messages.into_iter().map(SmsData::new).collect(),
        access_log: log.into_iter().map(AccessEntry::from_row).collect(),
    };
    audit::append_with(
        db,
        Actor::user(patient, ip),
        "my_data_exported",
        &patient.id.to_string(),
        serde_json::json!({ "format": format }),
    )
    .await;
    Ok(MyData { export, records })
}

/// Audits an attempt by `viewer` to reach record `record_id` through `path` when the
/// record exists and is not theirs (`access_denied`, with `details.record_id`, so the
/// record's owner sees it in their access log). The face answers 404 either way, as for a
/// record that does not exist, which is not audited. Like every audit append, a failure is
/// logged and never fails the request.
pub async fn note_refused_record(
    db: &DbPool,
    viewer: &User,
    ip: IpAddr,
    path: &str,
    record_id: i64,
) {
    let owner = match db.get().await {
        Ok(mut conn) => record::owner_of(&mut conn, record_id).await,
        Err(e) => {
            tracing::error!(error = %e, "refused record not audited");
            return;
        }
    };
    match owner {
        Ok(Some(owner)) if owner != Some(viewer.id) => {
            audit::append_with(
                db,
                Actor::user(viewer, ip),
                "access_denied",
                path,
                serde_json::json!({ "record_id": record_id }),
            )
            .await;
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "refused record not audited"),
    }
}

/// The JSON Schema (2020-12) of [`MyDataExport`]: utoipa's schema of the type, with the
/// types it refers to under `$defs`. Committed as `docs/public/my-data.schema.json`.
pub fn my_data_schema() -> Result<serde_json::Value, serde_json::Error> {
    use utoipa::PartialSchema;

    let mut nested = Vec::new();
    <MyDataExport as ToSchema>::schemas(&mut nested);
    let mut defs = serde_json::Map::new();
    for (name, schema) in nested {
        defs.insert(name, serde_json::to_value(schema)?);
    }
    let mut root = serde_json::to_value(<MyDataExport as PartialSchema>::schema())?;
    if let Some(map) = root.as_object_mut() {
        map.insert(
            "$schema".into(),
            "https://json-schema.org/draft/2020-12/schema".into(),
        );
        map.insert(
            "title".into(),
            "sovamed: a patient's data (GET /cabinet/my-data.json)".into(),
        );
        map.insert("$defs".into(), serde_json::Value::Object(defs));
    }
    point_refs_at_defs(&mut root);
    Ok(root)
}

/// utoipa refers to `#/components/schemas/<name>` (an OpenAPI document's place); a
/// standalone schema keeps them under `#/$defs/<name>`.
fn point_refs_at_defs(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if key == "$ref" {
                    if let serde_json::Value::String(target) = inner {
                        let moved = target
                            .strip_prefix("#/components/schemas/")
                            .map(|name| format!("#/$defs/{name}"));
                        if let Some(moved) = moved {
                            *target = moved;
                        }
                    }
                } else {
                    point_refs_at_defs(inner);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(point_refs_at_defs),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(actor: Option<i64>, role: Option<Role>, action: &str, by_system: bool) -> AccessRow {
        AccessRow {
            event_id: Some(1),
            sms_id: None,
            at: Utc::now(),
            actor_user_id: actor,
            action: action.to_owned(),
            by_system,
            record_ref: Some("7".to_owned()),
            sms_kind: None,
            actor_name: Some("Регистраторова Анна".to_owned()),
            actor_role: role,
        }
    }

    #[test]
    fn actors_are_told_apart_and_other_patients_are_not_named() {
        let staff = accessor(&row(Some(2), Some(Role::Staff), "record_viewed", false));
        assert_eq!(
            staff,
            (Accessor::Staff, Some("Регистраторова Анна".to_owned()))
        );
        assert_eq!(
            accessor(&row(Some(3), Some(Role::Patient), "access_denied", false)),
            (Accessor::OtherPatient, None)
        );
        assert_eq!(
            accessor(&row(None, None, "record_moved_by_clinic", true)).0,
            Accessor::Clinic
        );
        assert_eq!(
            accessor(&row(None, None, "record_cancelled_by_reconcile", true)).0,
            Accessor::System
        );
        assert_eq!(
            accessor(&row(None, None, "record_cancelled", false)).0,
            Accessor::Visitor
        );
        assert_eq!(
            accessor(&row(None, None, "user_disabled", false)).0,
            Accessor::System
        );
        assert_eq!(
            accessor(&row(Some(9), None, "record_viewed", false)).0,
            Accessor::RemovedAccount
        );
        assert_eq!(
            AccessEntry::from_row(row(None, None, "sms_sent", true)).record_id,
            Some(7)
        );
    }

    /// `docs/public/my-data.schema.json` is what the code generates. After a change to the
    /// export's types, write the file anew with `just my-data-schema` (which runs this test
    /// with `UPDATE_SCHEMAS=1`) and commit it.
    #[test]
    fn the_committed_schema_is_generated_from_the_code() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/public/my-data.schema.json"
        );
        let generated = my_data_schema().expect("schema");
        if std::env::var_os("UPDATE_SCHEMAS").is_some() {
            let text = serde_json::to_string_pretty(&generated).expect("json") + "\n";
            std::fs::write(path, text).expect("write the schema");
        }
        let committed: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("read the schema"))
                .expect("the committed schema is JSON");
        assert_eq!(
            committed, generated,
            "docs/public/my-data.schema.json differs from the code: run `just my-data-schema` \
             and commit the file"
        );
    }

    #[test]
    fn refs_point_at_defs() {
        let schema = my_data_schema().expect("schema");
        let text = schema.to_string();
        assert!(!text.contains("#/components/schemas/"), "{text}");
        for name in [
            "AccountData",
            "VisitData",
            "AccessEntry",
            "Accessor",
            "RecordStatus",
        ] {
            assert!(schema["$defs"][name].is_object(), "{name} in $defs");
        }
    }
}
