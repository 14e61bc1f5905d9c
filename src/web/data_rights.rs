//! The patient's data rights in the cabinet:
//! - `GET /cabinet/access-log`: «Кто видел мои данные», 50 entries a page, newest first;
//! - `GET /cabinet/my-data`: everything the clinic's server holds about the patient, on one
//!   page to read and print, and `GET /cabinet/my-data.json`, the same as a file (both
//!   audited, `my_data_exported`);
//! - `POST /cabinet/consents/{purpose}/withdraw`: withdrawing a consent, after a
//!   confirmation page (only `confirm=1` acts);
//! - `GET`/`POST /cabinet/consent`: giving both consents again (after a withdrawal booking
//!   is refused until then), back to `next`.
//!
//! Times of events (the access log, SMS, consents, the account) are on Moscow clocks,
//! marked «мск»; visits are in their branch's time, named by its city.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

// The base layout names roles.
use crate::db::models::user::Role;
use crate::{
    app::AppState,
    auth::{roles::CurrentUser, session::AuthSession},
    client_ip::ClientIp,
    db::models::{consent as consent_rows, record::RecordView},
    domain::{
        consent,
        data_rights::{self, AccessEntry, Accessor, MyDataExport},
        values::{ConsentPurpose, FieldErrors, PageNo},
    },
    error::AppError,
    extract::{Form, Query},
    params,
    web::{Layout, labels, safe_next, ticked_consent},
};

/// Entries per page of the access log.
const ENTRIES_PER_PAGE: i64 = 50;

/// One line of the access log as the pages show it: every code already in Russian.
pub struct AccessLine {
    /// «30 ноября 2026, 15:00 мск» ([`labels::moscow_time`]).
    when: String,
    who: String,
    what: String,
    /// The record: its date, time and doctor, and its page.
    record: Option<String>,
    record_href: Option<String>,
}

/// Who acted, in Russian. Another patient is never named.
fn who(entry: &AccessEntry) -> String {
    let name = entry.who_name.as_deref();
    match (entry.who, name) {
        (Accessor::Staff, Some(name)) => format!("{name} ({})", Role::Staff.title()),
        (Accessor::Staff, None) => Role::Staff.title().to_owned(),
        (Accessor::Admin, Some(name)) => format!("{name} ({})", Role::Admin.title()),
        (Accessor::Admin, None) => Role::Admin.title().to_owned(),
        (Accessor::OtherPatient, _) => "другой пациент".to_owned(),
        (Accessor::Clinic, _) => "клиника (МИС)".to_owned(),
        (Accessor::System, _) => "система".to_owned(),
        (Accessor::Visitor, _) => "посетитель без входа в кабинет".to_owned(),
        (Accessor::RemovedAccount, _) => "удалённая учётная запись".to_owned(),
    }
}

/// What was done, in Russian.
fn what(entry: &AccessEntry) -> String {
    match entry.action.as_str() {
        "sms_sent" => format!(
            "отправлено SMS: {}",
            labels::sms_kind_title(entry.sms_kind.as_deref().unwrap_or_default())
        ),
        // The audit screen's «отказ в доступе» says less than the patient needs to know.
        "access_denied" => "попытка открыть вашу запись отклонена".to_owned(),
        action => labels::audit_action_title(action).to_owned(),
    }
}

/// «вт, 1 декабря, 10:00 (время Москвы), Иванов Иван Иванович»: a record as the log names it.
fn record_label(view: &RecordView) -> String {
    format!(
        "{} ({}), {}",
        labels::visit_when(view.local_start()),
        view.branch_zone.city_time(),
        view.specialist_name
    )
}

