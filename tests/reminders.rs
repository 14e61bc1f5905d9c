//! Reminders before visits (issue 11): one SMS a day ahead through the outbox, with the
//! doctor named «Врач: Фамилия И. О.», the clinic's phone and the manage link; none for a
//! cancelled visit (also one cancelled while its reminder waits) or one booked less than a
//! day ahead; a new one for a moved visit; and one only with two server processes on one
//! database.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sovamed::{
    db::models::user::Role,
    domain::clock::Clock,
    emulator::{EmulatorControl, Emulators, SmsFaults},
};

use crate::support::{
    TestApp, anonymous_booking, browser, count_rows, doctor_in, eventually, free_starts,
    served::{Served, production_env},
    sync_directories, with_emulators_and,
};

const PASSWORD: &str = "reminder passphrase 1";
const CLINIC_PHONE: &str = "+7 (343) 111-22-33";
/// The phone `TestApp::create_user` gives every account, as the gateway writes it.
const PATIENT_DIGITS: &str = "79001234567";

fn instant(start: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(start)
        .expect("an RFC 3339 start")
        .with_timezone(&Utc)
}

/// An app on a fixed clock, so that the time before a visit can be reached; its rounds are
/// run by the tests (`REMINDER_HOURS_BEFORE=0` in the test configuration keeps the
/// background round off).
async fn reminder_app() -> (TestApp, Emulators) {
    let (app, emulators) = with_emulators_and(|config| {
        config.clock = Clock::fixed(Utc::now());
        config.clinic_phone = CLINIC_PHONE.into();
    })
    .await;
    sync_directories(&app).await;
    (app, emulators)
}

/// Free starts of the doctor later than `after`, soonest first.
async fn starts_after(
    app: &TestApp,
    doctor: i64,
    branch: i64,
    after: DateTime<Utc>,
) -> Vec<String> {
    free_starts(app, doctor, branch)
        .await
        .into_iter()
        .filter(|start| instant(start) > after)
        .collect()
}

/// Books `start` through the API as the patient with `token`; the record's id.
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

async fn cancel(app: &TestApp, token: &str, id: i64) {
    let response = browser()
        .post(app.url(&format!("/api/v1/records/{id}/cancel")))
        .bearer_auth(token)
        .send()
        .await
        .expect("cancel");
    assert_eq!(response.status(), StatusCode::OK, "cancelled {id}");
}

async fn reminders_of(app: &TestApp, id: i64) -> i64 {
    app.count(&format!(
        "SELECT count(*) AS n FROM sms_outbox WHERE kind = 'reminder' AND record_id = {id}"
    ))
    .await
}

/// The reminders the gateway received for `digits`.
fn reminders_received(emulators: &Emulators, digits: &str) -> Vec<String> {
    emulators
        .control
        .sms_messages()
        .into_iter()
        .filter(|m| m.to == digits && m.text.contains("ждём вас"))
        .map(|m| m.text)
        .collect()
}

