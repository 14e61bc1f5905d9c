//! Several replicas behave as one (issue 15): two `sovamed serve` processes in production mode
//! on one PostgreSQL database and one Redis (one key prefix), with the MIS, CMS and SMS
//! emulators in this process. A session or a token made on one works on the other; twenty
//! bookings of one slot split over both have one winner, one record, one MIS appointment and
//! one SMS; the periodic sync and the reconciler run on one replica at a time; a booking on one
//! shows on the other's cached day within a second; fifty cold reads of one doctor-day over
//! both make one MIS call. One reminder per visit with two processes is
//! `reminders::two_server_processes_send_one_reminder`.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use reqwest::{Client, Response, StatusCode, header, redirect::Policy};
use serde_json::{Value, json};
use sovamed::emulator::{EmulatorConfig, EmulatorControl, Emulators, MisFaults};

use crate::support::{
    anonymous_booking, browser, count_rows, csrf_token, eventually, location,
    served::{Served, env_value, production_env},
};

/// The log lines that end a periodic sync round (`src/sync/scheduler.rs`).
const SYNC_ROUND_ENDS: [&str; 4] = [
    "periodic sync finished",
    "periodic sync skipped",
    "periodic sync failed",
    "periodic sync refused",
];

/// The MIS, CMS and SMS emulators alone (no in-process app that could call them too).
async fn emulators() -> Emulators {
    sovamed::emulator::spawn(EmulatorConfig {
        seed: 42,
        scale: 1,
        mis_bind: "127.0.0.1:0".parse().expect("addr"),
        cms_bind: "127.0.0.1:0".parse().expect("addr"),
        sms_bind: Some("127.0.0.1:0".parse().expect("addr")),
        cms_token: "test-cms-token".into(),
    })
    .await
    .expect("emulators start")
}

/// Both processes' environment: production, the emulators, limits out of the way of a test
/// that books and reads from one address, and only today prefetched by the sync, so that
/// later days stay cold until the test reads them.
async fn replica_env(emulators: &Emulators) -> Vec<(&'static str, String)> {
    let mut env = production_env(emulators).await;
    env.extend([
        ("RUST_LOG", "info".to_owned()),
        ("DATABASE_POOL_SIZE", "6".to_owned()),
        ("ANONYMOUS_BOOKING_VERIFY", "off".to_owned()),
        ("RESERVE_LIMIT_PER_IP_HOUR", "100000".to_owned()),
        ("RESERVE_LIMIT_PER_PHONE_HOUR", "100000".to_owned()),
        ("SCHEDULE_UNCACHED_READS_PER_IP_MINUTE", "100000".to_owned()),
        ("SCHEDULE_PREFETCH_DAYS", "1".to_owned()),
        // The change feed asks the MIS on its own clock; off, every MIS call counted here is
        // one the test caused.
        ("CHANGE_FEED_INTERVAL_SECONDS", "0".to_owned()),
        ("RECONCILE_INTERVAL_SECONDS", "1".to_owned()),
        // Far above a booking's time, so the reconciler never races the test's bookings.
        ("INTENT_STALE_SECONDS", "60".to_owned()),
    ]);
    env
}

/// Waits until each server's first periodic sync round (run at start) has ended, so that no
/// sync runs or prefetches behind the checks that follow.
async fn first_sync_rounds(first: &Served, second: &Served) {
    for (name, server) in [("first", first), ("second", second)] {
        assert!(
            server.wait_for_line(&SYNC_ROUND_ENDS, 60).await,
            "the {name} server's first periodic sync round did not end within 60 s:\n{}",
            server.log()
        );
    }
}

/// Every doctor with the first branch they work in: (doctor, branch).
async fn doctors(server: &Served) -> Vec<(i64, i64)> {
    let list: Value = browser()
        .get(server.url("/api/v1/specialists?per_page=200"))
        .send()
        .await
        .expect("specialists")
        .json()
        .await
        .expect("json");
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|d| Some((d["id"].as_i64()?, d["branches"][0]["id"].as_i64()?)))
        .collect()
}

/// From tomorrow (UTC, never before any branch's today) for two weeks, as S1 dates.
fn two_weeks() -> (String, String) {
    let tomorrow = Utc::now().date_naive() + chrono::Duration::days(1);
    (
        tomorrow.to_string(),
        (tomorrow + chrono::Duration::days(12)).to_string(),
    )
}