fn access_lines(entries: &[AccessEntry], records: &[RecordView]) -> Vec<AccessLine> {
    entries
        .iter()
        .map(|entry| {
            let record = entry
                .record_id
                .and_then(|id| records.iter().find(|v| v.record.id == id));
            AccessLine {
                when: labels::moscow_time(entry.at),
                who: who(entry),
                what: what(entry),
                record: record.map(record_label),
                record_href: record.map(|v| format!("/cabinet/records/{}", v.record.id)),
            }
        })
        .collect()
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/cabinet/access_log.html")]
struct AccessLogPage {
    layout: Layout,
    lines: Vec<AccessLine>,
    base_path: &'static str,
    query: String,
    page: i64,
    pages: i64,
    total: i64,
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    #[serde(default)]
    page: String,
}

/// `GET /cabinet/access-log?page=`: who saw the patient's data.
pub async fn show_access_log(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    Query(query): Query<PageQuery>,
) -> Result<Response, AppError> {
    let page = params::field("page", PageNo::parse(&query.page))?;
    let log = data_rights::access_log(&state.db, &user, page, ENTRIES_PER_PAGE).await?;
    Ok(AccessLogPage {
        layout: Layout::new(&session, Some(&user)).await?,
        lines: access_lines(&log.entries, &log.records),
        base_path: "/cabinet/access-log",
        query: String::new(),
        page: log.page.get(),
        pages: log.pages(),
        total: log.total,
    }
    .into_response())
}

/// A labelled value of the account section.
struct Fact {
    label: &'static str,
    value: String,
}

struct PhoneLine {
    phone: String,
    state: String,
}

/// One purpose of consent and where it stands, with what the patient can do about it.
struct PurposeLine {
    code: &'static str,
    title: &'static str,
    state: String,
    /// In force: «Отозвать согласие».
    in_force: bool,
}

struct ConsentLine {
    title: String,
    version: i32,
    given: String,
    withdrawn: String,
}

struct VisitLine {
    href: String,
    when: String,
    doctor: String,
    branch: String,
    status: &'static str,
    source: &'static str,
    comment: String,
}

struct SmsLine {
    when: String,
    phone: String,
    kind: &'static str,
    status: &'static str,
    text: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/cabinet/my_data.html")]
struct MyDataPage {
    layout: Layout,
    notice: Option<&'static str>,
    generated: String,
    facts: Vec<Fact>,
    phones: Vec<PhoneLine>,
    purposes: Vec<PurposeLine>,
    consents: Vec<ConsentLine>,
    visits: Vec<VisitLine>,
    sms: Vec<SmsLine>,
    lines: Vec<AccessLine>,
    /// Lines of the access log (the table's caption).
    total: usize,
}

fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "—".to_owned())
}

fn facts(export: &MyDataExport) -> Vec<Fact> {
    let a = &export.account;
    vec![
        Fact {
            label: "Номер учётной записи",
            value: a.id.to_string(),
        },
        Fact {
            label: "Фамилия, имя и отчество",
            value: a.full_name.clone(),
        },
        Fact {
            label: "Электронная почта",
            value: a.email.clone(),
        },
        Fact {
            label: "Дата рождения",
            value: or_dash(a.birth_date.map(|d| d.format("%d.%m.%Y").to_string())),
        },
        Fact {
            label: "Учётная запись создана",
            value: labels::moscow_time(a.created_at),
        },
        Fact {
            label: "Последний вход",
            value: labels::moscow_time_or(a.last_login_at, "—"),
        },
        Fact {
            label: "Номер карты в медицинской системе клиники",
            value: or_dash(a.mis_patient_card.map(|n| n.to_string())),
        },
    ]
}

