//! A patient's record in the cabinet (`/cabinet/records/{id}`): everything the visit is and
//! everything the patient typed, the state in words, moving it a week of free times at a
//! time, cancelling it after a question (with an optional reason), and booking again once
//! it is over or cancelled. The question page is shared with the visit link (`web::visit`).

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{OriginalUri, Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::{
    app::{App, AppState},
    auth::{
        roles::{self, CurrentUser},
        session::AuthSession,
    },
    client_ip::ClientIp,
    db::models::{record::RecordView, user::Role},
    domain::values::CancelReason,
    error::AppError,
    extract::{Form, Query, path_id},
    params,
    web::{
        Layout,
        summary::VisitSummary,
        week::{Week, WeekReader, read_week},
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "pages/cabinet/record.html")]
struct MyRecordPage {
    layout: Layout,
    view: RecordView,
    summary: VisitSummary,
    can_change: bool,
    /// Free times to move to; `None` when the doctor no longer works in the branch.
    week: Option<Week>,
    notice: Option<&'static str>,
    /// The doctor page in the record's branch: «Записаться снова».
    again_href: String,
}

#[derive(Deserialize, Default)]
pub struct RecordQuery {
    #[serde(default)]
    pub booked: String,
    #[serde(default)]
    pub moved: String,
    #[serde(default)]
    pub cancelled: String,
    /// A day of the week of free times to move to.
    #[serde(default)]
    pub week: String,
}

impl RecordQuery {
    pub fn notice(&self) -> Option<&'static str> {
        if !self.booked.is_empty() {
            Some("Вы записаны. SMS с подтверждением придёт на ваш телефон.")
        } else if !self.moved.is_empty() {
            Some("Запись перенесена. SMS с новым временем придёт на ваш телефон.")
        } else if !self.cancelled.is_empty() {
            Some("Запись отменена. Время освобождено.")
        } else {
            None
        }
    }
}

/// «Записаться снова»: the doctor page in the record's branch.
pub fn book_again_href(view: &RecordView) -> String {
    format!(
        "/doctors/{}?branch_id={}#slots",
        view.record.specialist_id, view.record.branch_id
    )
}

/// The week of free times to move `view` to, its links staying on the page `page` (which
/// ends in `?` or `&`); `None` when the doctor no longer works in the branch.
pub async fn move_week(
    app: &App,
    view: &RecordView,
    wanted: Option<chrono::NaiveDate>,
    reader: WeekReader,
    page: &str,
) -> Result<Option<Week>, AppError> {
    let Ok(target) = app
        .booking
        .target(view.record.specialist_id, view.record.branch_id)
        .await
    else {
        return Ok(None);
    };
    let week = read_week(app, &target, wanted, reader).await?;
    Ok(Some(week.with_hrefs(|from| {
        format!("{page}week={from}#move-heading")
    })))
}

/// `GET /cabinet/records/{id}`.
pub async fn show_my_record(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    Query(query): Query<RecordQuery>,
) -> Result<Response, AppError> {
    let id = path_id(&id)?;
    let wanted = params::field("week", params::optional_date(query.week.trim()))?;
    let view = roles::visible_record(&state, &user, ip, uri.path(), id).await?;
    let can_change = view.record.is_changeable_at(state.booking.clock.now());
    let week = if can_change {
        let page = format!("/cabinet/records/{id}?");
        move_week(&state, &view, wanted, WeekReader::Patient(ip), &page).await?
    } else {
        None
    };
    Ok(MyRecordPage {
        layout: Layout::new(&session, Some(&user)).await?,
        summary: VisitSummary::of_record(&state, &view).await?,
        again_href: book_again_href(&view),
        view,
        can_change,
        week,
        notice: query.notice(),
    }
    .into_response())
}

/// «Отменить запись?»: the visit, an optional reason, and the button; for the cabinet and
/// for the visit link.
#[derive(Template, WebTemplate)]
#[template(path = "pages/booking/cancel.html")]
pub struct CancelPage {
    pub layout: Layout,
    pub summary: VisitSummary,
    /// Where the form posts.
    pub action: String,
    /// The record's page («Не отменять»).
    pub back: String,
    /// The reason as typed, shown again after a refusal.
    pub reason: String,
    pub error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct CancelForm {
    #[serde(default)]
    pub reason: String,
}

/// `GET /cabinet/records/{id}/cancel`: the question; nothing is cancelled here. A record
/// that can no longer be cancelled sends back to its page, which says why.
pub async fn show_cancel_my_record(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = path_id(&id)?;
    let view = roles::visible_record(&state, &user, ip, uri.path(), id).await?;
    if !view.record.is_changeable_at(state.booking.clock.now()) {
        return Ok(Redirect::to(&format!("/cabinet/records/{id}")).into_response());
    }
    Ok(CancelPage {
        layout: Layout::with_form(&session, Some(&user)).await?,
        summary: VisitSummary::of_record(&state, &view).await?,
        action: format!("/cabinet/records/{id}/cancel"),
        back: format!("/cabinet/records/{id}"),
        reason: String::new(),
        error: None,
    }
    .into_response())
}

/// `POST /cabinet/records/{id}/cancel`: cancels in the MIS and here, with the reason.
pub async fn cancel_my_record(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    Form(form): Form<CancelForm>,
) -> Result<Response, AppError> {
    let id = path_id(&id)?;
    let reason = match CancelReason::parse(&form.reason) {
        Ok(reason) => reason,
        Err(invalid) => {
            let view = roles::visible_record(&state, &user, ip, uri.path(), id).await?;
            let page = CancelPage {
                layout: Layout::with_form(&session, Some(&user)).await?,
                summary: VisitSummary::of_record(&state, &view).await?,
                action: format!("/cabinet/records/{id}/cancel"),
                back: format!("/cabinet/records/{id}"),
                reason: form.reason,
                error: Some(invalid.0.to_owned()),
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let view = match state
        .booking
        .cancel_record(&user, id, reason.as_ref(), ip)
        .await
    {
        Ok(view) => view,
        Err(e) => return Err(roles::refuse_record(&state, &user, ip, uri.path(), id, e).await),
    };
    Ok(Redirect::to(&format!("/cabinet/records/{}?cancelled=1", view.record.id)).into_response())
}

#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    start: String,
}

/// `POST /cabinet/records/{id}/reschedule`: to a free time of the week picker.
pub async fn reschedule_my_record(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    Form(form): Form<MoveForm>,
) -> Result<Response, AppError> {
    let id = path_id(&id)?;
    let start = params::field("start", params::instant(&form.start))?;
    let view = match state.booking.reschedule_record(&user, id, start, ip).await {
        Ok(view) => view,
        Err(e) => return Err(roles::refuse_record(&state, &user, ip, uri.path(), id, e).await),
    };
    Ok(Redirect::to(&format!("/cabinet/records/{}?moved=1", view.record.id)).into_response())
}

/// Keeps `Role` in scope for the base layout's comparisons.
const _: Option<Role> = None;