/// S1: the doctor's schedule from `from` to `to` on `server`, which must answer 200.
async fn read_schedule(server: &Served, doctor: i64, branch: i64, from: &str, to: &str) -> Value {
    let response = browser()
        .get(server.url(&format!(
            "/api/v1/specialist/schedule?specialist_id={doctor}&branch_id={branch}&date_from={from}&date_to={to}"
        )))
        .send()
        .await
        .expect("schedule");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::OK, "schedule {from}..{to}: {body}");
    body
}

/// The free slots of a schedule more than two hours ahead, soonest first: (day, start).
fn later_free_slots(window: &Value) -> Vec<(String, String)> {
    let after = Utc::now() + chrono::Duration::hours(2);
    let mut slots = Vec::new();
    for day in window["days"].as_array().cloned().unwrap_or_default() {
        let date = day["date"].as_str().unwrap_or_default().to_owned();
        for slot in day["slots"].as_array().cloned().unwrap_or_default() {
            let Some(start) = slot["start"].as_str() else {
                continue;
            };
            let later =
                DateTime::parse_from_rfc3339(start).is_ok_and(|at| at.with_timezone(&Utc) > after);
            if slot["free"] == true && later {
                slots.push((date.clone(), start.to_owned()));
            }
        }
    }
    slots
}

/// Whether the schedule shows `start` as a free slot.
fn is_free(window: &Value, start: &str) -> bool {
    window["days"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| d["slots"].as_array().cloned().unwrap_or_default())
        .any(|s| s["start"] == start && s["free"] == true)
}

