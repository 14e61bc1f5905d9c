//! The `audit_events` table: an append-only trail (a trigger refuses UPDATE and DELETE).

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::prepared::KeepPrepared;

use crate::{
    db::schema::{audit_events, records, users},
    domain::values::{PageNo, Role},
};

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

pub async fn insert(conn: &AsyncPgConnection, event: &NewAuditEvent<'_>) -> QueryResult<()> {
    let mut conn = conn;
    KeepPrepared(diesel::insert_into(audit_events::table).values(event))
        .execute(&mut conn)
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

/// A stored event as the audit screen lists it (`details` is not shown there).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events, check_for_backend(diesel::pg::Pg))]
pub struct AuditEvent {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor_user_id: Option<i64>,
    pub action: String,
    pub subject: Option<String>,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
}

/// An event with its actor's name and role; both `None` when no account acted (the server
/// itself, the command line, an anonymous login attempt).
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub event: AuditEvent,
    pub actor_name: Option<String>,
    pub actor_role: Option<Role>,
}

/// What the audit screen asks for: every filter that is set narrows the list.
#[derive(Debug, Clone)]
pub struct AuditFilter {
    /// A part of the acting account's e-mail or full name.
    pub actor: Option<String>,
    /// One action code.
    pub action: Option<String>,
    /// Events about one account: done by it, or naming it, its e-mail or one of its records.
    pub patient_id: Option<i64>,
    /// The first day, inclusive. Days are Moscow calendar days, as the screen shows every
    /// time on Moscow clocks («мск»).
    pub date_from: Option<NaiveDate>,
    /// The last day, inclusive (a Moscow day, as above).
    pub date_to: Option<NaiveDate>,
    pub page: PageNo,
    pub per_page: i64,
}

/// How an account is named as an event's subject.
struct SubjectsOf {
    user_id: i64,
    /// Its id and e-mail (the subject of login events, also of those with no actor, such as
    /// throttled attempts), and the ids of its records, all as text.
    exact: Vec<String>,
    /// A role change is written as `<id> → <role>`.
    role_change: String,
}

