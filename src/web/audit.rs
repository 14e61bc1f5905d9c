//! The admin's audit screen (`GET /admin/audit`): the audit trail filtered by actor, action,
//! patient and days, newest first, 50 events a page. Bad filters are shown on their fields
//! with a 422, never as an error page.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use crate::{
    app::AppState,
    auth::{roles::CurrentUser, session::AuthSession},
    db::models::{
        audit_event::{self, AuditFilter, AuditRow},
        user::Role,
    },
    domain::values::{FieldErrors, Invalid, PageNo, SearchText},
    error::AppError,
    extract::Query,
    params,
    web::{
        Layout,
        labels::{self, AuditSubject},
    },
};

/// Events per page of the audit screen.
const EVENTS_PER_PAGE: i64 = 50;

/// The filters as the URL carries them; shown back in the form as typed, and (without the
/// page) the query string of the pager's links.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    patient: String,
    #[serde(default)]
    date_from: String,
    #[serde(default)]
    date_to: String,
    #[serde(default, skip_serializing)]
    page: String,
}

/// One option of the action select.
struct ActionOption {
    code: &'static str,
    title: &'static str,
    selected: bool,
}

/// One event as a row of the table: every code already turned into Russian.
struct EventRow {
    /// On Moscow clocks, with seconds: «30 ноября 2026, 15:00:07 мск».
    occurred_at: String,
    who: String,
    who_href: Option<String>,
    action: &'static str,
    subject: String,
    subject_href: Option<String>,
    client_ip: String,
    request_id: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/admin/audit.html")]
struct AuditPage {
    layout: Layout,
    form: AuditQuery,
    actions: Vec<ActionOption>,
    errors: FieldErrors,
    events: Vec<EventRow>,
    base_path: &'static str,
    /// The filters as a query string for the pager's links, ending in `&`.
    query: String,
    page: i64,
    pages: i64,
    total: i64,
}

/// An action code from the select; only known codes, so the page never echoes a made-up one.
fn known_action(raw: &str) -> Result<Option<String>, Invalid> {
    match raw.trim() {
        "" => Ok(None),
        code => labels::audit_action(code)
            .map(|action| Some(action.code.to_owned()))
            .ok_or(Invalid("Выберите действие из списка")),
    }
}

/// The filters, or every refusal by field.
fn parse(query: &AuditQuery) -> Result<AuditFilter, FieldErrors> {
    let mut errors = FieldErrors::new();
    let actor = errors.check("actor", SearchText::parse(&query.actor));
    let action = errors.check("action", known_action(&query.action));
    let patient = errors.check("patient", params::optional_id(&query.patient));
    let date_from = errors.check("date_from", params::optional_date(query.date_from.trim()));
    let date_to = errors.check("date_to", params::optional_date(query.date_to.trim()));
    let page = errors.check("page", PageNo::parse(&query.page));
    if let (Some(Some(from)), Some(Some(to))) = (date_from, date_to)
        && to < from
    {
        errors.add("date_to", Invalid("Не раньше первого дня"));
    }
    errors.or_value(|| {
        Some(AuditFilter {
            actor: actor?.map(|text| text.as_str().to_owned()),
            action: action?,
            patient_id: patient?,
            date_from: date_from?,
            date_to: date_to?,
            page: page?,
            per_page: EVENTS_PER_PAGE,
        })
    })
}

/// An id in a subject, if the subject is one.
fn subject_id(subject: &str) -> Option<i64> {
    subject.parse::<i64>().ok().filter(|id| *id > 0)
}

/// What an event was about, as the table shows it, and where it links. Ids become Russian
/// words with a link; a role change names the role in Russian; e-mails and paths are shown
/// as they are.
fn describe_subject(action: &str, subject: &str) -> (String, Option<String>) {
    let kind = labels::audit_action(action).map_or(AuditSubject::AsIs, |a| a.subject);
    match kind {
        AuditSubject::Record => match subject_id(subject) {
            Some(id) => (
                format!("запись № {id}"),
                Some(format!("/staff/records/{id}")),
            ),
            None => (subject.to_owned(), None),
        },
        AuditSubject::Account => match subject_id(subject) {
            Some(id) => (
                format!("учётная запись № {id}"),
                Some(format!("/admin/users/{id}")),
            ),
            None => (subject.to_owned(), None),
        },
        AuditSubject::RoleChange => {
            // Written as `<id> → <role code>` by `domain::accounts::change_role`.
            let (id, role) = subject.split_once(" → ").unwrap_or((subject, ""));
            match subject_id(id) {
                Some(id) => {
                    let text = match role.parse::<Role>() {
                        Ok(role) => format!("учётная запись № {id}, новая роль: {}", role.title()),
                        Err(_) => format!("учётная запись № {id}"),
                    };
                    (text, Some(format!("/admin/users/{id}")))
                }
                None => (subject.to_owned(), None),
            }
        }
        AuditSubject::Intent => match subject_id(subject) {
            Some(id) => (format!("операция с записью № {id}"), None),
            None => (subject.to_owned(), None),
        },
        AuditSubject::Sms => match subject_id(subject) {
            Some(id) => (format!("СМС № {id}"), None),
            None => (subject.to_owned(), None),
        },
        AuditSubject::Export => (
            match subject {
                "xlsx" => "файл Excel".to_owned(),
                _ => "файл CSV".to_owned(),
            },
            None,
        ),
        AuditSubject::SyncKind => (
            match crate::sync::SyncKind::from_code(subject) {
                Some(kind) => kind.title().to_owned(),
                None => "все справочники".to_owned(),
            },
            None,
        ),
        AuditSubject::AsIs => (subject.to_owned(), None),
    }
}

fn event_row(row: AuditRow) -> EventRow {
    let event = row.event;
    let (who, who_href) = match (row.actor_name, row.actor_role, event.actor_user_id) {
        (Some(name), Some(role), Some(id)) => (
            format!("{name} ({})", role.title()),
            Some(format!("/admin/users/{id}")),
        ),
        (_, _, Some(id)) => (
            format!("учётная запись № {id}"),
            Some(format!("/admin/users/{id}")),
        ),
        // No account acted: the server itself (the reconciler, the change feed), the
        // command line, or an attempt to log in as nobody known.
        (_, _, None) => ("система".to_owned(), None),
    };
    let (subject, subject_href) = match event.subject.as_deref() {
        Some(subject) => describe_subject(&event.action, subject),
        None => ("—".to_owned(), None),
    };
    EventRow {
        occurred_at: labels::moscow_time_seconds(event.occurred_at),
        who,
        who_href,
        action: labels::audit_action_title(&event.action),
        subject,
        subject_href,
        client_ip: event.client_ip.unwrap_or_else(|| "—".to_owned()),
        request_id: event.request_id.unwrap_or_else(|| "—".to_owned()),
    }
}

fn action_options(selected: &str) -> Vec<ActionOption> {
    labels::AUDIT_ACTIONS
        .iter()
        .map(|action| ActionOption {
            code: action.code,
            title: action.title,
            selected: action.code == selected,
        })
        .collect()
}

pub async fn show_audit(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(admin): CurrentUser,
    Query(query): Query<AuditQuery>,
) -> Result<Response, AppError> {
    let layout = Layout::new(&session, Some(&admin)).await?;
    let actions = action_options(query.action.trim());
    let filter = match parse(&query) {
        Ok(filter) => filter,
        Err(errors) => {
            let page = AuditPage {
                layout,
                form: query,
                actions,
                errors,
                events: Vec::new(),
                base_path: "/admin/audit",
                query: String::new(),
                page: 1,
                pages: 1,
                total: 0,
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let mut conn = state.db().await?;
    let (rows, total) = audit_event::search(&mut conn, &filter).await?;
    drop(conn);
    let query_string = serde_urlencoded::to_string(&query)
        .map(|q| format!("{q}&"))
        .unwrap_or_default();
    Ok(AuditPage {
        layout,
        form: query,
        actions,
        errors: FieldErrors::new(),
        events: rows.into_iter().map(event_row).collect(),
        base_path: "/admin/audit",
        query: query_string,
        page: filter.page.get(),
        pages: PageNo::count(total, EVENTS_PER_PAGE),
        total,
    }
    .into_response())
}