/// The cookies a browser keeps, sent by hand: production cookies are `Secure` (and
/// `__Host-`), which a client's cookie store keeps only for HTTPS, and these servers speak
/// plain HTTP.
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn keep(&mut self, response: &Response) {
        for set in response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let Some((name, rest)) = set.split_once('=') else {
                continue;
            };
            let value = rest.split(';').next().unwrap_or_default();
            if value.is_empty() || set.to_ascii_lowercase().contains("max-age=0") {
                self.0.remove(name.trim());
            } else {
                self.0.insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A client without a cookie store (the [`Jar`] carries the cookies), not following redirects.
fn plain_client() -> Client {
    sovamed::integrations::http::install_crypto_provider();
    Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread")]
async fn two_server_processes_share_sessions_book_once_and_take_turns_at_background_work() {
    let emulators = emulators().await;
    let env = replica_env(&emulators).await;
    let database_url = env_value(&env, "DATABASE_URL");
    let (first, second) = Served::start_two(&env).await;
    first_sync_rounds(&first, &second).await;
    sync_rounds_never_overlapped(&first, &second, &database_url).await;
    sessions_and_tokens_work_on_both(&first, &second, &database_url).await;
    let (doctor, branch) = doctors(&first)
        .await
        .first()
        .copied()
        .expect("a doctor after the sync");
    twenty_bookings_of_one_slot_have_one_winner(
        &first,
        &second,
        &emulators,
        &database_url,
        (doctor, branch),
    )
    .await;
    reconciler_rounds_take_turns(&emulators, &database_url, (doctor, branch)).await;
}

/// Both servers tried a sync round at start, under one advisory lock: the runs recorded in
/// `sync_runs` never overlap in time, and each "finished" line is one recorded round.
async fn sync_rounds_never_overlapped(first: &Served, second: &Served, database_url: &str) {
    for needle in ["periodic sync failed", "periodic sync refused"] {
        assert_eq!(
            first.lines_with(needle) + second.lines_with(needle),
            0,
            "{needle}:\n{}\n{}",
            first.log(),
            second.log()
        );
    }
    let finished =
        first.lines_with("periodic sync finished") + second.lines_with("periodic sync finished");
    let skipped =
        first.lines_with("periodic sync skipped") + second.lines_with("periodic sync skipped");
    assert_eq!(
        finished + skipped,
        2,
        "one first round on each server:\n{}\n{}",
        first.log(),
        second.log()
    );
    let overlapping = count_rows(
        database_url,
        "SELECT count(*) AS n FROM sync_runs a JOIN sync_runs b ON a.id < b.id \
         AND a.started_at < b.finished_at AND b.started_at < a.finished_at",
    )
    .await;
    assert_eq!(
        overlapping, 0,
        "sync runs of the two servers overlapped in time: both synced at once"
    );
    let rounds = count_rows(
        database_url,
        "SELECT count(*) AS n FROM sync_runs WHERE kind = 'branches'",
    )
    .await;
    assert_eq!(
        rounds,
        i64::try_from(finished).expect("a count"),
        "each round recorded is one server's \"finished\" ({skipped} skipped)"
    );
}

/// The login form read from the first server and posted to the second logs in (its CSRF
/// token lives in the shared session); the session then opens the cabinet on both; a JWT
/// from the first server's API login works on the second.
async fn sessions_and_tokens_work_on_both(first: &Served, second: &Served, database_url: &str) {
    let (email, password, full_name) = (
        "replica@example.ru",
        "a passphrase for two replicas",
        "Репликова Анна Сергеевна",
    );
    let hash = sovamed::auth::password::hash(password.to_owned())
        .await
        .expect("hash");
    count_rows(
        database_url,
        &format!(
            "WITH u AS (INSERT INTO users (email, password_hash, full_name, role, phone, \
             phone_verified_at) VALUES ('{email}', '{hash}', '{full_name}', 'patient', \
             '+79001234567', now()) RETURNING 1) SELECT count(*) AS n FROM u"
        ),
    )
    .await;

    let client = plain_client();
    let mut jar = Jar::default();
    let form = client
        .get(first.url("/login"))
        .send()
        .await
        .expect("GET /login");
    assert_eq!(form.status(), StatusCode::OK);
    jar.keep(&form);
    let token = csrf_token(&form.text().await.expect("body"));
    let logged_in = client
        .post(second.url("/login"))
        .header(header::COOKIE, jar.header())
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", email),
            ("password", password),
            ("next", ""),
        ])
        .send()
        .await
        .expect("POST /login");
    assert_eq!(
        logged_in.status(),
        StatusCode::SEE_OTHER,
        "the first server's login form, posted to the second, logs in"
    );
    assert_eq!(location(&logged_in), "/cabinet");
    jar.keep(&logged_in);
    for (name, server) in [("first", first), ("second", second)] {
        let cabinet = client
            .get(server.url("/cabinet"))
            .header(header::COOKIE, jar.header())
            .send()
            .await
            .expect("GET /cabinet");
        assert_eq!(
            cabinet.status(),
            StatusCode::OK,
            "the session opens the cabinet on the {name} server"
        );
        jar.keep(&cabinet);
        let page = cabinet.text().await.expect("body");
        assert!(
            page.contains(full_name),
            "the {name} server's cabinet names the patient"
        );
    }

    let login = browser()
        .post(first.url("/api/v1/user/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("API login");
    assert_eq!(login.status(), StatusCode::OK);
    let body: Value = login.json().await.expect("json");
    let token = body["token"].as_str().expect("token").to_owned();
    let me = browser()
        .get(second.url("/api/v1/user/me"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("me");
    assert_eq!(
        me.status(),
        StatusCode::OK,
        "the first server's token works on the second"
    );
    let me: Value = me.json().await.expect("json");
    assert_eq!(me["email"], email);
}

/// Twenty anonymous bookings of one slot, ten to each server at once: one 201 and nineteen
/// `slot_taken`, one record, one MIS appointment, and one booking SMS, to the winner, though
/// both servers' outbox workers look.
async fn twenty_bookings_of_one_slot_have_one_winner(
    first: &Served,
    second: &Served,
    emulators: &Emulators,
    database_url: &str,
    (doctor, branch): (i64, i64),
) {
    let (from, to) = two_weeks();
    let window = read_schedule(first, doctor, branch, &from, &to).await;
    let (_, start) = later_free_slots(&window)
        .into_iter()
        .next()
        .expect("a free slot more than two hours ahead");
    let appointments_before = emulators.control.appointment_count();
    // Widens the window between each booking's read of the day and its reserve.
    emulators.control.set_mis_faults(MisFaults {
        reserve_latency_ms: 50,
        ..MisFaults::default()
    });
    let phones: Vec<String> = (0..20).map(|n| format!("+7916777{n:04}")).collect();
    let mut racers = tokio::task::JoinSet::new();
    for (n, phone) in phones.iter().enumerate() {
        let server = if n % 2 == 0 { first } else { second };
        let (url, body, phone) = (
            server.url("/api/v1/specialist/anonymous-reserve"),
            anonymous_booking(doctor, branch, &start, phone),
            phone.clone(),
        );
        racers.spawn(async move {
            let response = browser()
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("reserve");
            let status = response.status();
            (
                phone,
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        });
    }
    let mut winners = Vec::new();
    let mut taken = 0;
    while let Some(joined) = racers.join_next().await {
        let (phone, status, body) = joined.expect("racer");
        match status {
            StatusCode::CREATED => winners.push(phone),
            StatusCode::CONFLICT => {
                assert_eq!(body["error"]["code"], "slot_taken", "{body}");
                taken += 1;
            }
            other => panic!("a booking answered {other}: {body}"),
        }
    }
    emulators.control.set_mis_faults(MisFaults::default());
    assert_eq!((winners.len(), taken), (1, 19), "one winner: {winners:?}");
    assert_eq!(
        count_rows(database_url, "SELECT count(*) AS n FROM records").await,
        1,
        "one record"
    );
    assert_eq!(
        emulators.control.appointment_count(),
        appointments_before + 1,
        "one appointment in the MIS"
    );

    let digits: Vec<String> = phones
        .iter()
        .map(|p| p.trim_start_matches('+').to_owned())
        .collect();
    let received = |control: &EmulatorControl| -> Vec<(String, String)> {
        control
            .sms_messages()
            .into_iter()
            .filter(|m| digits.contains(&m.to))
            .map(|m| (m.to, m.text))
            .collect()
    };
    let control = emulators.control.clone();
    assert!(
        eventually(15, || !received(&control).is_empty()).await,
        "the winner's booking SMS reaches the gateway"
    );
    // Both servers' outbox workers look for due messages meanwhile.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = received(&control);
    assert_eq!(sent.len(), 1, "one SMS for the race: {sent:?}");
    assert_eq!(sent[0].0, winners[0].trim_start_matches('+'));
    assert!(sent[0].1.contains("вы записаны"), "{}", sent[0].1);
    assert_eq!(
        count_rows(
            database_url,
            "SELECT count(*) AS n FROM sms_outbox WHERE record_id IS NOT NULL"
        )
        .await,
        1
    );
}

/// An intent left pending an hour ago, for a card the MIS does not know: the round that takes
/// it asks the MIS (`SCHEDULE_REC_LIST`, slowed to 1.5 s) and marks it failed. Both servers
/// start a round every second, so without the advisory lock the other would ask too while
/// the first waits for the answer.
async fn reconciler_rounds_take_turns(
    emulators: &Emulators,
    database_url: &str,
    (doctor, branch): (i64, i64),
) {
    let listed_before = emulators.control.mis_calls("SCHEDULE_REC_LIST");
    emulators.control.set_mis_faults(MisFaults {
        latency_ms: 1_500,
        ..MisFaults::default()
    });
    let intent = count_rows(
        database_url,
        &format!(
            "WITH i AS (INSERT INTO booking_intents (kind, specialist_id, branch_id, starts_at, \
             ends_at, pcode, created_at, updated_at) VALUES ('book', {doctor}, {branch}, \
             now() + interval '3 days', now() + interval '3 days 30 minutes', 987654321, \
             now() - interval '1 hour', now() - interval '1 hour') RETURNING id) \
             SELECT id AS n FROM i"
        ),
    )
    .await;
    let failed = format!(
        "SELECT count(*) AS n FROM booking_intents WHERE id = {intent} AND state = 'failed'"
    );
    let mut settled = false;
    for _ in 0..100 {
        if count_rows(database_url, &failed).await == 1 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A few more rounds of both servers.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    emulators.control.set_mis_faults(MisFaults::default());
    assert!(
        settled,
        "the reconciler marked the pending intent failed within 10 s"
    );
    assert_eq!(
        emulators.control.mis_calls("SCHEDULE_REC_LIST") - listed_before,
        1,
        "one server asked the MIS about the intent; the other skipped its rounds while the \
         first held the lock"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_server_processes_share_the_schedule_cache_and_its_single_flight() {
    let emulators = emulators().await;
    let env = replica_env(&emulators).await;
    let (first, second) = Served::start_two(&env).await;
    first_sync_rounds(&first, &second).await;
    let doctors = doctors(&first).await;
    assert!(
        doctors.len() >= 2,
        "two doctors after the sync: {doctors:?}"
    );
    a_booking_on_one_shows_on_the_others_cached_day(&first, &second, doctors[0]).await;
    cold_reads_over_both_make_one_mis_call(&first, &second, &emulators, doctors[1]).await;
}

/// The day is cached on the second server (its second read is a hit); a booking through the
/// first must make the second stop showing the slot free within a second.
async fn a_booking_on_one_shows_on_the_others_cached_day(
    first: &Served,
    second: &Served,
    (doctor, branch): (i64, i64),
) {
    let (from, to) = two_weeks();
    let window = read_schedule(second, doctor, branch, &from, &to).await;
    let (day, start) = later_free_slots(&window)
        .into_iter()
        .next()
        .expect("a free slot more than two hours ahead");
    read_schedule(second, doctor, branch, &day, &day).await;
    let cached = read_schedule(second, doctor, branch, &day, &day).await;
    assert_eq!(
        cached["source"], "cache",
        "the day is cached on the second server: {cached}"
    );
    assert!(is_free(&cached, &start), "{start} is free: {cached}");

    let booked = browser()
        .post(first.url("/api/v1/specialist/anonymous-reserve"))
        .json(&anonymous_booking(doctor, branch, &start, "+79167770100"))
        .send()
        .await
        .expect("book");
    assert_eq!(
        booked.status(),
        StatusCode::CREATED,
        "booked on the first server"
    );
    let booked_at = Instant::now();
    let mut last = read_schedule(second, doctor, branch, &day, &day).await;
    while is_free(&last, &start) {
        assert!(
            booked_at.elapsed() < Duration::from_secs(1),
            "the slot {start}, booked on the first server, still shows free on the second \
             a second later: {last}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = read_schedule(second, doctor, branch, &day, &day).await;
    }
}

/// Fifty concurrent reads of one day nobody has read yet, twenty-five to each server, while
/// the MIS takes 300 ms to answer: one `SCHEDULE` call in all, and the same day for everyone.
async fn cold_reads_over_both_make_one_mis_call(
    first: &Served,
    second: &Served,
    emulators: &Emulators,
    (doctor, branch): (i64, i64),
) {
    // Past the one day the sync prefetched, and read by nobody yet.
    let day = (Utc::now().date_naive() + chrono::Duration::days(5)).to_string();
    let path = format!(
        "/api/v1/specialist/schedule?specialist_id={doctor}&branch_id={branch}&date_from={day}&date_to={day}"
    );
    emulators.control.set_mis_faults(MisFaults {
        latency_ms: 300,
        ..MisFaults::default()
    });
    let before = emulators.control.mis_calls("SCHEDULE");
    let start_together = Arc::new(tokio::sync::Barrier::new(50));
    let mut readers = tokio::task::JoinSet::new();
    for n in 0..50 {
        let url = if n % 2 == 0 {
            first.url(&path)
        } else {
            second.url(&path)
        };
        let start_together = start_together.clone();
        readers.spawn(async move {
            let client = browser();
            start_together.wait().await;
            let response = client.get(url).send().await.expect("read");
            (
                response.status(),
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        });
    }
    let mut days = Vec::new();
    while let Some(joined) = readers.join_next().await {
        let (status, body) = joined.expect("reader");
        assert_eq!(status, StatusCode::OK, "{body}");
        days.push(body["days"].clone());
    }
    let calls = emulators.control.mis_calls("SCHEDULE") - before;
    emulators.control.set_mis_faults(MisFaults::default());
    assert_eq!(
        calls, 1,
        "fifty cold reads of one doctor-day, twenty-five on each server, made {calls} MIS \
         SCHEDULE calls"
    );
    assert!(
        days.windows(2).all(|pair| pair[0] == pair[1]),
        "every reader got the same day"
    );
}