/// A patient with an account and an API token.
async fn patient(app: &TestApp, email: &str) -> String {
    app.create_user(email, PASSWORD, Role::Patient).await;
    app.api_token(email, PASSWORD).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_visit_booked_days_ahead_is_reminded_of_once_a_day_before_and_again_after_a_move() {
    let (app, emulators) = reminder_app().await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let token = patient(&app, "reminded@example.ru").await;
    let starts = starts_after(
        &app,
        doctor,
        branch,
        Utc::now() + chrono::Duration::hours(26),
    )
    .await;
    assert!(starts.len() >= 2, "two free slots more than a day ahead");
    let id = book(&app, &token, doctor, branch, &starts[0]).await;
    let booking = &app.state().booking;

    assert_eq!(
        booking.queue_reminders(24).await.expect("round"),
        0,
        "more than a day before the visit: not yet"
    );
    booking
        .clock
        .set(instant(&starts[0]) - chrono::Duration::hours(23));
    assert_eq!(booking.queue_reminders(24).await.expect("round"), 1);
    assert_eq!(
        booking.queue_reminders(24).await.expect("round"),
        0,
        "a visit is reminded of once"
    );
    assert_eq!(reminders_of(&app, id).await, 1);

    let control = emulators.control.clone();
    assert!(
        eventually(15, || !reminders_received(&emulators, PATIENT_DIGITS)
            .is_empty())
        .await,
        "the reminder reaches the gateway: {:?}",
        control.sms_messages()
    );
    let received = control
        .sms_messages()
        .into_iter()
        .find(|m| m.to == PATIENT_DIGITS && m.text.contains("ждём вас"))
        .expect("the reminder");
    let text = &received.text;
    assert!(text.contains("Врач: "), "{text}");
    assert!(!text.contains("к врачу"), "{text}");
    assert!(text.contains(CLINIC_PHONE), "{text}");
    assert!(
        text.contains(&format!("/cabinet/records/{id}")),
        "the manage link of an account holder: {text}"
    );
    assert!(received.parts <= 2, "two SMS parts at most: {text}");

    // Later rounds, closer to the visit, find nothing more.
    booking
        .clock
        .set(instant(&starts[0]) - chrono::Duration::hours(1));
    assert_eq!(booking.queue_reminders(24).await.expect("round"), 0);

    // Moved to another time: that time is reminded of too.
    let moved = browser()
        .post(app.url(&format!("/api/v1/records/{id}/reschedule")))
        .bearer_auth(&token)
        .json(&json!({"start": starts[1]}))
        .send()
        .await
        .expect("move");
    assert_eq!(moved.status(), StatusCode::OK);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM records WHERE id = {id} AND reminder_queued_at IS NULL"
        ))
        .await,
        1,
        "a new start clears the mark"
    );
    booking
        .clock
        .set(instant(&starts[1]) - chrono::Duration::hours(23));
    assert_eq!(booking.queue_reminders(24).await.expect("round"), 1);
    assert_eq!(reminders_of(&app, id).await, 2);
    assert!(
        eventually(15, || reminders_received(&emulators, PATIENT_DIGITS).len()
            == 2)
        .await,
        "the second reminder, for the new time"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_reminder_for_a_cancelled_visit_nor_one_booked_less_than_a_day_ahead() {
    let (app, emulators) = reminder_app().await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let token = patient(&app, "not-reminded@example.ru").await;
    let starts = starts_after(
        &app,
        doctor,
        branch,
        Utc::now() + chrono::Duration::hours(26),
    )
    .await;
    assert!(starts.len() >= 3, "three free slots more than a day ahead");
    let cancelled = book(&app, &token, doctor, branch, &starts[0]).await;
    let late = book(&app, &token, doctor, branch, &starts[1]).await;
    cancel(&app, &token, cancelled).await;
    // As if booked 23 hours before its start.
    app.count(&format!(
        "WITH u AS (UPDATE records SET scheduled_at = starts_at - interval '23 hours', \
         created_at = starts_at - interval '23 hours' WHERE id = {late} RETURNING 1) \
         SELECT count(*) AS n FROM u"
    ))
    .await;
    let booking = &app.state().booking;
    for start in &starts[..2] {
        booking
            .clock
            .set(instant(start) - chrono::Duration::hours(23));
        assert_eq!(
            booking.queue_reminders(24).await.expect("round"),
            0,
            "nothing due at {start}"
        );
    }
    assert_eq!(reminders_of(&app, cancelled).await, 0);
    assert_eq!(reminders_of(&app, late).await, 0);

    // Cancelled while its reminder waits for a gateway that is down: it is never sent.
    // (Booked only now, so that the rounds above had nothing of it to remind of.)
    let waiting = book(&app, &token, doctor, branch, &starts[2]).await;
    emulators.control.set_sms_faults(SmsFaults {
        down: true,
        ..SmsFaults::default()
    });
    booking
        .clock
        .set(instant(&starts[2]) - chrono::Duration::hours(23));
    assert_eq!(booking.queue_reminders(24).await.expect("round"), 1);
    let database_url = app.config.database_url.clone();
    let tried = format!(
        "SELECT count(*) AS n FROM sms_outbox WHERE kind = 'reminder' AND record_id = {waiting} \
         AND attempts > 0"
    );
    let mut attempted = false;
    for _ in 0..100 {
        if count_rows(&database_url, &tried).await > 0 {
            attempted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        attempted,
        "the worker tried the reminder while the gateway was down"
    );
    cancel(&app, &token, waiting).await;
    let mut gone = false;
    for _ in 0..100 {
        if reminders_of(&app, waiting).await == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the waiting reminder of a cancelled visit is dropped");
    emulators.control.set_sms_faults(SmsFaults::default());
    assert!(
        eventually(30, || emulators
            .control
            .sms_messages()
            .iter()
            .filter(|m| m.to == PATIENT_DIGITS && m.text.contains("отменена"))
            .count()
            == 2)
        .await,
        "the second cancel SMS goes out once the gateway is back"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        reminders_received(&emulators, PATIENT_DIGITS).is_empty(),
        "no reminder of a cancelled visit: {:?}",
        emulators.control.sms_messages()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_visitor_without_an_account_gets_a_reminder_with_a_working_visit_link() {
    let (app, emulators) = reminder_app().await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let starts = starts_after(
        &app,
        doctor,
        branch,
        Utc::now() + chrono::Duration::hours(26),
    )
    .await;
    let phone = "+79165550412";
    let response = browser()
        .post(app.url("/api/v1/specialist/anonymous-reserve"))
        .json(&anonymous_booking(doctor, branch, &starts[0], phone))
        .send()
        .await
        .expect("book");
    assert_eq!(response.status(), StatusCode::CREATED);
    let booking = &app.state().booking;
    booking
        .clock
        .set(instant(&starts[0]) - chrono::Duration::hours(23));
    assert_eq!(booking.queue_reminders(24).await.expect("round"), 1);
    let digits = phone.trim_start_matches('+');
    assert!(
        eventually(15, || !reminders_received(&emulators, digits).is_empty()).await,
        "the reminder reaches the gateway"
    );
    let text = reminders_received(&emulators, digits).remove(0);
    assert!(text.contains(CLINIC_PHONE), "{text}");
    let token: String = text
        .split("/v/")
        .nth(1)
        .expect("the reminder carries a visit link")
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let page = browser()
        .get(app.url(&format!("/v/{token}")))
        .send()
        .await
        .expect("visit page");
    assert_eq!(
        page.status(),
        StatusCode::OK,
        "the reminder's link opens the visit"
    );
}

/// Two `sovamed serve` processes on one database and one Redis, each looking for due
/// reminders every second: the visit gets one reminder, not two.
#[tokio::test(flavor = "multi_thread")]
async fn two_server_processes_send_one_reminder() {
    let (_app, emulators) = with_emulators_and(|_| {}).await;
    let mut env = production_env(&emulators).await;
    env.extend([
        ("RUST_LOG", "info".to_owned()),
        ("REMINDER_HOURS_BEFORE", "72".to_owned()),
        ("REMINDER_INTERVAL_SECONDS", "1".to_owned()),
        ("ANONYMOUS_BOOKING_VERIFY", "off".to_owned()),
        // The search for a free slot reads many doctors' schedules from one address.
        ("SCHEDULE_UNCACHED_READS_PER_IP_MINUTE", "100000".to_owned()),
    ]);
    let database_url = env
        .iter()
        .find(|(name, _)| *name == "DATABASE_URL")
        .map(|(_, url)| url.clone())
        .expect("database");
    let first = Served::start(&env);
    let client = browser();
    // The periodic sync runs at start: wait for the doctors, then for a slot within 70 hours.
    let mut found = None;
    for _ in 0..300 {
        let doctors: Value = client
            .get(first.url("/api/v1/specialists?per_page=200"))
            .send()
            .await
            .expect("specialists")
            .json()
            .await
            .expect("json");
        let now = Utc::now();
        for doctor in doctors["items"].as_array().cloned().unwrap_or_default() {
            let (Some(doctor_id), Some(branch_id)) =
                (doctor["id"].as_i64(), doctor["branches"][0]["id"].as_i64())
            else {
                continue;
            };
            let schedule: Value = client
                .get(first.url(&format!(
                    "/api/v1/specialist/schedule?specialist_id={doctor_id}&branch_id={branch_id}&date_from={}&date_to={}",
                    now.date_naive(),
                    now.date_naive() + chrono::Duration::days(3)
                )))
                .send()
                .await
                .expect("schedule")
                .json()
                .await
                .unwrap_or(Value::Null);
            let start = schedule["days"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .flat_map(|d| d["slots"].as_array().cloned().unwrap_or_default())
                .filter(|s| s["free"] == true)
                .filter_map(|s| s["start"].as_str().map(str::to_owned))
                .find(|s| {
                    let at = instant(s);
                    at > now + chrono::Duration::hours(1) && at < now + chrono::Duration::hours(70)
                });
            if let Some(start) = start {
                found = Some((doctor_id, branch_id, start));
                break;
            }
        }
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (doctor_id, branch_id, start) = found.expect("a free slot within 70 hours");
    let phone = "+79165550433";
    let booked = client
        .post(first.url("/api/v1/specialist/anonymous-reserve"))
        .json(&anonymous_booking(doctor_id, branch_id, &start, phone))
        .send()
        .await
        .expect("book");
    assert_eq!(booked.status(), StatusCode::CREATED, "{}", first.log());
    let record: Value = booked.json().await.expect("json");
    let record_id = record["id"].as_i64().expect("record id");
    let digits = phone.trim_start_matches('+').to_owned();
    let control = emulators.control.clone();
    assert!(
        eventually(15, || control
            .sms_messages()
            .iter()
            .any(|m| m.to == digits && m.text.contains("вы записаны")))
        .await,
        "the booking SMS"
    );

    let second = Served::start(&env);
    // Booked three days before its start, as far as the reminders can tell: due now, on
    // both servers at once.
    count_rows(
        &database_url,
        &format!(
            "WITH u AS (UPDATE records SET scheduled_at = starts_at - interval '73 hours' \
             WHERE id = {record_id} RETURNING 1) SELECT count(*) AS n FROM u"
        ),
    )
    .await;
    let reminders = |control: &EmulatorControl| {
        control
            .sms_messages()
            .iter()
            .filter(|m| m.to == digits && m.text.contains("ждём вас"))
            .count()
    };
    assert!(
        eventually(20, || reminders(&control) >= 1).await,
        "a reminder: {}\n{}",
        first.log(),
        second.log()
    );
    // Several more rounds of both servers.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(reminders(&control), 1, "one reminder, not one per server");
    assert_eq!(
        count_rows(
            &database_url,
            &format!(
                "SELECT count(*) AS n FROM sms_outbox WHERE kind = 'reminder' AND record_id = {record_id}"
            ),
        )
        .await,
        1
    );
}
