//! The schedule read's fast path: a hit asks PostgreSQL nothing (the directory and the days
//! are in memory), yet a booking, a started slot and a change from the MIS's feed show at
//! once; and two app instances on one database and Redis (replicas in one process, each
//! with its own memory, lock and subscriber) make one MIS call for fifty cold readers.

use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use reqwest::StatusCode;
use serde_json::Value;
use sovamed::{domain::clock::Clock, emulator::FrontDeskAction, server};

use crate::support::{
    TestApp, anonymous_booking, browser, doctor_in, eventually, first_free_start, free_starts,
    sync_directories, with_emulators, with_emulators_and,
};

/// The schedule of `from..=to` (days from today, UTC calendar) at `base`.
fn schedule_url(base: &str, doctor: i64, branch: i64, from: i64, to: i64) -> String {
    let today = Utc::now().date_naive();
    format!(
        "{base}/api/v1/specialist/schedule?specialist_id={doctor}&branch_id={branch}&date_from={}&date_to={}",
        today + chrono::Duration::days(from),
        today + chrono::Duration::days(to)
    )
}

async fn read(url: &str) -> (StatusCode, Value) {
    let response = browser().get(url).send().await.expect("schedule");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Every slot of a schedule answer: (start, free).
fn slots(window: &Value) -> Vec<(String, bool)> {
    window["days"]
        .as_array()
        .expect("days")
        .iter()
        .flat_map(|d| d["slots"].as_array().cloned().unwrap_or_default())
        .map(|s| {
            (
                s["start"].as_str().expect("start").to_owned(),
                s["free"] == true,
            )
        })
        .collect()
}

/// The directories synced, the snapshot built and the subscriber listening: a read from
/// here on can be served from memory.
async fn ready(app: &TestApp) {
    sync_directories(app).await;
    app.reload_directory().await;
    let schedule = app.state().booking.schedule.clone();
    assert!(
        eventually(10, || schedule.memory_in_use()).await,
        "the cluster subscriber subscribes"
    );
}

/// Runs `sql` on the server's `postgres` database (not the test's own).
async fn on_server(sql: &str) {
    let mut conn = AsyncPgConnection::establish("postgres://postgres@127.0.0.1:5432/postgres")
        .await
        .expect("connect");
    diesel::sql_query(sql)
        .execute(&mut conn)
        .await
        .expect("server statement");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cached_read_asks_postgresql_nothing() {
    let (app, _emulators) = with_emulators().await;
    ready(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let url = schedule_url(&app.base, doctor, branch, 1, 7);
    let (status, first) = read(&url).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (_, cached) = read(&url).await;
    assert_eq!(cached["source"], "cache", "{cached}");

    // The test's database now refuses connections, and the app's open ones are cut: any
    // query a read made would fail it.
    let database = app
        .config
        .database_url
        .rsplit('/')
        .next()
        .expect("database name")
        .to_owned();
    on_server(&format!(
        "ALTER DATABASE \"{database}\" WITH ALLOW_CONNECTIONS false"
    ))
    .await;
    on_server(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{database}' AND pid <> pg_backend_pid()"
    ))
    .await;

    for _ in 0..50 {
        let (status, hit) = read(&url).await;
        assert_eq!(status, StatusCode::OK, "{hit}");
        assert_eq!(hit, cached, "the same answer, from memory");
    }
    // The cut is real: a doctor the snapshot does not know is asked of PostgreSQL, and fails.
    let unknown = schedule_url(&app.base, 999_999_999, branch, 1, 1);
    let (status, body) = read(&unknown).await;
    assert!(status.is_server_error(), "{status} {body}");

    on_server(&format!(
        "ALTER DATABASE \"{database}\" WITH ALLOW_CONNECTIONS true"
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_booked_slot_is_taken_on_the_next_read() {
    let (app, _emulators) = with_emulators().await;
    ready(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let start = first_free_start(&app, doctor, branch).await;
    // Held in memory now, and free there.
    assert!(free_starts(&app, doctor, branch).await.contains(&start));

    let response = browser()
        .post(app.url("/api/v1/specialist/anonymous-reserve"))
        .json(&anonymous_booking(doctor, branch, &start, "+79165550401"))
        .send()
        .await
        .expect("book");
    assert_eq!(response.status(), StatusCode::CREATED);
    let booked_at = Instant::now();
    let after = free_starts(&app, doctor, branch).await;
    assert!(!after.contains(&start), "{start} is taken");
    assert!(booked_at.elapsed() < Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slot_that_has_started_is_never_free_on_a_cached_day() {
    let (app, _emulators) = with_emulators_and(|config| {
        config.clock = Clock::fixed(Utc::now());
    })
    .await;
    ready(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let start = first_free_start(&app, doctor, branch).await;
    let start_at: DateTime<FixedOffset> = start.parse().expect("RFC 3339");
    let day = start_at.date_naive();
    let url = format!(
        "{}/api/v1/specialist/schedule?specialist_id={doctor}&branch_id={branch}&date_from={day}&date_to={day}",
        app.base
    );
    let (_, before) = read(&url).await;
    assert!(slots(&before).contains(&(start.clone(), true)), "{before}");

    // A minute into the slot: the day is still cached, the slot no longer free.
    let now = start_at.with_timezone(&Utc) + chrono::Duration::minutes(1);
    app.state().booking.clock.set(now);
    let (status, during) = read(&url).await;
    assert_eq!(status, StatusCode::OK, "{during}");
    assert_eq!(during["source"], "cache", "{during}");
    let during_slots = slots(&during);
    assert!(during_slots.contains(&(start.clone(), false)), "{during}");
    for (slot_start, free) in &during_slots {
        let slot_at: DateTime<FixedOffset> = slot_start.parse().expect("RFC 3339");
        if slot_at.with_timezone(&Utc) <= now {
            assert!(!free, "{slot_start} has started");
        }
    }
    // The same slots, only the started ones taken.
    assert_eq!(during_slots.len(), slots(&before).len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_day_the_mis_feed_changes_is_read_from_the_mis_again() {
    let (app, emulators) = with_emulators_and(|config| {
        // The test polls the feed itself.
        config.change_feed_interval = Duration::ZERO;
    })
    .await;
    ready(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let start = first_free_start(&app, doctor, branch).await;
    let response = browser()
        .post(app.url("/api/v1/specialist/anonymous-reserve"))
        .json(&anonymous_booking(doctor, branch, &start, "+79165550402"))
        .send()
        .await
        .expect("book");
    assert_eq!(response.status(), StatusCode::CREATED);
    let record: Value = response.json().await.expect("json");
    let schedid = record["mis_id"].as_i64().expect("mis_id");
    let day = start
        .parse::<DateTime<FixedOffset>>()
        .expect("start")
        .date_naive();
    let url = format!(
        "{}/api/v1/specialist/schedule?specialist_id={doctor}&branch_id={branch}&date_from={day}&date_to={day}",
        app.base
    );
    let _ = read(&url).await;
    emulators.control.reset_mis_calls();
    let (_, cached) = read(&url).await;
    assert_eq!(cached["source"], "cache", "{cached}");
    assert!(slots(&cached).contains(&(start.clone(), false)));
    assert_eq!(emulators.control.mis_calls("SCHEDULE"), 0);

    // The clinic's front desk cancels the visit in the MIS; the feed brings it here.
    assert!(
        emulators
            .control
            .front_desk(&FrontDeskAction::Cancel { schedid })
    );
    let applied = app
        .state()
        .booking
        .follow_changes()
        .await
        .expect("feed poll");
    assert_eq!(applied.cancelled, 1);
    let (_, reread) = read(&url).await;
    assert_eq!(reread["source"], "mis", "{reread}");
    assert_eq!(emulators.control.mis_calls("SCHEDULE"), 1);
    assert!(
        slots(&reread).contains(&(start, true)),
        "free again: {reread}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_make_one_mis_call_for_fifty_cold_readers_and_share_invalidations() {
    let (app, emulators) = with_emulators().await;
    ready(&app).await;
    // A second app instance on the same database, Redis prefix and emulators: its own
    // memory, in-process locks and subscriber, as another process would have.
    let second = server::start(app.config.clone())
        .await
        .expect("second replica");
    second
        .state
        .booking
        .directory
        .reload()
        .await
        .expect("directory snapshot");
    let second_schedule = second.state.booking.schedule.clone();
    assert!(eventually(10, || second_schedule.memory_in_use()).await);
    let bases = [app.base.clone(), format!("http://{}", second.addr)];
    let (doctor, branch) = doctor_in(&app, None).await;
    emulators.control.reset_mis_calls();

    let mut readers = tokio::task::JoinSet::new();
    for i in 0..50 {
        let url = schedule_url(&bases[i % 2], doctor, branch, 2, 8);
        readers.spawn(async move { read(&url).await });
    }
    while let Some(done) = readers.join_next().await {
        let (status, body) = done.expect("reader");
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(
        emulators.control.mis_calls("SCHEDULE"),
        1,
        "one MIS call across both replicas"
    );

    // Both hold the days; a booking through the second drops them from the first too.
    let on_first = schedule_url(&bases[0], doctor, branch, 2, 8);
    let (_, held) = read(&on_first).await;
    let start = slots(&held)
        .into_iter()
        .find(|(_, free)| *free)
        .map(|(start, _)| start)
        .expect("a free slot");
    let response = browser()
        .post(format!("{}/api/v1/specialist/anonymous-reserve", bases[1]))
        .json(&anonymous_booking(doctor, branch, &start, "+79165550403"))
        .send()
        .await
        .expect("book");
    assert_eq!(response.status(), StatusCode::CREATED);
    let booked_at = Instant::now();
    let mut taken = false;
    while !taken && booked_at.elapsed() < Duration::from_secs(1) {
        let (_, now) = read(&on_first).await;
        taken = slots(&now).contains(&(start.clone(), false));
    }
    assert!(
        taken,
        "the first replica shows {start} taken within a second"
    );

    second.shutdown().await.expect("second replica stops");
}
