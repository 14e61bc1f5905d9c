//! Calendars of visits: a visit's `.ics` (the patient's record; a visitor's visit link), the
//! patient's feed settings (`/cabinet/calendar`: create or renew the secret address, turn it
//! off) and the feed itself (`/calendar/<token>.ics`, read by calendar apps without a login:
//! the address is the key, and `telemetry::loggable_path` keeps it out of the logs).

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{OriginalUri, Path, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

// The base layout names roles.
use crate::db::models::user::Role;
use crate::{
    app::{App, AppState},
    auth::{
        roles::{self, CurrentUser},
        session::AuthSession,
    },
    client_ip::ClientIp,
    domain::booking::BookingError,
    error::AppError,
    extract::{Query, path_id},
    web::{Layout, ics},
};

/// What every event needs, for `host` (of `PUBLIC_BASE_URL`).
fn ics_facts<'a>(app: &'a App, host: &'a str) -> ics::IcsFacts<'a> {
    ics::IcsFacts {
        host,
        clinic_phone: &app.config.clinic_phone,
        now: app.booking.clock.now(),
    }
}

/// An iCalendar answer; a file to save when `filename` is given.
fn ics_response(body: String, filename: Option<String>) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/calendar; charset=utf-8"),
    );
    if let Some(value) = filename
        .and_then(|name| HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")).ok())
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// `GET /cabinet/records/{id}/calendar.ics`: the patient's own visit. Another patient's
/// record is refused as on the record page (404, and the attempt audited).
pub async fn download_record_calendar(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = path_id(&id)?;
    let view = roles::visible_record(&state, &user, ip, uri.path(), id).await?;
    let link = state.booking.rules.cabinet_link(view.record.id);
    let visit = state.booking.calendar_visit(view).await?;
    let host = ics::host_of(&state.config.public_base_url);
    let body = ics::visit_calendar(&visit, Some(&link), &ics_facts(&state, &host));
    Ok(ics_response(body, Some(format!("sovamed-visit-{id}.ics"))))
}

/// `GET /v/{token}/calendar.ics`: the visit behind a visit link, while it is ahead.
pub async fn download_visit_calendar(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    let view = state
        .booking
        .visit_by_link(&token)
        .await
        .map_err(|e| match e {
            BookingError::RecordNotFound => AppError::NotFound,
            other => other.into(),
        })?;
    let link = state.booking.rules.visit_link(token.trim());
    let visit = state.booking.calendar_visit(view).await?;
    let host = ics::host_of(&state.config.public_base_url);
    let body = ics::visit_calendar(&visit, Some(&link), &ics_facts(&state, &host));
    Ok(ics_response(body, Some("sovamed-visit.ics".to_owned())))
}

/// `GET /calendar/{token}.ics`: the feed, for whoever holds the address. An unknown or
/// replaced address is a 404.
pub async fn serve_calendar_feed(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(file): Path<String>,
) -> Result<Response, AppError> {
    let token = file.strip_suffix(".ics").ok_or(AppError::NotFound)?;
    let visits = state.booking.calendar_feed_visits(token, ip).await?;
    let host = ics::host_of(&state.config.public_base_url);
    let rules = &state.booking.rules;
    let body = ics::feed_calendar(
        &visits,
        |id| rules.cabinet_link(id),
        &ics_facts(&state, &host),
    );
    Ok(ics_response(body, None))
}

/// The feed's address, as apps subscribe to it.
fn feed_url(base_url: &str, token: &str) -> String {
    format!("{base_url}/calendar/{token}.ics")
}

/// The same address for the `webcal:` scheme, which phones open in their calendar app.
fn webcal_url(url: &str) -> String {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    format!("webcal://{rest}")
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/cabinet/calendar.html")]
struct CalendarPage {
    layout: Layout,
    /// The feed's address, when the patient has one.
    feed_url: Option<String>,
    webcal_url: Option<String>,
    notice: Option<&'static str>,
}

#[derive(Deserialize, Default)]
pub struct CalendarQuery {
    #[serde(default)]
    done: String,
}

/// `GET /cabinet/calendar`: the feed's address (to copy, or to open in a calendar app),
/// and the buttons to create a new one or turn it off.
pub async fn show_calendar_settings(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    Query(query): Query<CalendarQuery>,
) -> Result<Response, AppError> {
    let feed = state.booking.calendar_feed_of(&user).await?;
    let feed_url = feed.map(|feed| feed_url(&state.config.public_base_url, &feed.token));
    let notice = match query.done.as_str() {
        "issued" => Some("Ссылка готова. Если раньше была другая, она больше не работает."),
        "off" => Some("Календарь отключён: ссылка больше не работает."),
        _ => None,
    };
    Ok(CalendarPage {
        layout: Layout::new(&session, Some(&user)).await?,
        webcal_url: feed_url.as_deref().map(webcal_url),
        feed_url,
        notice,
    }
    .into_response())
}

/// `POST /cabinet/calendar`: a new address; the one before stops working.
pub async fn issue_calendar_feed(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
) -> Result<Response, AppError> {
    state.booking.issue_calendar_feed(&user, ip).await?;
    Ok(Redirect::to("/cabinet/calendar?done=issued").into_response())
}

/// `POST /cabinet/calendar/off`: no address any more.
pub async fn revoke_calendar_feed(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
) -> Result<Response, AppError> {
    state.booking.revoke_calendar_feed(&user, ip).await?;
    Ok(Redirect::to("/cabinet/calendar?done=off").into_response())
}

/// Keeps `Role` in scope for the base layout's comparisons.
const _: Option<Role> = None;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feed_address_opens_in_calendar_apps() {
        let url = feed_url("https://lk.sovamed.ru", "0a1b");
        assert_eq!(url, "https://lk.sovamed.ru/calendar/0a1b.ics");
        assert_eq!(webcal_url(&url), "webcal://lk.sovamed.ru/calendar/0a1b.ics");
        assert_eq!(
            webcal_url("http://127.0.0.1:8080/calendar/x.ics"),
            "webcal://127.0.0.1:8080/calendar/x.ics"
        );
    }
}
