//! Booking end to end: the real server, PostgreSQL, Redis, and the MIS and SMS emulators.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sovamed::{
    db::models::user::Role,
    emulator::{MisFaults, SmsFaults},
};

use crate::support::{
    TestApp, anonymous_booking, browser, doctor_in, eventually, first_free_start, free_starts,
    schedule, sync_directories, with_emulators, with_emulators_and,
};

async fn post_json(
    app: &TestApp,
    path: &str,
    body: &Value,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = browser().post(app.url(path)).json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_bookings_of_one_slot_have_exactly_one_winner() {
    let (app, emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let start = first_free_start(&app, doctor, branch).await;
    let before = emulators.control.appointment_count();
    emulators.control.set_mis_faults(MisFaults {
        reserve_latency_ms: 50,
        ..MisFaults::default()
    });

    let mut racers = tokio::task::JoinSet::new();
    for n in 0..20 {
        let (url, body) = (
            app.url("/api/v1/specialist/anonymous-reserve"),
            anonymous_booking(doctor, branch, &start, &format!("+7916555{n:04}")),
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
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        });
    }
    let mut created = 0;
    let mut taken = 0;
    while let Some(result) = racers.join_next().await {
        let (status, body) = result.expect("task");
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                assert_eq!(body["error"]["code"], "slot_taken", "{body}");
                taken += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((created, taken), (1, 19));
    assert_eq!(
        emulators.control.appointment_count(),
        before + 1,
        "one reservation in the MIS"
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM records").await, 1);
    assert!(
        eventually(10, || emulators.control.sms_count() == 1).await,
        "one SMS"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(emulators.control.sms_count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_waits_for_the_first_answer_and_a_dropped_request_still_books() {
    let (app, emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let starts = free_starts(&app, doctor, branch).await;
    emulators.control.set_mis_faults(MisFaults {
        reserve_latency_ms: 1_500,
        ..MisFaults::default()
    });
    let before = emulators.control.appointment_count();
    let url = app.url("/api/v1/specialist/anonymous-reserve");

    // While the first request with a key runs, a retry waits for its answer: the same
    // record, never `slot_taken` for its own booking and never a second booking.
    let body = anonymous_booking(doctor, branch, &starts[0], "+79165550031");
    let first = tokio::spawn({
        let (url, body) = (url.clone(), body.clone());
        async move {
            let response = browser()
                .post(url)
                .header("idempotency-key", "key-running")
                .json(&body)
                .send()
                .await
                .expect("first");
            (
                response.status(),
                response.json::<Value>().await.expect("json"),
            )
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let (status, retried) = post_json(
        &app,
        "/api/v1/specialist/anonymous-reserve",
        &body,
        Some("key-running"),
    )
    .await;
    let (first_status, first_answer) = first.await.expect("join");
    assert_eq!(first_status, StatusCode::CREATED, "{first_answer}");
    assert_eq!(status, StatusCode::CREATED, "{retried}");
    assert_eq!(retried, first_answer, "the first answer, again");

    // A request whose client hangs up mid-booking still books (the MIS and the record,
    // one SMS), and its retry gets that booking.
    let body = anonymous_booking(doctor, branch, &starts[1], "+79165550032");
    let dropped = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(400))
        .build()
        .expect("client")
        .post(&url)
        .header("idempotency-key", "key-dropped")
        .json(&body)
        .send()
        .await;
    assert!(dropped.is_err(), "the client gave up");
    let (status, answer) = post_json(
        &app,
        "/api/v1/specialist/anonymous-reserve",
        &body,
        Some("key-dropped"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["start"], starts[1]);
    assert_eq!(emulators.control.appointment_count(), before + 2);
    assert_eq!(app.count("SELECT count(*) AS n FROM records").await, 2);
    assert_eq!(app.count("SELECT count(*) AS n FROM sms_outbox").await, 2);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM booking_intents WHERE state = 'done'")
            .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_idempotency_key_books_once_and_returns_the_first_answer() {
    let (app, emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let start = first_free_start(&app, doctor, branch).await;
    let body = anonymous_booking(doctor, branch, &start, "+79165550001");
    let before = emulators.control.appointment_count();
    let (first_status, first) = post_json(
        &app,
        "/api/v1/specialist/anonymous-reserve",
        &body,
        Some("key-1"),
    )
    .await;
    let (second_status, second) = post_json(
        &app,
        "/api/v1/specialist/anonymous-reserve",
        &body,
        Some("key-1"),
    )
    .await;
    assert_eq!(first_status, StatusCode::CREATED, "{first}");
    assert_eq!(second_status, StatusCode::CREATED);
    assert_eq!(first, second, "the same answer");
    assert_eq!(emulators.control.appointment_count(), before + 1);
    assert_eq!(app.count("SELECT count(*) AS n FROM records").await, 1);
    // The same caller's key with another body is refused.
    let mut changed = body.clone();
    changed["comment"] = serde_json::json!("Другой комментарий");
    let (status, refused) = post_json(
        &app,
        "/api/v1/specialist/anonymous-reserve",
        &changed,
        Some("key-1"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused["error"]["fields"]["Idempotency-Key"].is_string());
    // Another caller's identical key is theirs alone: no clash, no replay of the first answer.
    let next = free_starts(&app, doctor, branch)
        .await
        .into_iter()
        .next()
        .expect("another free slot");
    let other = anonymous_booking(doctor, branch, &next, "+79165550002");
    let (status, own) = post_json(
        &app,
        "/api/v1/specialist/anonymous-reserve",
        &other,
        Some("key-1"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{own}");
    assert_ne!(
        own["id"], first["id"],
        "its own booking, not the first answer"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mis_outage_is_a_503_with_no_record_and_no_sms() {
    let (app, emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let start = first_free_start(&app, doctor, branch).await;
    emulators.control.set_mis_faults(MisFaults {
        http_500: true,
        ..MisFaults::default()
    });
    let (status, body) = post_json(
        &app,
        "/api/v1/specialist/anonymous-reserve",
        &anonymous_booking(doctor, branch, &start, "+79165550003"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "mis_unavailable");
    assert_eq!(app.count("SELECT count(*) AS n FROM records").await, 0);
    assert_eq!(app.count("SELECT count(*) AS n FROM sms_outbox").await, 0);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(emulators.control.sms_count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_local_write_cancels_the_mis_booking_again() {
    let (app, emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let start = first_free_start(&app, doctor, branch).await;
    // The write fails after a while, so the day can be read (and cached) meanwhile, when the
    // MIS holds the booking.
    crate::support::refuse_writes_after(&app, "INSERT", "records", 2000).await;
    let before = emulators.control.appointment_count();
    let booking = anonymous_booking(doctor, branch, &start, "+79165550004");
    let ((status, body), taken_meanwhile) = tokio::join!(
        post_json(&app, "/api/v1/specialist/anonymous-reserve", &booking, None,),
        async {
            for _ in 0..250 {
                if emulators.control.appointment_count() > before {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            !free_starts(&app, doctor, branch).await.contains(&start)
        },
    );
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(taken_meanwhile, "read while the MIS held the booking");
    assert_eq!(
        emulators.control.appointment_count(),
        before,
        "the MIS booking was cancelled again"
    );
    assert_eq!(emulators.control.mis_calls("SCHEDULE_REC_REMOVE"), 1);
    assert_eq!(app.count("SELECT count(*) AS n FROM sms_outbox").await, 0);
    // The slot is free again for the next patient, although the day was cached while taken.
    assert!(free_starts(&app, doctor, branch).await.contains(&start));
}

/// A server whose PostgreSQL is reached through a [`CutProxy`](crate::support::cut_proxy::CutProxy), the directories synced, and
/// a doctor with a branch.
async fn proxied_app() -> (
    TestApp,
    sovamed::emulator::Emulators,
    std::sync::Arc<crate::support::cut_proxy::CutProxy>,
    i64,
    i64,
) {
    use crate::support::cut_proxy::CutProxy;

    let proxy = CutProxy::start("127.0.0.1:5432".parse().expect("addr")).await;
    let through = proxy.clone();
    let (app, emulators) = with_emulators_and(move |config| {
        config.database_url = through.url_for(&config.database_url);
    })
    .await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    (app, emulators, proxy, doctor, branch)
}

/// The record's statement commits and its answer is lost with the connection: the booking
/// is asked for again on another connection, found written, and kept (answered 201), not
/// cancelled in the MIS as a failed write would be.
#[tokio::test(flavor = "multi_thread")]
async fn a_record_whose_answer_is_lost_after_the_commit_is_kept() {
    let (app, emulators, proxy, doctor, branch) = proxied_app().await;
    let start = first_free_start(&app, doctor, branch).await;
    let address = crate::support::branches(&app).await["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|b| b["id"] == branch)
        .and_then(|b| b["address"].as_str())
        .expect("the branch's address")
        .to_owned();
    let comment = "Связь оборвётся после записи";
    let mut booking = anonymous_booking(doctor, branch, &start, "+79165550005");
    booking["comment"] = json!(comment);
    // Only the record's statement answers with both the comment and the branch's address.
    proxy.cut_when_all(&[comment.as_bytes(), address.as_bytes()]);
    let before = emulators.control.appointment_count();
    let (status, body) =
        post_json(&app, "/api/v1/specialist/anonymous-reserve", &booking, None).await;
    assert_eq!(proxy.cuts(), 1, "the record's answer was lost");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_i64().expect("id");
    assert_eq!(emulators.control.appointment_count(), before + 1);
    assert_eq!(emulators.control.mis_calls("SCHEDULE_REC_REMOVE"), 0);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM records WHERE id = {id} AND status = 'booked' \
             AND mis_id = {}",
            body["mis_id"]
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM sms_outbox WHERE record_id = {id}"
        ))
        .await,
        1,
        "one booking SMS"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM booking_intents WHERE state = 'done'")
            .await,
        1
    );

    // The next one's answer is lost and PostgreSQL is then out of reach: nobody can tell
    // whether it was written, so the MIS booking stays (503, completed later), and once
    // PostgreSQL is back the record is there.
    let second = free_starts(&app, doctor, branch)
        .await
        .into_iter()
        .find(|s| *s != start)
        .expect("another free slot");
    let mut booking = anonymous_booking(doctor, branch, &second, "+79165550006");
    booking["comment"] = json!(comment);
    proxy.cut_when_all_then_down(&[comment.as_bytes(), address.as_bytes()]);
    let (status, body) =
        post_json(&app, "/api/v1/specialist/anonymous-reserve", &booking, None).await;
    assert_eq!(proxy.cuts(), 2);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("будет сохранено автоматически")),
        "{body}"
    );
    assert_eq!(emulators.control.appointment_count(), before + 2);
    assert_eq!(emulators.control.mis_calls("SCHEDULE_REC_REMOVE"), 0);
    proxy.up();
    assert_eq!(
        app.count("SELECT count(*) AS n FROM records WHERE status = 'booked'")
            .await,
        2,
        "both written, as the MIS holds both"
    );
}

/// A patient's visit booked through the API (with `comment`) on a server whose PostgreSQL
/// is reached through a [`CutProxy`](crate::support::cut_proxy::CutProxy).
struct ProxiedVisit {
    app: TestApp,
    emulators: sovamed::emulator::Emulators,
    proxy: std::sync::Arc<crate::support::cut_proxy::CutProxy>,
    token: String,
    doctor: i64,
    branch: i64,
    /// The doctor's free starts before the booking; the visit has the first.
    starts: Vec<String>,
    id: i64,
    schedid: i64,
}

async fn proxied_visit(comment: &str) -> ProxiedVisit {
    let (app, emulators, proxy, doctor, branch) = proxied_app().await;
    let starts = free_starts(&app, doctor, branch).await;
    let (_, token) = patient_with_token(&app, "lost-commit@example.ru").await;
    let created: Value = browser()
        .post(app.url("/api/v1/records"))
        .bearer_auth(&token)
        .json(&json!({"specialist_id": doctor, "branch_id": branch, "start": starts[0], "comment": comment}))
        .send()
        .await
        .expect("book")
        .json()
        .await
        .expect("json");
    ProxiedVisit {
        id: created["id"].as_i64().expect("id"),
        schedid: created["mis_id"].as_i64().expect("mis id"),
        app,
        emulators,
        proxy,
        token,
        doctor,
        branch,
        starts,
    }
}

/// An RFC 3339 instant of an answer or of `free_starts`.
fn instant(text: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(text).expect("an RFC 3339 instant")
}

impl ProxiedVisit {
    /// `POST /api/v1/records/{id}/reschedule` (or `…/cancel` without a start) by the patient.
    async fn change(&self, start: Option<&str>) -> (StatusCode, Value) {
        let request = match start {
            Some(start) => browser()
                .post(
                    self.app
                        .url(&format!("/api/v1/records/{}/reschedule", self.id)),
                )
                .json(&json!({ "start": start })),
            None => browser().post(self.app.url(&format!("/api/v1/records/{}/cancel", self.id))),
        };
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("change");
        let status = response.status();
        (status, response.json().await.expect("json"))
    }

    /// When the record starts now, as the API shows it.
    async fn start(&self) -> chrono::DateTime<chrono::FixedOffset> {
        let record: Value = browser()
            .get(self.app.url(&format!("/api/v1/records/{}", self.id)))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("record")
            .json()
            .await
            .expect("json");
        instant(record["start"].as_str().expect("start"))
    }

    fn reserves(&self) -> u64 {
        self.emulators.control.mis_calls("SCHEDULE_REC_RESERVE")
    }
}

/// A move commits, its `COMMIT` answer is lost, and PostgreSQL is then out of reach, so
/// nobody can tell whether it was written: the MIS keeps the new time (not moved back), the
/// answer is 503 «…будет сохранено автоматически», and once PostgreSQL is back the record
/// has the new time, as the MIS.
#[tokio::test(flavor = "multi_thread")]
async fn a_move_whose_outcome_nobody_can_tell_keeps_the_mis_side() {
    let comment = "После COMMIT база недоступна";
    let visit = proxied_visit(comment).await;
    let reserves = visit.reserves();
    visit
        .proxy
        .cut_commit_after_then_down(&[comment.as_bytes(), b"UPDATE 1"]);
    let (status, answer) = visit.change(Some(&visit.starts[3])).await;
    assert_eq!(visit.proxy.cuts(), 1, "the move's commit answer was lost");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("будет сохранено автоматически")),
        "{answer}"
    );
    assert_eq!(visit.reserves(), reserves + 1, "not moved back in the MIS");
    let target = instant(&visit.starts[3]);
    assert!(
        visit
            .emulators
            .control
            .appointments()
            .iter()
            .any(|a| a.schedid == visit.schedid
                && a.date == target.date_naive()
                && a.start == target.time()),
        "the MIS holds the new time"
    );
    visit.proxy.up();
    assert_eq!(visit.start().await, target, "the record moved, as the MIS");
}

/// A move's and then a cancel's transaction commit and the answers to their `COMMIT`s are
/// lost with the connection: each is asked for again on another connection and found done
/// (200), not moved back in the MIS or left to be completed later. Before them, a move whose
/// connection breaks before its `COMMIT` was not written, and is moved back in the MIS (503).
#[tokio::test(flavor = "multi_thread")]
async fn a_move_and_a_cancel_whose_commit_answers_are_lost_are_kept() {
    let comment = "Ответ на COMMIT потеряется";
    let visit = proxied_visit(comment).await;
    // The record's update answers with the comment in its row and "UPDATE 1".
    let update: [&[u8]; 2] = [comment.as_bytes(), b"UPDATE 1"];

    // Lost there, the transaction never commits: found not done, and undone in the MIS.
    let reserves = visit.reserves();
    visit.proxy.cut_when_all(&update);
    let (status, answer) = visit.change(Some(&visit.starts[2])).await;
    assert_eq!(visit.proxy.cuts(), 1, "the update's answer was lost");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(
        visit.reserves(),
        reserves + 2,
        "moved and moved back in the MIS"
    );
    assert_eq!(
        visit.start().await,
        instant(&visit.starts[0]),
        "the record kept its time"
    );

    let reserves = visit.reserves();
    visit.proxy.cut_commit_after(&update);
    let (status, moved) = visit.change(Some(&visit.starts[3])).await;
    assert_eq!(visit.proxy.cuts(), 2, "the move's commit answer was lost");
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(
        instant(moved["start"].as_str().expect("start")),
        instant(&visit.starts[3])
    );
    assert_eq!(visit.reserves(), reserves + 1, "not moved back in the MIS");
    assert!(
        !free_starts(&visit.app, visit.doctor, visit.branch)
            .await
            .contains(&visit.starts[3]),
        "the new time is taken"
    );

    visit.proxy.cut_commit_after(&update);
    let (status, cancelled) = visit.change(None).await;
    assert_eq!(visit.proxy.cuts(), 3, "the cancel's commit answer was lost");
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert!(
        visit
            .emulators
            .control
            .appointments()
            .iter()
            .all(|a| a.schedid != visit.schedid),
        "the MIS no longer holds it"
    );
    let count = |sql: &'static str| visit.app.count(sql);
    assert_eq!(
        count("SELECT count(*) AS n FROM booking_intents WHERE state = 'done'").await,
        3,
        "book, move, cancel: each done once"
    );
    assert_eq!(
        count("SELECT count(*) AS n FROM booking_intents WHERE state = 'failed'").await,
        1,
        "the move that was not written"
    );
    assert_eq!(
        visit
            .app
            .count(&format!(
                "SELECT count(*) AS n FROM sms_outbox WHERE record_id = {}",
                visit.id
            ))
            .await,
        3
    );
}

/// A booking never trusts the directory in memory: a doctor deactivated after the snapshot
/// was built is refused, without asking the MIS, although the snapshot still holds them.
#[tokio::test(flavor = "multi_thread")]
async fn a_doctor_deactivated_after_the_snapshot_was_built_is_not_booked() {
    let (app, emulators) = with_emulators().await;
    sync_directories(&app).await;
    app.reload_directory().await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let start = first_free_start(&app, doctor, branch).await;
    // In PostgreSQL only.
    app.execute(&format!(
        "UPDATE specialists SET active = false WHERE id = {doctor}"
    ))
    .await;
    assert!(
        app.state().booking.directory.snapshot().doctors() > 0,
        "the snapshot was built"
    );
    let (status, body) = post_json(
        &app,
        "/api/v1/specialist/anonymous-reserve",
        &anonymous_booking(doctor, branch, &start, "+79165550012"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(emulators.control.mis_calls("CLIENT_ADD"), 0);
    assert_eq!(emulators.control.mis_calls("SCHEDULE_REC_RESERVE"), 0);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM booking_intents").await,
        0
    );
}

/// The record, its SMS, its audit row and the intent's `done` are one write: an SMS row
/// PostgreSQL refuses leaves no record behind (and the MIS booking is cancelled again), never
/// a booking whose patient is not told.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_booking_sms_leaves_no_record_behind() {
    let (app, emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let start = first_free_start(&app, doctor, branch).await;
    crate::support::refuse_writes(&app, "INSERT", "sms_outbox").await;
    let before = emulators.control.appointment_count();
    let (status, body) = post_json(
        &app,
        "/api/v1/specialist/anonymous-reserve",
        &anonymous_booking(doctor, branch, &start, "+79165550011"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(emulators.control.appointment_count(), before);
    assert_eq!(app.count("SELECT count(*) AS n FROM records").await, 0);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM audit_events WHERE action = 'record_booked'")
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM booking_intents WHERE state = 'failed'")
            .await,
        1
    );
}

/// The record's id is taken from its sequence while the MIS books; when PostgreSQL cannot
/// give one (here the sequence is at its maximum), nothing is written and the MIS booking is
/// cancelled again, as for any failed local write.
#[tokio::test(flavor = "multi_thread")]
async fn no_record_id_cancels_the_mis_booking_again() {
    let (app, emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let start = first_free_start(&app, doctor, branch).await;
    // The records' sequence at its maximum.
    app.execute(
        "SELECT setval(pg_get_serial_sequence('records', 'id'), 9000, true); \
         ALTER TABLE records ALTER COLUMN id SET MAXVALUE 9000",
    )
    .await;
    let before = emulators.control.appointment_count();
    let (status, body) = post_json(
        &app,
        "/api/v1/specialist/anonymous-reserve",
        &anonymous_booking(doctor, branch, &start, "+79165550010"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(emulators.control.mis_calls("SCHEDULE_REC_RESERVE"), 1);
    assert_eq!(
        emulators.control.appointment_count(),
        before,
        "the MIS booking was cancelled again"
    );
    assert_eq!(emulators.control.mis_calls("SCHEDULE_REC_REMOVE"), 1);
    assert_eq!(app.count("SELECT count(*) AS n FROM records").await, 0);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM booking_intents WHERE state = 'failed'")
            .await,
        1
    );
    assert!(free_starts(&app, doctor, branch).await.contains(&start));
}

/// A visitor's new card that cannot be written into the booking's intent stops the booking
/// before the MIS is asked for the appointment: an intent without a card must mean "never
/// booked in the MIS", which is how the reconciler reads it.
#[tokio::test(flavor = "multi_thread")]
async fn a_card_not_noted_in_the_intent_stops_the_booking_before_the_mis_books() {
    let (app, emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let start = first_free_start(&app, doctor, branch).await;
    // Intents are inserted, never updated, until the card is noted.
    crate::support::refuse_writes(&app, "UPDATE", "booking_intents").await;
    let before = emulators.control.appointment_count();
    let (status, body) = post_json(
        &app,
        "/api/v1/specialist/anonymous-reserve",
        &anonymous_booking(doctor, branch, &start, "+79165550009"),
        None,
    )
    .await;
    // A write PostgreSQL refuses is a 500 by the error policy (only a lost connection is a
    // 503); what matters here is that nothing was booked.
    assert!(status.is_server_error(), "{status} {body}");
    assert_eq!(emulators.control.mis_calls("CLIENT_ADD"), 1);
    assert_eq!(emulators.control.mis_calls("SCHEDULE_REC_RESERVE"), 0);
    assert_eq!(emulators.control.appointment_count(), before);
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM booking_intents WHERE pcode IS NULL AND state = 'pending'"
        )
        .await,
        1,
        "left for the reconciler, which fails it without asking the MIS"
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM records").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sms_outage_delays_the_message_but_loses_nothing_across_a_restart() {
    let (mut app, emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let start = first_free_start(&app, doctor, branch).await;
    emulators.control.set_sms_faults(SmsFaults {
        down: true,
        ..SmsFaults::default()
    });
    let (status, body) = post_json(
        &app,
        "/api/v1/specialist/anonymous-reserve",
        &anonymous_booking(doctor, branch, &start, "+79165550005"),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the booking does not wait for the gateway: {body}"
    );
    let attempted = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let n = app.count("SELECT count(*) AS n FROM sms_outbox WHERE attempts > 0 AND last_error IS NOT NULL").await;
            if n > 0 || std::time::Instant::now() > deadline {
                break n;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    assert_eq!(attempted, 1, "the worker tried and recorded the error");
    assert_eq!(emulators.control.sms_count(), 0);

    app.restart().await;
    emulators.control.set_sms_faults(SmsFaults::default());
    assert!(
        eventually(15, || emulators.control.sms_count() == 1).await,
        "sent after the gateway came back"
    );
    assert!(
        emulators.control.sms_messages()[0]
            .text
            .contains("вы записаны")
    );
    // The worker marks the row right after the gateway accepted it.
    let mut sent = 0;
    for _ in 0..50 {
        sent = app
            .count("SELECT count(*) AS n FROM sms_outbox WHERE status = 'sent'")
            .await;
        if sent == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(sent, 1, "the outbox row is marked sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_before_any_mis_or_sms_call() {
    let (app, emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let start = first_free_start(&app, doctor, branch).await;
    let (other_branch_doctor, _) = {
        let (_, all) = (
            0,
            browser()
                .get(app.url("/api/v1/specialists"))
                .send()
                .await
                .expect("list")
                .json::<Value>()
                .await
                .expect("json"),
        );
        let id = all["items"]
            .as_array()
            .expect("array")
            .iter()
            .find(|s| {
                !s["branches"]
                    .as_array()
                    .expect("branches")
                    .iter()
                    .any(|b| b["id"] == branch)
            })
            .map(|s| s["id"].as_i64().expect("id"))
            .expect("a doctor elsewhere");
        (id, 0)
    };
    emulators.control.reset_mis_calls();
    let past = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    let off_grid = start
        .replace(":00:00", ":07:00")
        .replace(":30:00", ":37:00");
    let cases: Vec<(Value, &str)> = vec![
        (
            anonymous_booking(doctor, branch, &start, "abc"),
            "patient.phone",
        ),
        (
            anonymous_booking(doctor, branch, &start, &"1".repeat(1000)),
            "patient.phone",
        ),
        (
            anonymous_booking(doctor, branch, &start, "٠١٢٣٤٥٦٧٨٩"),
            "patient.phone",
        ),
        (
            anonymous_booking(doctor, branch, &past, "+79165550006"),
            "start",
        ),
        (
            anonymous_booking(doctor, branch, "tomorrow", "+79165550006"),
            "start",
        ),
        (
            anonymous_booking(doctor, branch, &off_grid, "+79165550006"),
            "start",
        ),
        (
            anonymous_booking(other_branch_doctor, branch, &start, "+79165550006"),
            "branch_id",
        ),
        (
            anonymous_booking(999_999, branch, &start, "+79165550006"),
            "specialist_id",
        ),
        (
            anonymous_booking(doctor, 999_999, &start, "+79165550006"),
            "branch_id",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) =
            post_json(&app, "/api/v1/specialist/anonymous-reserve", &body, None).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {answer}"
        );
        assert!(
            answer["error"]["fields"][field].is_string(),
            "{field}: {answer}"
        );
    }
    let mut empty_name = anonymous_booking(doctor, branch, &start, "+79165550006");
    empty_name["patient"]["last_name"] = json!("  ");
    let (status, answer) = post_json(
        &app,
        "/api/v1/specialist/anonymous-reserve",
        &empty_name,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer["error"]["fields"]["patient.last_name"].is_string());
    let mut extra = anonymous_booking(doctor, branch, &start, "+79165550006");
    extra["status"] = json!("visited");
    assert_eq!(
        post_json(&app, "/api/v1/specialist/anonymous-reserve", &extra, None)
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    for op in [
        "SCHEDULE_REC_RESERVE",
        "CLIENT_ADD",
        "CLIENT_CHECK",
        "SCHEDULE_REC_REMOVE",
    ] {
        assert_eq!(emulators.control.mis_calls(op), 0, "{op}");
    }
    assert_eq!(emulators.control.sms_count(), 0);
    assert_eq!(app.count("SELECT count(*) AS n FROM records").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_booking_is_limited_per_phone() {
    let (app, _emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let starts = free_starts(&app, doctor, branch).await;
    let mut statuses = Vec::new();
    for start in starts.iter().take(4) {
        let (status, _) = post_json(
            &app,
            "/api/v1/specialist/anonymous-reserve",
            &anonymous_booking(doctor, branch, start, "+79165550007"),
            None,
        )
        .await;
        statuses.push(status.as_u16());
    }
    assert_eq!(statuses, [201, 201, 201, 429], "three per phone per hour");
    // The refused attempt took the slot's lock alongside the limits and gave it back: the
    // slot is booked by another phone at once, not refused as taken for the lock's 30 s.
    let (status, body) = post_json(
        &app,
        "/api/v1/specialist/anonymous-reserve",
        &anonymous_booking(doctor, branch, &starts[3], "+79165550008"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn visitors_booking_cold_days_at_once_do_not_starve_a_small_pool() {
    // A visitor's checks may have to fetch the slot's day from the MIS and store it, which
    // takes a pool connection: a request that held another one meanwhile starved the pool,
    // and every booking waited out the pool's timeout and got 503.
    let (app, _emulators) = with_emulators_and(|config| config.database_pool_size = 2).await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let mut by_day: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for start in free_starts(&app, doctor, branch).await {
        by_day
            .entry(start[..10].to_owned())
            .or_default()
            .push(start);
    }
    let pairs: Vec<(String, String)> = by_day
        .into_values()
        .filter(|starts| starts.len() >= 2)
        .take(4)
        .map(|starts| (starts[0].clone(), starts[1].clone()))
        .collect();
    assert!(pairs.len() >= 3, "days with two free starts: {pairs:?}");
    // One booking on each day drops that day from the cache...
    for (i, (first, _)) in pairs.iter().enumerate() {
        let phone = format!("+7916555012{i}");
        let body = anonymous_booking(doctor, branch, first, &phone);
        let (status, answer) =
            post_json(&app, "/api/v1/specialist/anonymous-reserve", &body, None).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    // ...so these, all at once, each read a cold day.
    let second = pairs.iter().enumerate().map(|(i, (_, second))| {
        let body = anonymous_booking(doctor, branch, second, &format!("+7916555013{i}"));
        let app = &app;
        async move { post_json(app, "/api/v1/specialist/anonymous-reserve", &body, None).await }
    });
    for (status, answer) in futures_util::future::join_all(second).await {
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
}

async fn patient_with_token(app: &TestApp, email: &str) -> (i64, String) {
    let user = app
        .create_user(email, "patient passphrase 1", Role::Patient)
        .await;
    (user.id, app.api_token(email, "patient passphrase 1").await)
}

#[tokio::test(flavor = "multi_thread")]
async fn patients_see_only_their_own_records_and_staff_see_all() {
    let (app, _emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let starts = free_starts(&app, doctor, branch).await;
    let (_, token_a) = patient_with_token(&app, "a@example.ru").await;
    let (_, token_b) = patient_with_token(&app, "b@example.ru").await;
    let book = |token: String, start: String| {
        let url = app.url("/api/v1/records");
        async move {
            let response = browser()
                .post(url)
                .bearer_auth(token)
                .json(&json!({"specialist_id": doctor, "branch_id": branch, "start": start}))
                .send()
                .await
                .expect("book");
            assert_eq!(response.status(), StatusCode::CREATED);
            response.json::<Value>().await.expect("json")["id"]
                .as_i64()
                .expect("id")
        }
    };
    let record_a = book(token_a.clone(), starts[0].clone()).await;
    let record_b = book(token_b.clone(), starts[1].clone()).await;

    // API: B's record does not exist for A.
    let get = |token: &str, path: String| {
        browser()
            .get(app.url(&path))
            .bearer_auth(token.to_owned())
            .send()
    };
    assert_eq!(
        get(&token_a, format!("/api/v1/records/{record_b}"))
            .await
            .expect("get")
            .status(),
        StatusCode::NOT_FOUND
    );
    let post = |token: &str, path: String, body: Value| {
        browser()
            .post(app.url(&path))
            .bearer_auth(token.to_owned())
            .json(&body)
            .send()
    };
    assert_eq!(
        post(
            &token_a,
            format!("/api/v1/records/{record_b}/cancel"),
            json!({})
        )
        .await
        .expect("cancel")
        .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        post(
            &token_a,
            format!("/api/v1/records/{record_b}/reschedule"),
            json!({"start": starts[2]})
        )
        .await
        .expect("move")
        .status(),
        StatusCode::NOT_FOUND
    );
    let list: Value = get(&token_a, "/api/v1/records".into())
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], record_a);
    assert!(
        list["items"][0]["patient"]["phone_masked"]
            .as_str()
            .expect("masked")
            .contains("***")
    );

    // Pages: the same.
    let client_a = browser();
    app.log_in(&client_a, "a@example.ru", "patient passphrase 1")
        .await;
    assert_eq!(
        client_a
            .get(app.url(&format!("/cabinet/records/{record_b}")))
            .send()
            .await
            .expect("page")
            .status(),
        StatusCode::NOT_FOUND
    );
    let own = client_a
        .get(app.url(&format!("/cabinet/records/{record_a}")))
        .send()
        .await
        .expect("page");
    assert_eq!(own.status(), StatusCode::OK);
    let own_html = own.text().await.expect("body");
    let token = crate::support::csrf_token(&own_html);
    let cancel_b = client_a
        .post(app.url(&format!("/cabinet/records/{record_b}/cancel")))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("cancel");
    assert_eq!(cancel_b.status(), StatusCode::NOT_FOUND);

    // Staff see and cancel B's record; the view is audited.
    app.create_user("desk@example.ru", "front desk passphrase", Role::Staff)
        .await;
    let staff_token = app
        .api_token("desk@example.ru", "front desk passphrase")
        .await;
    let detail: Value = get(&staff_token, format!("/api/v1/records/{record_b}"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(detail["id"], record_b);
    assert!(detail["notification"].is_object());
    let staff = browser();
    app.log_in(&staff, "desk@example.ru", "front desk passphrase")
        .await;
    let page = staff
        .get(app.url(&format!("/staff/records/{record_b}")))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("body");
    assert!(html.contains("SMS пациенту"));
    let token = crate::support::csrf_token(&html);
    let cancelled = staff
        .post(app.url(&format!("/staff/records/{record_b}/cancel")))
        .form(&[("csrf_token", token.as_str()), ("confirm", "1")])
        .send()
        .await
        .expect("cancel");
    assert_eq!(cancelled.status(), StatusCode::SEE_OTHER);
    let after: Value = get(&token_b, format!("/api/v1/records/{record_b}"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(after["status"], "cancelled");
    let list = staff
        .get(app.url("/staff/records?q=Тестов"))
        .send()
        .await
        .expect("list");
    assert_eq!(list.status(), StatusCode::OK);
    assert!(
        app.count("SELECT count(*) AS n FROM audit_events WHERE action = 'record_viewed'")
            .await
            >= 2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_twice_and_reschedule_through_the_api() {
    let (app, emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let starts = free_starts(&app, doctor, branch).await;
    let (_, token) = patient_with_token(&app, "a@example.ru").await;
    let created: Value = browser()
        .post(app.url("/api/v1/records"))
        .bearer_auth(&token)
        .json(&json!({"specialist_id": doctor, "branch_id": branch, "start": starts[0]}))
        .send()
        .await
        .expect("book")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_i64().expect("id");
    let mis_id = created["mis_id"].as_i64().expect("mis id");
    let moved = browser()
        .post(app.url(&format!("/api/v1/records/{id}/reschedule")))
        .bearer_auth(&token)
        .json(&json!({"start": starts[3]}))
        .send()
        .await
        .expect("move");
    assert_eq!(moved.status(), StatusCode::OK);
    let moved: Value = moved.json().await.expect("json");
    assert_eq!(moved["id"], id, "the record is kept");
    assert_eq!(moved["mis_id"], mis_id, "the MIS keeps its SCHEDID");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(moved["start"].as_str().expect("start"))
            .expect("time"),
        chrono::DateTime::parse_from_rfc3339(&starts[3]).expect("time")
    );
    let free_now = free_starts(&app, doctor, branch).await;
    assert!(free_now.contains(&starts[0]), "the old slot is free again");
    assert!(!free_now.contains(&starts[3]));

    let cancel = || {
        browser()
            .post(app.url(&format!("/api/v1/records/{id}/cancel")))
            .bearer_auth(&token)
            .send()
    };
    let first = cancel().await.expect("cancel");
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        first.json::<Value>().await.expect("json")["status"],
        "cancelled"
    );
    let second = cancel().await.expect("cancel");
    assert_eq!(second.status(), StatusCode::CONFLICT);
    assert!(
        eventually(10, || emulators.control.sms_count() == 3).await,
        "booked, moved, cancelled"
    );
    // Each operation is in the audit trail once, whoever's handler ran it.
    for action in ["record_booked", "record_moved", "record_cancelled"] {
        let sql = format!(
            "SELECT count(*) AS n FROM audit_events WHERE action = '{action}' AND subject = '{id}' AND actor_user_id IS NOT NULL"
        );
        assert_eq!(app.count(&sql).await, 1, "{action}");
    }
    let texts: Vec<String> = emulators
        .control
        .sms_messages()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("перенесён"))
            && texts.iter().any(|t| t.contains("отменена")),
        "{texts:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedule_cache_coalesces_serves_bookings_and_falls_back_to_stale() {
    let (app, emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    emulators.control.reset_mis_calls();

    // Fifty cold readers, one MIS call.
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let url = app.url(&format!(
            "/api/v1/specialist/schedule?specialist_id={doctor}&branch_id={branch}&date_from={}&date_to={}",
            chrono::Utc::now().date_naive() + chrono::Duration::days(2),
            chrono::Utc::now().date_naive() + chrono::Duration::days(8)
        ));
        readers.spawn(async move { browser().get(url).send().await.expect("read").status() });
    }
    while let Some(status) = readers.join_next().await {
        assert_eq!(status.expect("task"), StatusCode::OK);
    }
    assert_eq!(
        emulators.control.mis_calls("SCHEDULE"),
        1,
        "concurrent misses make one MIS call"
    );

    let first = schedule(&app, doctor, branch, 14).await;
    let second = schedule(&app, doctor, branch, 14).await;
    assert_eq!(second["source"], "cache", "{}", first["source"]);

    // A booking makes the next read show the slot taken.
    let start = free_starts(&app, doctor, branch)
        .await
        .into_iter()
        .next()
        .expect("free");
    let (status, _) = post_json(
        &app,
        "/api/v1/specialist/anonymous-reserve",
        &anonymous_booking(doctor, branch, &start, "+79165550008"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(!free_starts(&app, doctor, branch).await.contains(&start));

    // The MIS goes down: a day read before comes back stale; a day never read is a 503.
    emulators.control.set_mis_faults(MisFaults {
        http_500: true,
        ..MisFaults::default()
    });
    {
        use fred::interfaces::KeysInterface;
        let pattern = app.state().redis.key("sched:*");
        let keys: Vec<String> = {
            let (_, keys): (String, Vec<String>) = app
                .state()
                .redis
                .pool
                .next()
                .scan_page("0", &pattern, Some(10_000), None)
                .await
                .expect("scan");
            keys
        };
        for key in keys {
            let _: i64 = app.state().redis.pool.del(key).await.expect("del");
        }
        // As if both levels had expired: the process's memory holds the days too.
        app.state().booking.schedule.forget_everything();
    }
    let stale = schedule(&app, doctor, branch, 14).await;
    assert_eq!(stale["source"], "stale", "{stale}");
    let far = chrono::Utc::now().date_naive() + chrono::Duration::days(25);
    let response = browser()
        .get(app.url(&format!("/api/v1/specialist/schedule?specialist_id={doctor}&branch_id={branch}&date_from={far}&date_to={far}")))
        .send()
        .await
        .expect("read");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.json::<Value>().await.expect("json")["error"]["code"],
        "mis_unavailable"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nine_oclock_slot_in_yekaterinburg_is_nine_plus_five_and_books_that_instant() {
    let (app, _emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, Some("Asia/Yekaterinburg")).await;
    let window = schedule(&app, doctor, branch, 14).await;
    assert_eq!(window["timezone"], "Asia/Yekaterinburg");
    let nine = window["days"]
        .as_array()
        .expect("days")
        .iter()
        .flat_map(|d| d["slots"].as_array().cloned().unwrap_or_default())
        .find(|s| {
            s["free"] == true
                && s["start"]
                    .as_str()
                    .expect("start")
                    .ends_with("T09:00:00+05:00")
        })
        .expect("a free 09:00 slot");
    let start = nine["start"].as_str().expect("start").to_owned();
    let (status, body) = post_json(
        &app,
        "/api/v1/specialist/anonymous-reserve",
        &anonymous_booking(doctor, branch, &start, "+79165550009"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["start"], start);
    let instant = chrono::DateTime::parse_from_rfc3339(&start)
        .expect("time")
        .with_timezone(&chrono::Utc);
    assert_eq!(
        instant.format("%H:%M").to_string(),
        "04:00",
        "09:00 at UTC+5 is 04:00 UTC"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM records WHERE starts_at = '{}'",
            instant.to_rfc3339()
        ))
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patient_books_from_the_doctor_page_and_cancels_in_the_cabinet() {
    let (app, emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    app.create_user("anna@example.ru", "patient passphrase 1", Role::Patient)
        .await;
    let appointments_before = emulators.control.appointment_count();
    let client = browser();
    app.log_in(&client, "anna@example.ru", "patient passphrase 1")
        .await;

    let page = client
        .get(app.url(&format!("/doctors/{doctor}?branch_id={branch}")))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    let date = free_starts(&app, doctor, branch).await[0][..10].to_owned();
    let slots = client
        .get(app.url(&format!(
            "/doctors/{doctor}/slots?branch_id={branch}&date={date}"
        )))
        .header("hx-request", "true")
        .send()
        .await
        .expect("slots")
        .text()
        .await
        .expect("body");
    assert!(page.contains("Записаться на приём"));
    let link_start = slots.find("/book?").expect("a free slot link");
    let href = slots[link_start..]
        .split('"')
        .next()
        .expect("href")
        .replace("&amp;", "&");
    let confirm = client
        .get(app.url(&format!("/doctors/{doctor}{href}")))
        .send()
        .await
        .expect("confirm");
    assert_eq!(confirm.status(), StatusCode::OK);
    let html = confirm.text().await.expect("body");
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let at = html.find(&marker).expect("field") + marker.len();
        html[at..].split('"').next().expect("value").to_owned()
    };
    let booked = client
        .post(app.url(&format!("/doctors/{doctor}/book")))
        .form(&[
            ("csrf_token", field("csrf_token")),
            ("branch_id", field("branch_id")),
            ("start", field("start")),
            ("comment", "".into()),
        ])
        .send()
        .await
        .expect("book");
    assert_eq!(booked.status(), StatusCode::SEE_OTHER);
    let location = crate::support::location(&booked);
    assert!(location.starts_with("/cabinet/records/"), "{location}");
    let record_page = client
        .get(app.url(&location))
        .send()
        .await
        .expect("record")
        .text()
        .await
        .expect("body");
    assert!(record_page.contains("Вы записаны"));
    let cabinet = client
        .get(app.url("/cabinet"))
        .send()
        .await
        .expect("cabinet")
        .text()
        .await
        .expect("body");
    assert!(cabinet.contains("/cabinet/records/"), "the visit is listed");

    let id = location
        .trim_start_matches("/cabinet/records/")
        .split('?')
        .next()
        .expect("id")
        .to_owned();
    let token = crate::support::csrf_token(&record_page);
    let cancelled = client
        .post(app.url(&format!("/cabinet/records/{id}/cancel")))
        .form(&[("csrf_token", token)])
        .send()
        .await
        .expect("cancel");
    assert_eq!(cancelled.status(), StatusCode::SEE_OTHER);
    let after = client
        .get(app.url(&format!("/cabinet/records/{id}")))
        .send()
        .await
        .expect("record")
        .text()
        .await
        .expect("body");
    assert!(after.contains("Запись отменена"));
    assert_eq!(
        emulators.control.appointment_count(),
        appointments_before,
        "the MIS booking is gone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_schedules_prefetches_so_the_first_reader_does_not_wait_for_the_mis() {
    let (app, emulators) = with_emulators().await;
    sync_directories(&app).await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sovamed"))
        .args(["sync", "schedules", "--days", "3"])
        .env("DATABASE_URL", &app.config.database_url)
        .env("REDIS_PREFIX", &app.config.redis_prefix)
        .env(
            "INFOCLINICA_URL",
            app.config.infoclinica_url.as_deref().expect("url"),
        )
        .output()
        .expect("run sovamed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("schedules: ") && stdout.contains(" new"),
        "{stdout}"
    );
    let pairs = app
        .count("SELECT count(*) AS n FROM specialist_branches")
        .await;
    assert_eq!(
        emulators.control.mis_calls("SCHEDULE") as i64,
        pairs,
        "one MIS call per doctor and branch"
    );

    emulators.control.reset_mis_calls();
    let (doctor, branch) = doctor_in(&app, None).await;
    let window = schedule(&app, doctor, branch, 2).await;
    assert_eq!(window["source"], "cache", "{window}");
    assert_eq!(emulators.control.mis_calls("SCHEDULE"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_booking_answers_with_the_records_location_also_when_replayed() {
    let (app, _emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let start = free_starts(&app, doctor, branch).await[0].clone();
    let body = anonymous_booking(doctor, branch, &start, "+79165550071");
    let mut locations = Vec::new();
    for _ in 0..2 {
        let response = browser()
            .post(app.url("/api/v1/specialist/anonymous-reserve"))
            .header("idempotency-key", "key-location")
            .json(&body)
            .send()
            .await
            .expect("reserve");
        assert_eq!(response.status(), StatusCode::CREATED);
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("a Location")
            .to_owned();
        let answer: Value = response.json().await.expect("json");
        let id = answer["id"].as_i64().expect("id");
        assert_eq!(location, format!("/api/v1/records/{id}"));
        locations.push(location);
    }
    assert_eq!(
        locations[0], locations[1],
        "the replay names the same record"
    );
}
