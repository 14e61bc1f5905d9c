//! A patient's booking pages (issue 11): the doctor page's week picker with its bounds and
//! its jump to the nearest free time, the confirmation page with the price and the time
//! checked before submit, and the record page's move through the week picker and cancel
//! after a question with a reason, also through the visit link of a booking without an
//! account. Against the MIS, CMS and SMS emulators.

use chrono::{Datelike, Duration, NaiveDate, Utc};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use sovamed::{db::models::user::Role, emulator::Emulators};

use crate::support::{
    TestApp, anonymous_booking, browser, doctor_in, eventually, free_starts, location, post,
    sync_all, with_emulators,
};

const ZONE: chrono_tz::Tz = chrono_tz::Asia::Yekaterinburg;
const PASSWORD: &str = "patient booking passphrase";

/// An app with every directory synced (prices too), and a doctor in the Yekaterinburg
/// branch.
async fn booking_app() -> (TestApp, Emulators, i64, i64) {
    let (app, emulators) = with_emulators().await;
    sync_all(&app, true).await.expect("directories sync");
    let (doctor, branch) = doctor_in(&app, Some("Asia/Yekaterinburg")).await;
    (app, emulators, doctor, branch)
}

fn branch_today() -> NaiveDate {
    Utc::now().with_timezone(&ZONE).date_naive()
}

/// «Пн 30.11», as the picker heads a day (worked out here, not by the code under test).
fn heading(date: NaiveDate) -> String {
    let names = ["Пн", "Вт", "Ср", "Чт", "Пт", "Сб", "Вс"];
    format!(
        "{} {}",
        names[date.weekday().num_days_from_monday() as usize],
        date.format("%d.%m")
    )
}

/// The first day of the picker's week that holds `date`: weeks run seven days from today.
fn week_start(today: NaiveDate, date: NaiveDate) -> NaiveDate {
    today + Duration::days((date - today).num_days() / 7 * 7)
}

/// The `href` of the link just before `marker` (e.g. `rel="next"`), `&amp;` undone.
/// The page, with askama's numeric escapes (`&#38;`, `&#60;`, `&#62;`) written as the named
/// ones the templates use, so assertions read one spelling.
async fn page(client: &Client, app: &TestApp, path: &str) -> (StatusCode, String) {
    let (status, html) = crate::support::page(client, app, path).await;
    let html = html
        .replace("&#38;", "&amp;")
        .replace("&#60;", "&lt;")
        .replace("&#62;", "&gt;");
    (status, html)
}

fn href_before(html: &str, marker: &str) -> Option<String> {
    let at = html.find(marker)?;
    let start = html[..at].rfind("href=\"")? + "href=\"".len();
    Some(html[start..].split('"').next()?.replace("&amp;", "&"))
}

/// The values of the page's radio inputs named `start`.
fn radio_starts(html: &str) -> Vec<String> {
    let marker = "type=\"radio\" name=\"start\" value=\"";
    html.match_indices(marker)
        .filter_map(|(at, _)| html[at + marker.len()..].split('"').next())
        .map(str::to_owned)
        .collect()
}