fn purposes(export: &MyDataExport) -> Vec<PurposeLine> {
    [ConsentPurpose::PersonalData, ConsentPurpose::HealthData]
        .into_iter()
        .map(|purpose| {
            let of_purpose: Vec<_> = export
                .consents
                .iter()
                .filter(|c| c.purpose == purpose)
                .collect();
            let in_force = of_purpose.iter().rev().find(|c| c.withdrawn_at.is_none());
            let withdrawn = of_purpose.iter().rev().find_map(|c| c.withdrawn_at);
            let state = match (in_force, withdrawn) {
                (Some(c), _) => format!(
                    "действует с {}, текст версии {}",
                    labels::moscow_time(c.given_at),
                    c.text_version
                ),
                (None, Some(at)) => format!("отозвано {}", labels::moscow_time(at)),
                (None, None) => "не давалось".to_owned(),
            };
            PurposeLine {
                code: purpose.as_str(),
                title: purpose.title(),
                state,
                in_force: in_force.is_some(),
            }
        })
        .collect()
}

fn my_data_page(
    layout: Layout,
    notice: Option<&'static str>,
    data: &data_rights::MyData,
) -> MyDataPage {
    let export = &data.export;
    let lines = access_lines(&export.access_log, &data.records);
    MyDataPage {
        layout,
        notice,
        generated: labels::moscow_time(export.generated_at),
        facts: facts(export),
        phones: export
            .phones
            .iter()
            .map(|p| PhoneLine {
                phone: p.phone.clone(),
                state: match (p.current, p.proven_at) {
                    (true, Some(at)) => format!("текущий, подтверждён {}", labels::moscow_time(at)),
                    (true, None) => "текущий, не подтверждён".to_owned(),
                    (false, Some(at)) => format!("подтверждался {}", labels::moscow_time(at)),
                    (false, None) => "не подтверждался".to_owned(),
                },
            })
            .collect(),
        purposes: purposes(export),
        consents: export
            .consents
            .iter()
            .map(|c| ConsentLine {
                title: c.text_title.clone(),
                version: c.text_version,
                given: labels::moscow_time(c.given_at),
                withdrawn: labels::moscow_time_or(c.withdrawn_at, "—"),
            })
            .collect(),
        visits: data
            .records
            .iter()
            .map(|v| VisitLine {
                href: format!("/cabinet/records/{}", v.record.id),
                when: format!(
                    "{} ({})",
                    labels::visit_when(v.local_start()),
                    v.branch_zone.city_time()
                ),
                doctor: v.specialist_name.clone(),
                branch: format!("{}, {}", v.branch_name, v.branch_address),
                status: v.record.status.title(),
                source: v.record.source.title(),
                comment: or_dash(v.record.comment.clone()),
            })
            .collect(),
        sms: export
            .sms
            .iter()
            .map(|m| SmsLine {
                when: labels::moscow_time(m.sent_at.unwrap_or(m.created_at)),
                phone: m.phone.clone(),
                kind: labels::sms_kind_title(&m.kind),
                status: sms_status_title(&m.status, m.delivery.as_deref()),
                text: m.text.clone(),
            })
            .collect(),
        total: lines.len(),
        lines,
    }
}

/// An SMS's state for the patient, in Russian.
fn sms_status_title(status: &str, delivery: Option<&str>) -> &'static str {
    match (status, delivery) {
        ("sent", Some("delivered")) => "доставлено",
        ("sent", Some("undelivered" | "expired")) => "не доставлено",
        ("sent", _) => "отправлено",
        ("pending" | "sending" | "unknown", _) => "отправляется",
        _ => "не отправлено",
    }
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    #[serde(default)]
    done: String,
}

/// `GET /cabinet/my-data`: everything, on one page to read and print; audited.
pub async fn show_my_data(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    Query(query): Query<DoneQuery>,
) -> Result<Response, AppError> {
    let notice = match query.done.as_str() {
        "withdrawn" => Some(
            "Согласие отозвано. Клиника прекращает обработку ваших данных для этой цели; чтобы снова записаться к врачу, нужно будет снова дать согласие.",
        ),
        "consent" => Some("Согласие дано."),
        _ => None,
    };
    let now = state.booking.clock.now();
    let data = data_rights::export(&state.db, &user, now, ip, "html").await?;
    let layout = Layout::with_form(&session, Some(&user)).await?;
    Ok(my_data_page(layout, notice, &data).into_response())
}

