//! One record at the desk: who the patient is (with a full phone), who booked it, its SMS
//! with their delivery, and what staff do on the patient's behalf: move it a week at a
//! time, cancel it (after a confirmation), mark it visited or a no-show.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::{
    app::AppState,
    auth::{roles::CurrentUser, session::AuthSession},
    client_ip::ClientIp,
    db::models::{
        outbox::OutboxMessage,
        record::RecordView,
        user::{self, Role},
    },
    domain::{
        audit::{self, Actor},
        booking::desk::{VisitOutcome, check_markable},
        values::RecordSource,
    },
    error::AppError,
    extract::{Form, Query, path_id},
    params,
    web::{
        Layout,
        week::{Week, WeekReader, read_week},
    },
};

#[derive(Deserialize, Default)]
pub struct RecordQuery {
    #[serde(default)]
    booked: String,
    #[serde(default)]
    moved: String,
    #[serde(default)]
    cancelled: String,
    #[serde(default)]
    marked: String,
    #[serde(default)]
    resent: String,
    #[serde(default)]
    week: String,
}

impl RecordQuery {
    fn notice(&self) -> Option<&'static str> {
        if !self.booked.is_empty() {
            Some("Пациент записан. SMS с подтверждением отправлено.")
        } else if !self.moved.is_empty() {
            Some("Запись перенесена. Пациенту отправлено SMS.")
        } else if !self.cancelled.is_empty() {
            Some("Запись отменена. Пациенту отправлено SMS.")
        } else if !self.resent.is_empty() {
            Some("SMS поставлено в очередь на повторную отправку.")
        } else if !self.marked.is_empty() {
            Some("Отметка сохранена и передана в МИС.")
        } else {
            None
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/staff/record.html")]
struct StaffRecordPage {
    layout: Layout,
    view: RecordView,
    messages: Vec<OutboxMessage>,
    booked_by: String,
    zone_city: String,
    can_change: bool,
    can_mark: bool,
    week: Option<Week>,
    notice: Option<&'static str>,
}

/// "Who booked it", in words: the patient, a staff member by name, the website, the clinic.
async fn booked_by_words(state: &AppState, view: &RecordView) -> Result<String, AppError> {
    let staff_name = match (view.record.source, view.record.booked_by) {
        (RecordSource::Desk, Some(id)) => {
            let mut conn = state.db().await?;
            user::find(&mut conn, id).await?.map(|u| u.full_name)
        }
        _ => None,
    };
    Ok(match view.record.source {
        RecordSource::Cabinet => "пациент, в личном кабинете".to_owned(),
        RecordSource::Api => "пациент, на сайте или в приложении со входом".to_owned(),
        RecordSource::Anonymous => "посетитель сайта, без входа".to_owned(),
        RecordSource::Clinic => "регистратура клиники, в МИС".to_owned(),
        RecordSource::Desk => match staff_name {
            Some(name) => format!("сотрудник {name}, на рабочем месте"),
            None => "сотрудник, на рабочем месте".to_owned(),
        },
    })
}

/// `GET /staff/records/{id}`: every view is audited (`record_viewed`).
pub async fn show_staff_record(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Query(query): Query<RecordQuery>,
) -> Result<Response, AppError> {
    let week_from = params::field("week", params::optional_date(&query.week))?;
    let (view, messages) = state
        .booking
        .record_with_messages(&user, path_id(&id)?)
        .await?;
    audit::append(
        &state.db,
        Actor::user(&user, ip),
        "record_viewed",
        &view.record.id.to_string(),
    )
    .await;
    let now = state.booking.clock.now();
    let can_change = view.record.is_changeable_at(now);
    let can_mark = check_markable(&view, now).is_ok();
    let week = if can_change {
        match state
            .booking
            .target(view.record.specialist_id, view.record.branch_id)
            .await
        {
            Ok(target) => {
                let record_id = view.record.id;
                Some(
                    read_week(&state, &target, week_from, WeekReader::Staff)
                        .await?
                        .with_hrefs(|from| format!("/staff/records/{record_id}?week={from}")),
                )
            }
            // The doctor left the branch: the visit can still be cancelled, not moved.
            Err(_) => None,
        }
    } else {
        None
    };
    Ok(StaffRecordPage {
        layout: Layout::new(&session, Some(&user)).await?,
        booked_by: booked_by_words(&state, &view).await?,
        zone_city: view.branch_zone.city_time(),
        view,
        messages,
        can_change,
        can_mark,
        week,
        notice: query.notice(),
    }
    .into_response())
}

fn see_other(to: String) -> Response {
    (StatusCode::SEE_OTHER, Redirect::to(&to)).into_response()
}

#[derive(Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    confirm: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/staff/cancel.html")]
struct CancelConfirmPage {
    layout: Layout,
    view: RecordView,
    zone_city: String,
}

/// `POST /staff/records/{id}/cancel`: without `confirm=1`, the question; with it, the
/// cancel in the MIS and here, and the patient's SMS.
pub async fn cancel_staff_record(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Form(form): Form<CancelForm>,
) -> Result<Response, AppError> {
    let id = path_id(&id)?;
    if form.confirm != "1" {
        let view = state.booking.visible_record(&user, id).await?;
        return Ok(CancelConfirmPage {
            layout: Layout::new(&session, Some(&user)).await?,
            zone_city: view.branch_zone.city_time(),
            view,
        }
        .into_response());
    }
    let view = state.booking.cancel_record(&user, id, None, ip).await?;
    Ok(see_other(format!(
        "/staff/records/{}?cancelled=1",
        view.record.id
    )))
}

#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    start: String,
}

/// `POST /staff/records/{id}/move`: to a free time of the same doctor and branch.
pub async fn move_staff_record(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Form(form): Form<MoveForm>,
) -> Result<Response, AppError> {
    let id = path_id(&id)?;
    let start = params::field("start", params::instant(&form.start))?;
    let view = state
        .booking
        .reschedule_record(&user, id, start, ip)
        .await?;
    Ok(see_other(format!(
        "/staff/records/{}?moved=1",
        view.record.id
    )))
}

#[derive(Deserialize)]
pub struct OutcomeForm {
    #[serde(default)]
    outcome: String,
}

/// `POST /staff/records/{id}/outcome`: `visited` or `no_show`, once the visit has started.
pub async fn mark_staff_record_outcome(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Form(form): Form<OutcomeForm>,
) -> Result<Response, AppError> {
    let id = path_id(&id)?;
    let outcome = match form.outcome.as_str() {
        "visited" => VisitOutcome::Visited,
        "no_show" => VisitOutcome::NoShow,
        _ => return Err(AppError::field("outcome", "Выберите: пришёл или не пришёл")),
    };
    let view = state.booking.mark_outcome(&user, id, outcome, ip).await?;
    Ok(see_other(format!(
        "/staff/records/{}?marked=1",
        view.record.id
    )))
}

/// `POST /staff/records/{id}/sms/{message_id}/resend`.
pub async fn resend_record_sms(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    Path((id, message_id)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let id = path_id(&id)?;
    let message_id = path_id(&message_id)?;
    state
        .booking
        .resend_message(&user, id, message_id, ip)
        .await?;
    Ok(see_other(format!("/staff/records/{id}?resent=1")))
}

/// Keeps `Role` in scope for the base layout's comparisons.
const _: Option<Role> = None;
