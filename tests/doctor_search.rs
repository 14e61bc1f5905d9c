//! The patient's home page and doctor search against the emulators: the box forgives case,
//! ё/е and a missing letter and finds specialities; the list is paginated, shows the lowest
//! price and the nearest free time from the stored schedule copy (never an MIS call per row,
//! and "now" is the booking clock's), sorts by that time, and answers htmx with the list
//! only, under the address of what it shows.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, FixedOffset, Utc};
use diesel::{QueryableByName, sql_types};
use diesel_async::RunQueryDsl;
use reqwest::StatusCode;
use sovamed::{
    db::models::directory::roubles_label,
    domain::{clock::Clock, values::BranchZone},
    sync::{Quiet, Sources, SyncKind, SyncOptions},
    web::labels,
};

use crate::support::{
    TestApp, anonymous_booking, browser, doctor_in, free_starts, list_json, sync_all,
    with_emulators_and,
};

/// The page, with askama's numeric escape of `&` written as the `&amp;` the templates use.
async fn page(
    client: &reqwest::Client,
    app: &TestApp,
    path: &str,
) -> (reqwest::StatusCode, String) {
    let (status, html) = crate::support::page(client, app, path).await;
    (status, html.replace("&#38;", "&amp;"))
}

/// Doctors per page of the list (`web::doctors`).
const PER_PAGE: usize = 10;

/// An app on a fixed clock (standing at the real now until a test moves it), every
/// directory synced from the emulators, prices included.
async fn search_app() -> (TestApp, sovamed::emulator::Emulators) {
    let (app, emulators) = with_emulators_and(|config| {
        config.clock = Clock::fixed(Utc::now());
    })
    .await;
    sync_all(&app, false).await.expect("directories sync");
    (app, emulators)
}

/// A doctor card of a list page: id, name and the card's HTML.
struct Card {
    id: i64,
    name: String,
    html: String,
}

fn cards(html: &str) -> Vec<Card> {
    html.split("<li class=\"doctor-card\">")
        .skip(1)
        .map(|card| {
            let link = card
                .split("<h2><a href=\"/doctors/")
                .nth(1)
                .expect("a card links its doctor");
            let (id, rest) = link.split_once("\">").expect("the link's end");
            let name = rest.split("</a>").next().expect("the name");
            Card {
                id: id.parse().expect("a doctor id"),
                name: name.to_owned(),
                html: card.to_owned(),
            }
        })
        .collect()
}

/// «Найдено врачей: N».
fn found(html: &str) -> usize {
    html.split("Найдено врачей: ")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .and_then(|n| n.trim().parse().ok())
        .expect("the list says how many it found")
}

/// «Страница N из M»: (N, M); a list of one page says nothing.
fn pager(html: &str) -> (usize, usize) {
    let Some(rest) = html.split("<span>Страница ").nth(1) else {
        return (1, 1);
    };
    let text = rest.split('<').next().expect("the pager's text");
    let (page, pages) = text.split_once(" из ").expect("N из M");
    (
        page.trim().parse().expect("page"),
        pages.trim().parse().expect("pages"),
    )
}

/// `q=<text>`, encoded.
fn q(text: &str) -> String {
    serde_urlencoded::to_string([("q", text)]).expect("a query string")
}

/// Lower case, ё as е.
fn fold(name: &str) -> String {
    name.to_lowercase().replace('ё', "е")
}