/// `GET /cabinet/my-data.json`: the same as a file (`docs/public/my-data.schema.json`
/// describes it); never cached; audited.
pub async fn download_my_data(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
) -> Result<Response, AppError> {
    let now = state.booking.clock.now();
    let data = data_rights::export(&state.db, &user, now, ip, "json").await?;
    let body = serde_json::to_vec_pretty(&data.export).map_err(|e| AppError::Internal(e.into()))?;
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"sovamed-my-data.json\""),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/cabinet/withdraw_confirm.html")]
struct WithdrawPage {
    layout: Layout,
    code: &'static str,
    title: &'static str,
}

/// The `confirm` field of the withdrawal form: only `1` acts, so a slip of the mouse on the
/// data page costs one more click, never a consent.
#[derive(Deserialize, Default)]
pub struct ConfirmForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /cabinet/consents/{purpose}/withdraw`: without `confirm=1` the confirmation page
/// (nothing changes); with it, the consent is withdrawn and the patient goes back to the
/// data page. A purpose without a consent in force: 404.
pub async fn withdraw_consent(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    Path(purpose): Path<String>,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, AppError> {
    let purpose: ConsentPurpose = purpose.parse().map_err(|_| AppError::NotFound)?;
    if form.confirm != "1" {
        let mut conn = state.db().await?;
        let in_force = consent_rows::of_user(&mut conn, user.id)
            .await?
            .iter()
            .any(|c| c.purpose == purpose && c.withdrawn_at.is_none());
        drop(conn);
        if !in_force {
            return Err(AppError::NotFound);
        }
        return Ok(WithdrawPage {
            layout: Layout::with_form(&session, Some(&user)).await?,
            code: purpose.as_str(),
            title: purpose.title(),
        }
        .into_response());
    }
    let now = state.booking.clock.now();
    consent::withdraw(&state.db, &user, purpose, now, ip).await?;
    Ok(Redirect::to("/cabinet/my-data?done=withdrawn").into_response())
}

/// The consent form: the two boxes, and where to go after.
#[derive(Deserialize, Default)]
pub struct ConsentForm {
    consent_personal: Option<String>,
    consent_health: Option<String>,
    #[serde(default)]
    next: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/cabinet/consent.html")]
struct ConsentPage {
    layout: Layout,
    form: ConsentForm,
    errors: FieldErrors,
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// `GET /cabinet/consent?next=`: the two boxes, to give consent again.
pub async fn show_consent_form(
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    Query(query): Query<NextQuery>,
) -> Result<Response, AppError> {
    Ok(ConsentPage {
        layout: Layout::with_form(&session, Some(&user)).await?,
        form: ConsentForm {
            next: safe_next(&query.next).unwrap_or_default().to_owned(),
            ..ConsentForm::default()
        },
        errors: FieldErrors::new(),
    }
    .into_response())
}

/// `POST /cabinet/consent`: both boxes (booking needs both), recorded against the current
/// texts; 303 to `next` (a path on this site) or the data page. A box left empty: 422 with
/// the form.
pub async fn give_consent(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    Form(form): Form<ConsentForm>,
) -> Result<Response, AppError> {
    let given = match ticked_consent(form.consent_personal.as_ref(), form.consent_health.as_ref()) {
        Ok(given) => given,
        Err(e) => {
            let page = ConsentPage {
                layout: Layout::with_form(&session, Some(&user)).await?,
                form: ConsentForm {
                    next: safe_next(&form.next).unwrap_or_default().to_owned(),
                    ..form
                },
                errors: FieldErrors::one("consent", e),
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    consent::give_again(&state.db, &user, given, ip).await?;
    let next = safe_next(&form.next).unwrap_or("/cabinet/my-data?done=consent");
    Ok(Redirect::to(next).into_response())
}