async fn subjects_of(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<SubjectsOf> {
    // The record ids are read first and bound as one list: a patient has at most some
    // hundreds of records, and this keeps the event query free of a cross-table subquery
    // with a cast of the id to text.
    let record_ids: Vec<i64> = records::table
        .filter(records::user_id.eq(user_id))
        .select(records::id)
        .load(conn)
        .await?;
    let email: Option<String> = users::table
        .find(user_id)
        .select(users::email)
        .first(conn)
        .await
        .optional()?;
    let mut exact: Vec<String> = record_ids.iter().map(i64::to_string).collect();
    exact.push(user_id.to_string());
    exact.extend(email);
    Ok(SubjectsOf {
        user_id,
        exact,
        role_change: format!("{user_id} → %"),
    })
}

/// The first instant of a Moscow calendar day (Moscow keeps no summer time, so midnight is
/// never skipped or doubled; UTC midnight only if the zone data said otherwise).
fn start_of_day(day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_time(NaiveTime::MIN);
    midnight
        .and_local_timezone(chrono_tz::Europe::Moscow)
        .earliest()
        .map_or_else(|| midnight.and_utc(), |at| at.with_timezone(&Utc))
}

/// One page of the events `filter` selects, newest first, and how many it selects in all.
pub async fn search(
    conn: &mut AsyncPgConnection,
    filter: &AuditFilter,
) -> QueryResult<(Vec<AuditRow>, i64)> {
    let about = match filter.patient_id {
        Some(id) => Some(subjects_of(conn, id).await?),
        None => None,
    };
    let from = filter.date_from.map(start_of_day);
    // Up to the start of the day after `date_to`, so that the whole last day counts.
    let until = filter
        .date_to
        .and_then(|day| day.succ_opt())
        .map(start_of_day);
    let build = || {
        let mut q = audit_events::table.left_join(users::table).into_boxed();
        if let Some(text) = filter.actor.as_deref().filter(|t| !t.is_empty()) {
            let pattern = crate::db::contains_pattern(text);
            q = q.filter(
                users::email
                    .ilike(pattern.clone())
                    .or(users::full_name.ilike(pattern)),
            );
        }
        if let Some(action) = filter.action.as_deref() {
            q = q.filter(audit_events::action.eq(action));
        }
        if let Some(about) = &about {
            q = q.filter(
                audit_events::actor_user_id
                    .eq(about.user_id)
                    .or(audit_events::subject.eq_any(about.exact.clone()))
                    .or(audit_events::subject.like(about.role_change.clone())),
            );
        }
        if let Some(from) = from {
            q = q.filter(audit_events::occurred_at.ge(from));
        }
        if let Some(until) = until {
            q = q.filter(audit_events::occurred_at.lt(until));
        }
        q
    };
    let total = build().count().get_result(conn).await?;
    let rows: Vec<(AuditEvent, Option<String>, Option<Role>)> = build()
        .order((audit_events::occurred_at.desc(), audit_events::id.desc()))
        .limit(filter.per_page)
        .offset(filter.page.offset(filter.per_page))
        .select((
            AuditEvent::as_select(),
            users::full_name.nullable(),
            users::role.nullable(),
        ))
        .load(conn)
        .await?;
    let rows = rows
        .into_iter()
        .map(|(event, actor_name, actor_role)| AuditRow {
            event,
            actor_name,
            actor_role,
        })
        .collect();
    Ok((rows, total))
}

/// One line of a patient's access log: an audit event about the patient's data done by
/// someone else, or an SMS sent to them. Read by [`access_log`].
#[derive(Debug, Clone, QueryableByName)]
pub struct AccessRow {
    /// The audit event; `None` for an SMS.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub event_id: Option<i64>,
    /// The SMS (`sms_outbox.id`); `None` for an audit event.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub sms_id: Option<i64>,
    /// When it happened (an SMS: when it was sent).
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub actor_user_id: Option<i64>,
    /// The audit action, or `sms_sent` for an SMS.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub action: String,
    /// Written by the server itself (`"actor": "system"` in the details), or an SMS.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub by_system: bool,
    /// The record it is about, as text (an event's subject or `details.record_id`).
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub record_ref: Option<String>,
    /// An SMS's kind (`sms_outbox.kind`).
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub sms_kind: Option<String>,
    /// The acting account's name and role, when an account acted and still exists.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub actor_name: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub actor_role: Option<Role>,
}

/// The entries of a patient's access log as one SQL `WITH`: `$1` is the patient's account
/// id, `$2` their phone (or NULL). An event counts when someone other than the patient did
/// it (another account, the server, a visitor without an account) and it is about
/// - one of the patient's records: the subject of a `record_*` action, or `details.record_id`
///   of `sms_resent` and `access_denied` (a refused attempt to open it);
/// - the patient's account: the subject of what an admin, the command line or a stranger
///   did to it (`<id> → <role>` for a role change);
/// - a list or an export that showed the patient: `details.patients` holds their id.
///
/// SMS count when sent, about one of the patient's records or, without a record (codes,
/// notices), to the patient's phone; an SMS about another person's record on the same phone
/// is not theirs to see.
///
/// The action lists are literals of this file, never input. The record ids are compared as
/// text because subjects are text; `records_listed` and `records_exported` write the ids
/// as JSON numbers.
const ACCESS_LOG: &str = "WITH mine AS (SELECT id FROM records WHERE user_id = $1), \
     entries AS ( \
       SELECT e.id AS event_id, NULL::bigint AS sms_id, e.occurred_at AS at, e.actor_user_id, \
         e.action, COALESCE(e.details ->> 'actor' = 'system', false) AS by_system, \
         CASE WHEN e.action LIKE 'record\\_%' THEN e.subject \
              WHEN e.action IN ('sms_resent', 'access_denied') THEN e.details ->> 'record_id' \
         END AS record_ref, \
         NULL::text AS sms_kind \
       FROM audit_events e \
       WHERE (e.actor_user_id IS NULL OR e.actor_user_id <> $1) AND ( \
         (e.action LIKE 'record\\_%' AND e.subject IN (SELECT id::text FROM mine)) \
         OR (e.action IN ('sms_resent', 'access_denied') \
             AND e.details ->> 'record_id' IN (SELECT id::text FROM mine)) \
         OR (e.action IN ('registration_email_taken', 'password_reset_by_code', 'user_created', \
               'user_invited', 'invitation_reissued', 'invitation_accepted', 'user_disabled', \
               'user_enabled', 'user_password_reset', 'user_sessions_ended') \
             AND e.subject = $1::text) \
         OR (e.action = 'user_role_changed' AND e.subject LIKE ($1::text || ' → %')) \
         OR (e.action IN ('records_listed', 'records_exported') \
             AND e.details -> 'patients' @> jsonb_build_array($1))) \
       UNION ALL \
       SELECT NULL::bigint, m.id, m.sent_at, NULL::bigint, 'sms_sent', true, m.record_id::text, m.kind \
       FROM sms_outbox m \
       WHERE m.status = 'sent' AND m.sent_at IS NOT NULL \
         AND (m.record_id IN (SELECT id FROM mine) OR (m.record_id IS NULL AND m.phone = $2))) ";

#[derive(QueryableByName)]
struct Total {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// One page of a patient's access log (`ACCESS_LOG` says what counts), newest first, and
/// how many entries it has in all. `limit` may be `i64::MAX` for the whole log.
pub async fn access_log(
    conn: &mut AsyncPgConnection,
    patient_id: i64,
    phone: Option<&str>,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<AccessRow>, i64)> {
    use diesel::sql_types::{BigInt, Nullable, Text};

    let totals: Vec<Total> =
        diesel::sql_query(format!("{ACCESS_LOG}SELECT count(*) AS n FROM entries"))
            .bind::<BigInt, _>(patient_id)
            .bind::<Nullable<Text>, _>(phone)
            .load(conn)
            .await?;
    let total = <[Total]>::first(&totals).map_or(0, |t| t.n);
    let rows: Vec<AccessRow> = diesel::sql_query(format!(
        "{ACCESS_LOG}SELECT entries.event_id, entries.sms_id, entries.at, entries.actor_user_id, \
           entries.action, entries.by_system, entries.record_ref, entries.sms_kind, \
           u.full_name AS actor_name, u.role AS actor_role \
         FROM entries LEFT JOIN users u ON u.id = entries.actor_user_id \
         ORDER BY entries.at DESC, entries.event_id DESC NULLS LAST, entries.sms_id DESC \
         LIMIT $3 OFFSET $4"
    ))
    .bind::<BigInt, _>(patient_id)
    .bind::<Nullable<Text>, _>(phone)
    .bind::<BigInt, _>(limit)
    .bind::<BigInt, _>(offset)
    .load(conn)
    .await?;
    Ok((rows, total))
}