/// Every doctor the list finds for `query` (the `q`, filters and order), page by page.
async fn all_found(app: &TestApp, query: &str) -> Vec<Card> {
    let client = browser();
    let mut all = Vec::new();
    let mut number = 1;
    loop {
        let path = format!("/doctors?{query}&page={number}");
        let (status, html) = page(&client, app, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let (shown, pages) = pager(&html);
        assert_eq!(shown, number, "{path}");
        let on_page = cards(&html);
        assert!(on_page.len() <= PER_PAGE, "{path}");
        all.extend(on_page);
        if number >= pages {
            assert_eq!(all.len(), found(&html), "{query}: every page together");
            return all;
        }
        number += 1;
    }
}

/// The active doctors the API lists for `query` (it matches names by substring only).
async fn api_names(app: &TestApp, query: &str) -> BTreeSet<String> {
    let (_, items) = list_json(app, &format!("/api/v1/specialists?{query}")).await;
    items
        .as_array()
        .expect("items")
        .iter()
        .map(|d| d["full_name"].as_str().expect("name").to_owned())
        .collect()
}

async fn speciality_id(app: &TestApp, name: &str) -> i64 {
    let (_, items) = list_json(app, "/api/v1/specialities").await;
    items
        .as_array()
        .expect("items")
        .iter()
        .find(|s| s["name"] == name)
        .and_then(|s| s["id"].as_i64())
        .expect("the speciality")
}

fn names(cards: &[Card]) -> BTreeSet<String> {
    cards.iter().map(|c| c.name.clone()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_box_forgives_case_yo_and_a_missing_letter() {
    let (app, _emulators) = search_app().await;
    let everyone = api_names(&app, "").await;
    let semyonova: BTreeSet<String> = everyone
        .iter()
        .filter(|n| n.starts_with("Семёнова "))
        .cloned()
        .collect();
    assert!(!semyonova.is_empty(), "the demo data has a Семёнова");

    for typed in ["семенова", "Семёнова", "СЕМЕНОВА", "семенва", "семнова"]
    {
        let shown = names(&all_found(&app, &q(typed)).await);
        assert!(
            semyonova.is_subset(&shown),
            "{typed:?} finds every Семёнова {semyonova:?}, found {shown:?}"
        );
        assert!(
            shown.len() < everyone.len(),
            "{typed:?} narrows the list: {shown:?}"
        );
    }
    // Whatever the spelling, only names like it.
    let shown = all_found(&app, &q("Семёнова ")).await;
    assert!(
        shown.iter().all(|c| fold(&c.name).contains("семен")),
        "{:?}",
        names(&shown)
    );
    // Nothing like the text: nobody, and the list says so.
    let (status, html) = page(&browser(), &app, &format!("/doctors?{}", q("ъъъъъ"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found(&html), 0);
    assert!(html.contains("врачей не нашлось"), "{html}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_speciality_word_finds_its_doctors() {
    let (app, _emulators) = search_app().await;
    let cardiology = speciality_id(&app, "Кардиология").await;
    let cardiologists = api_names(&app, &format!("speciality_id={cardiology}")).await;
    assert!(!cardiologists.is_empty(), "the demo data has cardiologists");
    for typed in ["кардиолог", "Кардиолога", "кардиология", "кардилог"]
    {
        let shown = all_found(&app, &q(typed)).await;
        assert_eq!(names(&shown), cardiologists, "{typed:?}");
        assert!(
            shown.iter().all(|c| c.html.contains("Кардиология")),
            "{typed:?}: every card names the speciality"
        );
    }
    // «терапевт» is not a substring of «Терапия»: its stem is.
    let therapy = speciality_id(&app, "Терапия").await;
    let therapists = api_names(&app, &format!("speciality_id={therapy}")).await;
    let shown = names(&all_found(&app, &q("терапевт")).await);
    assert!(therapists.is_subset(&shown), "{therapists:?} in {shown:?}");
    // A word for the speciality and one for the name: both must match.
    let one = cardiologists.iter().next().expect("a cardiologist");
    let surname = one.split(' ').next().expect("surname");
    let shown = names(&all_found(&app, &q(&format!("кардиолог {}", fold(surname)))).await);
    assert!(shown.contains(one), "{shown:?}");
    assert!(shown.is_subset(&cardiologists), "{shown:?}");
    // The filters narrow the search further.
    let (status, html) = page(
        &browser(),
        &app,
        &format!("/doctors?{}&speciality_id={therapy}", q("кардиолог")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        cards(&html)
            .iter()
            .all(|c| cardiologists.contains(&c.name) && therapists.contains(&c.name)),
        "only doctors of both"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_list_is_paginated_and_refuses_bad_pages() {
    let (app, _emulators) = search_app().await;
    let everyone = api_names(&app, "").await;
    assert!(everyone.len() > PER_PAGE, "more doctors than one page");
    let client = browser();
    let (_, first) = page(&client, &app, "/doctors").await;
    let pages = everyone.len().div_ceil(PER_PAGE);
    assert_eq!(pager(&first), (1, pages));
    assert_eq!(found(&first), everyone.len());
    assert_eq!(cards(&first).len(), PER_PAGE);
    assert!(first.contains("Дальше") && first.contains("href=\"/doctors?page=2\""));
    let (_, last) = page(&client, &app, &format!("/doctors?page={pages}")).await;
    assert_eq!(cards(&last).len(), everyone.len() - (pages - 1) * PER_PAGE);
    assert!(last.contains("Назад") && !last.contains("Дальше"));
    // Together the pages are every doctor once.
    let all = all_found(&app, "").await;
    assert_eq!(names(&all), everyone);
    assert_eq!(all.len(), everyone.len(), "no doctor on two pages");
    // Past the end: the last page.
    let (status, past) = page(&client, &app, "/doctors?page=999").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pager(&past), (pages, pages));
    // The pager's links keep the filters and the order.
    let (_, sorted) = page(&client, &app, "/doctors?sort=nearest&q=").await;
    assert!(
        sorted.contains("href=\"/doctors?sort=nearest&amp;page=2\""),
        "the next page keeps the order"
    );
    for bad in [
        "page=0",
        "page=abc",
        "page=-1",
        "page=100001",
        "sort=sideways",
        "branch_id=x",
    ] {
        let (status, _) = page(&client, &app, &format!("/doctors?{bad}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_card_shows_the_lowest_bookable_price() {
    let (app, _emulators) = search_app().await;
    let (_, html) = page(&browser(), &app, "/doctors").await;
    let shown = cards(&html);
    assert!(!shown.is_empty());
    for card in shown.iter().take(3) {
        let id = card.id;
        let lowest = app
            .count(&format!(
                "SELECT min(p.price_kopecks) AS n FROM prices p \
                 WHERE p.active AND p.bookable \
                   AND p.speciality_id IN (SELECT speciality_id FROM specialist_specialities WHERE specialist_id = {id}) \
                   AND p.branch_id IN (SELECT branch_id FROM specialist_branches WHERE specialist_id = {id})"
            ))
            .await;
        let expected = format!("Стоимость приёма: от {}", roubles_label(lowest));
        assert!(card.html.contains(&expected), "{expected} in {}", card.html);
    }
}

#[derive(QueryableByName)]
struct Nearest {
    #[diesel(sql_type = sql_types::Text)]
    name: String,
    #[diesel(sql_type = sql_types::Timestamptz)]
    nearest: DateTime<Utc>,
}

/// What the stored copy says: each doctor's first free start after `now`.
async fn stored_nearest(app: &TestApp, now: DateTime<Utc>) -> BTreeMap<String, DateTime<Utc>> {
    let mut conn = app.db().await;
    let rows: Vec<Nearest> = diesel::sql_query(
        "SELECT s.full_name AS name, min(t) AS nearest \
         FROM specialists s JOIN schedule_snapshots ss ON ss.specialist_id = s.id, unnest(ss.free_starts) t \
         WHERE t > $1 GROUP BY s.full_name",
    )
    .bind::<sql_types::Timestamptz, _>(now)
    .load(&mut conn)
    .await
    .expect("the stored nearest times");
    rows.into_iter().map(|r| (r.name, r.nearest)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_nearest_free_time_comes_from_the_stored_schedule_and_orders_the_list() {
    let (app, emulators) = search_app().await;
    let client = browser();
    emulators.control.reset_mis_calls();

    // Nothing read yet: no time is known, and listing costs the MIS nothing.
    let (_, html) = page(&client, &app, "/doctors?sort=nearest").await;
    assert!(!html.contains("Ближайшее время"), "no time is known yet");
    assert!(html.contains("Свободное время смотрите в расписании"));
    assert_eq!(
        emulators.control.mis_calls("SCHEDULE"),
        0,
        "the list never asks the MIS"
    );

    // One doctor's schedule is read (as the doctor page does): that doctor leads the list,
    // with the first free start in the branch's own clock.
    let (doctor, branch) = doctor_in(&app, Some("Asia/Yekaterinburg")).await;
    let starts = free_starts(&app, doctor, branch).await;
    assert!(starts.len() >= 2, "the doctor has free time");
    let at = |raw: &str| DateTime::<FixedOffset>::parse_from_rfc3339(raw).expect("rfc 3339");
    let expect_card = |html: &str, start: &DateTime<FixedOffset>| {
        let first = cards(html).into_iter().next().expect("a card");
        assert_eq!(first.id, doctor, "the doctor with a known time leads");
        let link = format!(
            "Ближайшее время: <a href=\"/doctors/{doctor}?branch_id={branch}&amp;date={}#slots\">{}</a>",
            start.date_naive(),
            labels::weekday_day_time(start)
        );
        assert!(first.html.contains(&link), "{link} in {}", first.html);
        let zone: BranchZone = "Asia/Yekaterinburg".parse().expect("zone");
        assert!(first.html.contains(&format!("({})", zone.city_time())));
        assert!(first.html.contains("время Екатеринбурга"));
    };
    let (_, html) = page(&client, &app, "/doctors?sort=nearest").await;
    expect_card(&html, &at(&starts[0]));
    let calls = emulators.control.mis_calls("SCHEDULE");
    let _ = page(&client, &app, "/doctors?sort=nearest&page=2").await;
    assert_eq!(
        emulators.control.mis_calls("SCHEDULE"),
        calls,
        "paging asks the MIS nothing"
    );

    // "Now" is the booking clock's: at the first start, the second is the nearest; past the
    // last one, nothing is known.
    let first = at(&starts[0]).with_timezone(&Utc);
    app.config.clock.set(first);
    let (_, html) = page(&client, &app, "/doctors?sort=nearest").await;
    let second = starts
        .iter()
        .map(|s| at(s.as_str()))
        .find(|s| s.with_timezone(&Utc) > first)
        .expect("a later start");
    expect_card(&html, &second);
    let last = starts
        .iter()
        .map(|s| at(s.as_str()).with_timezone(&Utc))
        .max()
        .expect("a start");
    app.config.clock.set(last + Duration::minutes(1));
    let (_, html) = page(&client, &app, "/doctors?sort=nearest").await;
    assert!(!html.contains("Ближайшее время"), "past every stored start");
    app.config.clock.set(Utc::now());

    // The prefetch fills every doctor's time; the list orders by it, unknown times last.
    let sources =
        Sources::from_config(&app.config).with_schedules(app.state().booking.schedule.clone());
    let mut options = SyncOptions::from_config(&app.config, false);
    options.schedule_days = 7;
    let mut conn = app.db().await;
    sovamed::sync::run_kinds(
        &mut conn,
        &sources,
        &[SyncKind::Schedules],
        &options,
        &Quiet,
        |_| {},
    )
    .await
    .map_err(|(kind, e)| format!("{}: {e}", kind.as_str()))
    .expect("schedule prefetch");
    emulators.control.reset_mis_calls();
    let known = stored_nearest(&app, app.config.clock.now()).await;
    assert!(
        known.len() > PER_PAGE,
        "most doctors have free time: {known:?}"
    );
    let listed = all_found(&app, "sort=nearest").await;
    assert_eq!(
        emulators.control.mis_calls("SCHEDULE"),
        0,
        "the list never asks the MIS"
    );
    let times: Vec<Option<DateTime<Utc>>> =
        listed.iter().map(|c| known.get(&c.name).copied()).collect();
    let with_time = times.iter().take_while(|t| t.is_some()).count();
    assert_eq!(with_time, known.len(), "doctors with a known time first");
    assert!(
        times[with_time..].iter().all(Option::is_none),
        "then the others"
    );
    assert!(
        times[..with_time].windows(2).all(|w| w[0] <= w[1]),
        "by the nearest time: {times:?}"
    );
    for (card, time) in listed.iter().zip(&times) {
        assert_eq!(
            card.html.contains("Ближайшее время"),
            time.is_some(),
            "{}",
            card.name
        );
    }
    // By name (the default), the same doctors.
    assert_eq!(names(&all_found(&app, "sort=name").await), names(&listed));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_booked_start_is_no_longer_offered_as_the_nearest() {
    let (app, _emulators) = search_app().await;
    let (doctor, branch) = doctor_in(&app, Some("Asia/Yekaterinburg")).await;
    let starts = free_starts(&app, doctor, branch).await;
    assert!(starts.len() >= 2, "the doctor has free time");
    let response = browser()
        .post(app.url("/api/v1/specialist/anonymous-reserve"))
        .header("idempotency-key", "search-nearest-booked")
        .json(&anonymous_booking(
            doctor,
            branch,
            &starts[0],
            "+79165550123",
        ))
        .send()
        .await
        .expect("reserve");
    assert_eq!(response.status(), StatusCode::CREATED);
    let (_, html) = page(&browser(), &app, "/doctors?sort=nearest").await;
    let first = cards(&html).into_iter().next().expect("a card");
    assert_eq!(first.id, doctor);
    let label = |raw: &str| {
        labels::weekday_day_time(
            &DateTime::<FixedOffset>::parse_from_rfc3339(raw).expect("rfc 3339"),
        )
    };
    assert!(
        !first.html.contains(&label(&starts[0])) && first.html.contains(&label(&starts[1])),
        "the booked {} gave way to {}: {}",
        starts[0],
        starts[1],
        first.html
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn htmx_gets_the_list_alone_under_the_address_of_what_it_shows() {
    let (app, _emulators) = search_app().await;
    let client = browser();
    let response = client
        .get(app.url("/doctors?q=%D0%BA%D0%B0%D1%80%D0%B4%D0%B8%D0%BE%D0%BB%D0%BE%D0%B3&speciality_id=&branch_id=&sort=name"))
        .header("hx-request", "true")
        .send()
        .await
        .expect("the list");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("hx-push-url")
            .and_then(|v| v.to_str().ok()),
        Some("/doctors?q=%D0%BA%D0%B0%D1%80%D0%B4%D0%B8%D0%BE%D0%BB%D0%BE%D0%B3"),
        "the pushed address drops the empty fields"
    );
    let partial = response.text().await.expect("body");
    assert!(
        !partial.contains("<html") && !partial.contains("<form"),
        "{partial}"
    );
    assert!(partial.contains("Найдено врачей") && !cards(&partial).is_empty());

    let response = client
        .get(app.url("/doctors?page=2&sort=nearest"))
        .header("hx-request", "true")
        .send()
        .await
        .expect("page 2");
    assert_eq!(
        response
            .headers()
            .get("hx-push-url")
            .and_then(|v| v.to_str().ok()),
        Some("/doctors?sort=nearest&page=2")
    );

    // A history restore replaces the whole page: it gets the page.
    let restored = client
        .get(app.url("/doctors?q=%D0%BA%D0%B0%D1%80%D0%B4%D0%B8%D0%BE%D0%BB%D0%BE%D0%B3"))
        .header("hx-request", "true")
        .header("hx-history-restore-request", "true")
        .send()
        .await
        .expect("restore")
        .text()
        .await
        .expect("body");
    assert!(restored.contains("<html") && restored.contains("<form"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_fills_the_form_from_its_address() {
    let (app, _emulators) = search_app().await;
    let (_, branches) = list_json(&app, "/api/v1/branches").await;
    let branch = branches[0]["id"].as_i64().expect("a branch");
    let (status, html) = page(
        &browser(),
        &app,
        &format!("/doctors?q=%D1%81%D0%B5%D0%BC%D0%B5%D0%BD%D0%BE%D0%B2%D0%B0&branch_id={branch}&sort=nearest"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("value=\"семенова\""),
        "the box shows the search"
    );
    assert!(html.contains(&format!("<option value=\"{branch}\" selected>")));
    assert!(html.contains("<option value=\"nearest\" selected>"));
    assert!(html.contains("hx-push-url=\"true\"") && html.contains("hx-history=\"false\""));
    assert!(!html.contains("style="), "no inline styles");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_home_page_has_the_search_the_specialities_and_the_branches() {
    let (app, _emulators) = search_app().await;
    assert_eq!(
        app.count("SELECT count(*) AS n FROM branches WHERE active AND work_hours <> ''")
            .await,
        3,
        "opening hours are synced from WORKHOURS"
    );
    let (status, html) = page(&browser(), &app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("action=\"/doctors\"") && html.contains("name=\"q\""),
        "the search box"
    );
    let cardiology = speciality_id(&app, "Кардиология").await;
    assert!(html.contains(&format!(
        "href=\"/doctors?speciality_id={cardiology}\">Кардиология</a>"
    )));
    assert!(html.contains("Екатеринбург, ул. Малышева, д. 51"));
    assert!(html.contains("href=\"tel:+73433102040\">+7(343)310-20-40</a>"));
    assert!(html.contains("пн–сб 8:00–19:00, вс — выходной"));
    assert!(html.contains("href=\"https://yandex.ru/maps/?text="));
    assert!(html.contains("target=\"_blank\" rel=\"noopener\""));
    assert!(html.contains(&format!(
        "href=\"tel:+74951203450\">{}</a>",
        sovamed::config::DEFAULT_CLINIC_PHONE
    )));
    assert!(html.contains("href=\"/login\"") && html.contains("href=\"/register\""));
    assert!(!html.contains("style="), "no inline styles");
}