async fn logged_in_patient(app: &TestApp, email: &str) -> (Client, i64) {
    let user = app.create_user(email, PASSWORD, Role::Patient).await;
    let client = browser();
    let response = app.log_in(&client, email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{email} logs in");
    (client, user.id)
}

/// Books `start` for the patient through the API, with `comment`; the record's id.
async fn book(
    app: &TestApp,
    email: &str,
    doctor: i64,
    branch: i64,
    start: &str,
    comment: &str,
) -> i64 {
    let token = app.api_token(email, PASSWORD).await;
    let response = browser()
        .post(app.url("/api/v1/records"))
        .bearer_auth(token)
        .json(&json!({"specialist_id": doctor, "branch_id": branch, "start": start, "comment": comment}))
        .send()
        .await
        .expect("book");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    body["id"].as_i64().expect("id")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_doctor_page_shows_a_week_of_seven_days_from_today_and_keeps_it_in_the_address() {
    let (app, _emulators, doctor, branch) = booking_app().await;
    let today = branch_today();
    let client = browser();
    let (status, html) = page(
        &client,
        &app,
        &format!("/doctors/{doctor}?branch_id={branch}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(html.matches("class=\"week-column").count(), 7, "seven days");
    for offset in 0..7 {
        let day = today + Duration::days(offset);
        assert!(html.contains(&heading(day)), "{} is headed", heading(day));
    }
    assert!(
        !html.contains("Предыдущая неделя"),
        "no week before today's"
    );
    assert!(html.contains("Следующая неделя"));
    assert!(html.contains("Ближайшее свободное время"));
    assert!(
        html.contains("время Екатеринбурга"),
        "times are told by the city"
    );
    assert!(
        !html.contains("Asia/Yekaterinburg"),
        "no zone id on the page"
    );
    assert!(!html.contains("Europe/Moscow"), "no zone id on the page");

    // The next week is a link to the doctor page at that week; it shows the week before.
    let next = href_before(&html, "rel=\"next\"").expect("a next-week link");
    let next_start = today + Duration::days(7);
    assert_eq!(
        next,
        format!("/doctors/{doctor}?branch_id={branch}&week={next_start}#slots")
    );
    let (status, next_html) = page(&client, &app, &next).await;
    assert_eq!(status, StatusCode::OK);
    assert!(next_html.contains("Предыдущая неделя"));
    assert!(next_html.contains(&heading(next_start)));
    assert!(next_html.contains(&format!("name=\"week\" value=\"{next_start}\"")));

    // htmx swaps the picker in place and is told the page's address for the history.
    let partial = client
        .get(app.url(&format!(
            "/doctors/{doctor}/slots?branch_id={branch}&week={next_start}"
        )))
        .header("hx-request", "true")
        .send()
        .await
        .expect("partial");
    assert_eq!(partial.status(), StatusCode::OK);
    assert_eq!(
        partial
            .headers()
            .get("hx-push-url")
            .and_then(|v| v.to_str().ok()),
        Some(format!("/doctors/{doctor}?branch_id={branch}&week={next_start}").as_str())
    );
    let partial_html = partial
        .text()
        .await
        .expect("body")
        .replace("&#38;", "&amp;");
    assert!(
        partial_html.starts_with("<div id=\"slots\""),
        "only the picker"
    );
    assert!(partial_html.contains(&format!(
        "hx-push-url=\"/doctors/{doctor}?branch_id={branch}&amp;week="
    )));

    // The doctor list links a day with `date`: the page opens at the week that holds it.
    let linked = today + Duration::days(9);
    let (_, dated) = page(
        &client,
        &app,
        &format!("/doctors/{doctor}?branch_id={branch}&date={linked}"),
    )
    .await;
    assert!(dated.contains(&format!("name=\"week\" value=\"{next_start}\"")));
    // A day in the past is today's week.
    let (_, past) = page(
        &client,
        &app,
        &format!("/doctors/{doctor}?branch_id={branch}&week=2020-01-06"),
    )
    .await;
    assert!(past.contains(&format!("name=\"week\" value=\"{today}\"")));
    assert!(!past.contains("Предыдущая неделя"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_week_past_the_horizon_is_refused_with_a_message_and_the_mis_is_not_asked() {
    let (app, emulators, doctor, branch) = booking_app().await;
    let far = branch_today() + Duration::days(200);
    emulators.control.reset_mis_calls();
    let (status, html) = page(
        &browser(),
        &app,
        &format!("/doctors/{doctor}?branch_id={branch}&week={far}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the doctor page stays readable");
    assert!(html.contains("Запись открыта до"), "{html}");
    assert!(
        html.contains("Предыдущая неделя"),
        "a way back to the last open week"
    );
    assert!(!html.contains("Следующая неделя"));
    assert_eq!(html.matches("class=\"week-column").count(), 0);
    assert_eq!(
        emulators.control.mis_calls("SCHEDULE"),
        0,
        "no MIS call for days past the horizon"
    );
    let (status, _) = page(
        &browser(),
        &app,
        &format!("/doctors/{doctor}?branch_id={branch}&week=30.11.2026"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "not a date");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_nearest_free_time_jump_lands_on_the_first_week_with_a_free_slot() {
    let (app, emulators, doctor, branch) = booking_app().await;
    let doctor_mis = app
        .count(&format!(
            "SELECT mis_id AS n FROM specialists WHERE id = {doctor}"
        ))
        .await;
    let branch_mis = app
        .count(&format!(
            "SELECT mis_id AS n FROM branches WHERE id = {branch}"
        ))
        .await;
    // Someone else takes every free time of this week in the MIS.
    let today = branch_today();
    for offset in 0..7 {
        let date = today + Duration::days(offset);
        for (start, _, _) in emulators
            .control
            .free_intervals(branch_mis, doctor_mis, date)
        {
            emulators
                .control
                .take_interval(branch_mis, doctor_mis, date, start);
        }
    }
    let first_free = (7..=28)
        .map(|offset| today + Duration::days(offset))
        .find(|date| {
            !emulators
                .control
                .free_intervals(branch_mis, doctor_mis, *date)
                .is_empty()
        })
        .expect("a free day within four weeks");
    let expected = week_start(today, first_free);
    assert!(expected > today, "the jump has to leave today's week");

    // Without JavaScript: a redirect to the doctor page at that week.
    let client = browser();
    let jumped = client
        .get(app.url(&format!("/doctors/{doctor}?branch_id={branch}&nearest=1")))
        .send()
        .await
        .expect("jump");
    assert_eq!(jumped.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&jumped),
        format!("/doctors/{doctor}?branch_id={branch}&week={expected}#slots")
    );
    let (_, week) = page(&client, &app, &location(&jumped)).await;
    assert!(
        week.contains("class=\"slot free"),
        "the week has a free time"
    );

    // With htmx: the picker of that week, the time marked, the address pushed.
    let partial = client
        .get(app.url(&format!(
            "/doctors/{doctor}/slots?branch_id={branch}&nearest=1"
        )))
        .header("hx-request", "true")
        .send()
        .await
        .expect("partial");
    assert_eq!(
        partial
            .headers()
            .get("hx-push-url")
            .and_then(|v| v.to_str().ok()),
        Some(format!("/doctors/{doctor}?branch_id={branch}&week={expected}").as_str())
    );
    let html = partial.text().await.expect("body");
    assert!(html.contains("Ближайшее свободное время:"), "{html}");
    assert_eq!(html.matches("slot free nearest").count(), 1);
    let first = html.find("class=\"slot free").expect("a free time");
    assert!(
        html[first..].starts_with("class=\"slot free nearest"),
        "the marked time is the week's first free one"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_confirm_page_shows_the_price_and_weekday_and_a_past_time_as_past() {
    let (app, _emulators, doctor, branch) = booking_app().await;
    let (client, _) = logged_in_patient(&app, "vera@example.ru").await;
    let starts = free_starts(&app, doctor, branch).await;
    let start = chrono::DateTime::parse_from_rfc3339(&starts[0]).expect("start");
    let local = start.with_timezone(&ZONE);
    let weekday =
        ["пн", "вт", "ср", "чт", "пт", "сб", "вс"][local.weekday().num_days_from_monday() as usize];
    let confirm = format!(
        "/doctors/{doctor}/book?branch_id={branch}&start={}",
        starts[0].replace('+', "%2B")
    );
    let (status, html) = page(&client, &app, &confirm).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Подтвердите запись"));
    assert!(
        html.contains(&format!("{weekday}, {} ", local.day())),
        "the weekday and the date: {html}"
    );
    assert!(html.contains(&format!("{}, время Екатеринбурга", local.format("%H:%M"))));
    assert!(
        html.contains("Стоимость") && html.contains('₽'),
        "the price: {html}"
    );
    assert!(html.contains("Специальность"));
    assert!(html.contains(&format!("action=\"/doctors/{doctor}/book\"")));
    assert!(html.contains(&format!(
        "href=\"/doctors/{doctor}?branch_id={branch}&amp;week={}#slots\"",
        local.date_naive()
    )));

    // A time that has passed: said at once, with no button, and the way back.
    let yesterday = branch_today() - Duration::days(1);
    let past =
        format!("/doctors/{doctor}/book?branch_id={branch}&start={yesterday}T10:00:00%2B05:00");
    let (status, html) = page(&client, &app, &past).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Время приёма уже прошло"), "{html}");
    assert!(
        !html.contains(&format!("action=\"/doctors/{doctor}/book\"")),
        "no form"
    );
    assert!(html.contains("Выбрать другое время"));

    // A time that is not on the doctor's grid.
    let tomorrow = branch_today() + Duration::days(1);
    let off_grid =
        format!("/doctors/{doctor}/book?branch_id={branch}&start={tomorrow}T03:17:00%2B05:00");
    let (_, html) = page(&client, &app, &off_grid).await;
    assert!(html.contains("врач не ведёт приём"), "{html}");
    assert!(!html.contains(&format!("action=\"/doctors/{doctor}/book\"")));

    // A visitor without an account sees the same summary and the same refusal.
    let (_, anonymous) = page(&browser(), &app, &past).await;
    assert!(anonymous.contains("Время приёма уже прошло"));
    assert!(!anonymous.contains("book/anonymous"), "no form");
    let (_, anonymous) = page(&browser(), &app, &confirm).await;
    assert!(anonymous.contains("Стоимость") && anonymous.contains("время Екатеринбурга"));
    assert!(anonymous.contains("book/anonymous"));
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_asks_first_keeps_the_reason_and_offers_to_book_again() {
    let (app, _emulators, doctor, branch) = booking_app().await;
    let email = "gleb@example.ru";
    let (client, _) = logged_in_patient(&app, email).await;
    let starts = free_starts(&app, doctor, branch).await;
    let id = book(
        &app,
        email,
        doctor,
        branch,
        &starts[0],
        "<b>Болит</b> колено\nс утра",
    )
    .await;

    let record = format!("/cabinet/records/{id}");
    let (_, html) = page(&client, &app, &record).await;
    assert!(html.contains("Запись активна"));
    assert!(
        html.contains("&lt;b&gt;Болит&lt;/b&gt; колено"),
        "the comment, escaped"
    );
    assert!(html.contains("время Екатеринбурга"));
    assert!(html.contains(&format!("href=\"/cabinet/records/{id}/cancel\"")));

    // GET is the question only.
    let (status, question) = page(&client, &app, &format!("{record}/cancel")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(question.contains("Отменить запись?"));
    assert!(question.contains("name=\"reason\""));
    let booked = format!("SELECT count(*) AS n FROM records WHERE id = {id} AND status = 'booked'");
    assert_eq!(app.count(&booked).await, 1, "nothing cancelled by looking");

    // A reason too long is refused, and nothing is cancelled.
    let long = "я".repeat(201);
    let refused = post(
        &client,
        &app,
        &format!("{record}/cancel"),
        &format!("{record}/cancel"),
        &[("reason", long.as_str())],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text()
            .await
            .expect("body")
            .contains("Не длиннее 200 символов")
    );
    assert_eq!(app.count(&booked).await, 1);

    let cancelled = post(
        &client,
        &app,
        &format!("{record}/cancel"),
        &format!("{record}/cancel"),
        &[("reason", "Заболел, перенесу позже")],
    )
    .await;
    assert_eq!(cancelled.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&cancelled), format!("{record}?cancelled=1"));
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM records WHERE id = {id} AND status = 'cancelled' \
             AND cancel_reason = 'Заболел, перенесу позже'"
        ))
        .await,
        1
    );
    let (_, after) = page(&client, &app, &record).await;
    assert!(after.contains("Запись отменена"));
    assert!(after.contains("Причина отмены") && after.contains("Заболел, перенесу позже"));
    assert!(after.contains("Записаться снова"));
    assert!(after.contains(&format!(
        "href=\"/doctors/{doctor}?branch_id={branch}#slots\""
    )));
    assert!(!after.contains("Отменить запись…"));
    // The patient's own data export carries the reason too.
    let (status, data) = page(&client, &app, "/cabinet/my-data.json").await;
    assert_eq!(status, StatusCode::OK);
    let data: Value = serde_json::from_str(&data).expect("json");
    let visit = data["visits"]
        .as_array()
        .expect("visits")
        .iter()
        .find(|v| v["id"] == id)
        .expect("the visit");
    assert_eq!(visit["cancel_reason"], "Заболел, перенесу позже");
    // The question of a cancelled record sends back to it.
    let again = client
        .get(app.url(&format!("{record}/cancel")))
        .send()
        .await
        .expect("question");
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_visit_moves_through_the_week_picker_of_its_page() {
    let (app, _emulators, doctor, branch) = booking_app().await;
    let email = "dina@example.ru";
    let (client, _) = logged_in_patient(&app, email).await;
    let starts = free_starts(&app, doctor, branch).await;
    let id = book(&app, email, doctor, branch, &starts[0], "").await;
    let record = format!("/cabinet/records/{id}");

    let (_, mut html) = page(&client, &app, &record).await;
    assert!(html.contains("Перенести на другое время"));
    assert!(
        !html.contains("Предыдущая неделя"),
        "the picker starts at today's week"
    );
    let mut weeks = 0;
    while radio_starts(&html).is_empty() {
        assert!(weeks < 4, "no free time to move to in four weeks");
        let next = href_before(&html, "rel=\"next\"").expect("a next-week link");
        assert!(next.starts_with(&format!("{record}?week=")), "{next}");
        html = page(&client, &app, &next).await.1;
        assert!(html.contains("Предыдущая неделя"));
        weeks += 1;
    }
    // The next week keeps the record's page.
    let next = href_before(&html, "rel=\"next\"").expect("a next-week link");
    assert!(next.starts_with(&format!("{record}?week=")), "{next}");
    let (status, _) = page(&client, &app, &next).await;
    assert_eq!(status, StatusCode::OK);

    let to = radio_starts(&html)
        .into_iter()
        .find(|s| *s != starts[0])
        .expect("another free time");
    let moved = post(
        &client,
        &app,
        &record,
        &format!("{record}/reschedule"),
        &[("start", to.as_str())],
    )
    .await;
    assert_eq!(moved.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM records WHERE id = {id} AND status = 'booked' AND starts_at = '{to}'"
        ))
        .await,
        1,
        "moved to {to}"
    );
    let (_, after) = page(&client, &app, &location(&moved)).await;
    assert!(after.contains("Запись перенесена"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_visit_link_asks_before_cancelling_and_keeps_the_reason() {
    let (app, emulators, doctor, branch) = booking_app().await;
    let starts = free_starts(&app, doctor, branch).await;
    let phone = "+79165550911";
    let response = browser()
        .post(app.url("/api/v1/specialist/anonymous-reserve"))
        .json(&anonymous_booking(doctor, branch, &starts[0], phone))
        .send()
        .await
        .expect("reserve");
    assert_eq!(response.status(), StatusCode::CREATED);
    let digits = phone.trim_start_matches('+').to_owned();
    let control = emulators.control.clone();
    assert!(
        eventually(10, || control
            .sms_messages()
            .iter()
            .any(|m| m.to == digits && m.text.contains("/v/")))
        .await,
        "the booking SMS carries the visit link"
    );
    let text = control
        .sms_messages()
        .into_iter()
        .find(|m| m.to == digits && m.text.contains("/v/"))
        .expect("booking SMS")
        .text;
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/v/"))
        .expect("link")
        .trim_end_matches(['.', ',', ')']);
    let token = link.rsplit('/').next().expect("token").to_owned();
    let visit = format!("/v/{token}");

    let client = browser();
    let (status, html) = page(&client, &app, &visit).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Запись активна"));
    assert!(
        html.contains("Комментарий для врача</dt><dd class=\"typed-text\">Первичный приём</dd>"),
        "the comment typed at booking: {html}"
    );
    assert!(html.contains(&format!("href=\"{visit}/cancel\"")));
    let (status, question) = page(&client, &app, &format!("{visit}/cancel")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(question.contains("Отменить запись?"));
    let active =
        "SELECT count(*) AS n FROM records WHERE source = 'anonymous' AND status = 'booked'";
    assert_eq!(app.count(active).await, 1, "nothing cancelled by looking");

    let cancelled = post(
        &client,
        &app,
        &format!("{visit}/cancel"),
        &format!("{visit}/cancel"),
        &[("reason", "Планы изменились")],
    )
    .await;
    assert_eq!(cancelled.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.count(active).await, 0);
    let (_, after) = page(&client, &app, &location(&cancelled)).await;
    assert!(after.contains("Запись отменена"));
    assert!(after.contains("Планы изменились"));
    assert!(after.contains("Записаться снова"));
}
