//! Calendars (issue 11): a visit's `.ics` (the patient's own record only, and a visitor's
//! visit link) and the patient's private feed, read back with a real iCalendar parser (the
//! `icalendar` crate's): a cancelled visit shows as CANCELLED and a moved one at its new time,
//! each with a higher SEQUENCE; a replaced or unknown address is a 404.

use chrono::{DateTime, Utc};
use icalendar::{CalendarDateTime, Component, DatePerhapsTime, EventLike, EventStatus};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use sovamed::db::models::user::Role;

use crate::support::{
    TestApp, anonymous_booking, browser, doctor_in, eventually, free_starts, location, page, post,
    sync_directories, with_emulators,
};

const PASSWORD: &str = "calendar passphrase 1";
/// The host of the test configuration's `PUBLIC_BASE_URL`, in every UID.
const HOST: &str = "127.0.0.1";

fn instant(start: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(start)
        .expect("an RFC 3339 start")
        .with_timezone(&Utc)
}

/// A patient logged in on a browser, with an API token too.
async fn patient(app: &TestApp, email: &str) -> (i64, Client, String) {
    let user = app.create_user(email, PASSWORD, Role::Patient).await;
    let client = browser();
    let response = app.log_in(&client, email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{email} logs in");
    (user.id, client, app.api_token(email, PASSWORD).await)
}

async fn book(app: &TestApp, token: &str, doctor: i64, branch: i64, start: &str) -> i64 {
    let response = browser()
        .post(app.url("/api/v1/records"))
        .bearer_auth(token)
        .json(&json!({"specialist_id": doctor, "branch_id": branch, "start": start}))
        .send()
        .await
        .expect("book");
    assert_eq!(response.status(), StatusCode::CREATED, "booked {start}");
    let body: Value = response.json().await.expect("json");
    body["id"].as_i64().expect("record id")
}

/// A calendar file as a calendar app reads it: the status, the content type and the parse.
async fn read_calendar(client: &Client, app: &TestApp, path: &str) -> icalendar::Calendar {
    let response = client.get(app.url(path)).send().await.expect("calendar");
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/calendar"), "{content_type}");
    let body = response.text().await.expect("body");
    assert!(body.starts_with("BEGIN:VCALENDAR\r\n"), "{body}");
    body.parse::<icalendar::Calendar>()
        .unwrap_or_else(|e| panic!("not iCalendar ({e}):\n{body}"))
}

/// The event of record `id` in `calendar`.
fn event_of(calendar: &icalendar::Calendar, id: i64) -> icalendar::Event {
    let uid = format!("record-{id}@{HOST}");
    calendar
        .components
        .iter()
        .filter_map(|c| c.as_event())
        .find(|e| e.get_uid() == Some(uid.as_str()))
        .cloned()
        .unwrap_or_else(|| panic!("no event {uid} in {calendar:?}"))
}

fn start_of(event: &icalendar::Event) -> DateTime<Utc> {
    match event.get_start() {
        Some(DatePerhapsTime::DateTime(CalendarDateTime::Utc(at))) => at,
        other => panic!("a UTC start, got {other:?}"),
    }
}

/// The feed's path from the cabinet page (`…/calendar/<token>.ics`), and its token.
async fn feed_path(client: &Client, app: &TestApp) -> (String, String) {
    let (status, html) = page(client, app, "/cabinet/calendar").await;
    assert_eq!(status, StatusCode::OK);
    let token: String = html
        .match_indices("/calendar/")
        .map(|(at, _)| {
            html[at + "/calendar/".len()..]
                .chars()
                .take_while(char::is_ascii_hexdigit)
                .collect::<String>()
        })
        .find(|token| token.len() == 32)
        .expect("the page shows the address with its 128-bit token");
    (format!("/calendar/{token}.ics"), token)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_feed_shows_cancelled_and_moved_visits_with_a_higher_sequence() {
    let (app, _emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let (user_id, client, token) = patient(&app, "feed@example.ru").await;
    let starts = free_starts(&app, doctor, branch).await;
    assert!(starts.len() >= 3, "three free slots");

    let (_, none) = page(&client, &app, "/cabinet/calendar").await;
    assert!(none.contains("Ссылки пока нет"), "{none}");
    let created = post(&client, &app, "/cabinet/calendar", "/cabinet/calendar", &[]).await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&created), "/cabinet/calendar?done=issued");
    let (path, feed_token) = feed_path(&client, &app).await;
    let (_, home) = page(&client, &app, "/cabinet").await;
    assert!(
        home.contains("/cabinet/calendar"),
        "the cabinet links the page"
    );

    let cancelled = book(&app, &token, doctor, branch, &starts[0]).await;
    let moved = book(&app, &token, doctor, branch, &starts[1]).await;
    // Read without a login, as a calendar app would.
    let before = read_calendar(&browser(), &app, &path).await;
    let (c0, m0) = (event_of(&before, cancelled), event_of(&before, moved));
    assert_eq!(c0.get_status(), Some(EventStatus::Confirmed));
    assert_eq!(start_of(&c0), instant(&starts[0]));
    assert_eq!(start_of(&m0), instant(&starts[1]));
    assert!(
        c0.get_summary().is_some_and(|s| s.starts_with("Приём: ")),
        "{c0:?}"
    );
    assert!(
        c0.get_description()
            .is_some_and(|d| d.contains(&format!("/cabinet/records/{cancelled}"))),
        "{c0:?}"
    );

    let response = browser()
        .post(app.url(&format!("/api/v1/records/{cancelled}/cancel")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("cancel");
    assert_eq!(response.status(), StatusCode::OK);
    let response = browser()
        .post(app.url(&format!("/api/v1/records/{moved}/reschedule")))
        .bearer_auth(&token)
        .json(&json!({"start": starts[2]}))
        .send()
        .await
        .expect("move");
    assert_eq!(response.status(), StatusCode::OK);

    let after = read_calendar(&browser(), &app, &path).await;
    let (c1, m1) = (event_of(&after, cancelled), event_of(&after, moved));
    assert_eq!(c1.get_status(), Some(EventStatus::Cancelled));
    assert!(
        c1.get_sequence().unwrap_or(0) > c0.get_sequence().unwrap_or(0),
        "{c0:?} → {c1:?}"
    );
    assert_eq!(m1.get_status(), Some(EventStatus::Confirmed));
    assert_eq!(start_of(&m1), instant(&starts[2]), "the new time");
    assert!(
        m1.get_sequence().unwrap_or(0) > m0.get_sequence().unwrap_or(0),
        "{m0:?} → {m1:?}"
    );

    // Each read is audited as a list of the patient's records, and the token is nowhere in
    // the audit trail.
    assert!(
        app.count(&format!(
            "SELECT count(*) AS n FROM audit_events WHERE action = 'records_listed' \
             AND actor_user_id IS NULL AND details -> 'patients' @> '[{user_id}]'"
        ))
        .await
            >= 2
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM audit_events WHERE subject LIKE '%{feed_token}%' \
             OR details::text LIKE '%{feed_token}%'"
        ))
        .await,
        0
    );

    // A new address replaces the old one; turned off, neither works.
    let renewed = post(&client, &app, "/cabinet/calendar", "/cabinet/calendar", &[]).await;
    assert_eq!(renewed.status(), StatusCode::SEE_OTHER);
    let (new_path, _) = feed_path(&client, &app).await;
    assert_ne!(new_path, path);
    let old = browser()
        .get(app.url(&path))
        .send()
        .await
        .expect("old feed");
    assert_eq!(
        old.status(),
        StatusCode::NOT_FOUND,
        "the old address is dead"
    );
    read_calendar(&browser(), &app, &new_path).await;
    let off = post(
        &client,
        &app,
        "/cabinet/calendar",
        "/cabinet/calendar/off",
        &[],
    )
    .await;
    assert_eq!(off.status(), StatusCode::SEE_OTHER);
    let gone = browser()
        .get(app.url(&new_path))
        .send()
        .await
        .expect("feed");
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    for unknown in [
        format!("/calendar/{}.ics", "0".repeat(32)),
        "/calendar/nothing.ics".to_owned(),
        format!("/calendar/{}", "0".repeat(32)),
    ] {
        let response = browser().get(app.url(&unknown)).send().await.expect("feed");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{unknown}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_visit_file_is_its_patients_only_and_a_visitor_gets_one_by_the_visit_link() {
    let (app, emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let (_, owner, token) = patient(&app, "owner@example.ru").await;
    let (_, stranger, _) = patient(&app, "stranger@example.ru").await;
    let starts = free_starts(&app, doctor, branch).await;
    let id = book(&app, &token, doctor, branch, &starts[0]).await;
    let path = format!("/cabinet/records/{id}/calendar.ics");

    let calendar = read_calendar(&owner, &app, &path).await;
    let events: Vec<_> = calendar
        .components
        .iter()
        .filter_map(|c| c.as_event())
        .collect();
    assert_eq!(events.len(), 1);
    let event = event_of(&calendar, id);
    assert_eq!(start_of(&event), instant(&starts[0]));
    assert_eq!(event.get_status(), Some(EventStatus::Confirmed));
    assert_eq!(event.get_sequence(), Some(0));
    let address = event.get_location().unwrap_or_default().replace('\\', "");
    assert!(!address.is_empty(), "{event:?}");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM branches WHERE id = {branch} AND address = '{}'",
            address.replace('\'', "''")
        ))
        .await,
        1,
        "the branch's address: {address}"
    );
    let zone = calendar
        .property_value("X-WR-TIMEZONE")
        .expect("the branch's zone")
        .to_owned();
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM branches WHERE id = {branch} AND timezone = '{zone}'"
        ))
        .await,
        1
    );
    let description = event.get_description().unwrap_or_default();
    assert!(description.contains("+7 (495) 120-34-50"), "{description}");
    assert!(
        description.contains(&format!("/cabinet/records/{id}")),
        "{description}"
    );

    // Another patient: refused like the record page itself.
    let (record_status, _) = page(&stranger, &app, &format!("/cabinet/records/{id}")).await;
    let refused = stranger.get(app.url(&path)).send().await.expect("ics");
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    assert_eq!(refused.status(), record_status);
    let missing = owner
        .get(app.url("/cabinet/records/999999/calendar.ics"))
        .send()
        .await
        .expect("ics");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // A visitor without an account: the file is behind the visit link.
    let phone = "+79165550477";
    let response = browser()
        .post(app.url("/api/v1/specialist/anonymous-reserve"))
        .json(&anonymous_booking(doctor, branch, &starts[1], phone))
        .send()
        .await
        .expect("book");
    assert_eq!(response.status(), StatusCode::CREATED);
    let digits = phone.trim_start_matches('+');
    let control = emulators.control.clone();
    assert!(
        eventually(15, || control
            .sms_messages()
            .iter()
            .any(|m| m.to == digits && m.text.contains("/v/")))
        .await,
        "the booking SMS with the visit link"
    );
    let text = control
        .sms_messages()
        .into_iter()
        .find(|m| m.to == digits && m.text.contains("/v/"))
        .expect("SMS")
        .text;
    let visit_token: String = text
        .split("/v/")
        .nth(1)
        .expect("link")
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let (_, visit_page) = page(&browser(), &app, &format!("/v/{visit_token}")).await;
    assert!(
        visit_page.contains(&format!("/v/{visit_token}/calendar.ics")),
        "the visit page offers the file"
    );
    let visit = read_calendar(&browser(), &app, &format!("/v/{visit_token}/calendar.ics")).await;
    let events: Vec<_> = visit
        .components
        .iter()
        .filter_map(|c| c.as_event())
        .collect();
    assert_eq!(events.len(), 1);
    assert!(
        events[0]
            .get_description()
            .is_some_and(|d| d.contains(&format!("/v/{visit_token}"))),
        "{:?}",
        events[0]
    );
    let unknown = browser()
        .get(app.url(&format!("/v/{}/calendar.ics", "A".repeat(22))))
        .send()
        .await
        .expect("ics");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}
