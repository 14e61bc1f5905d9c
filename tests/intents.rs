//! Booking intents end to end: a booking whose request times out or whose move cannot be
//! written locally still ends with the MIS and the database agreeing.

use std::time::Duration;

use diesel_async::{AsyncConnection, RunQueryDsl};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sovamed::db::models::user::Role;

use crate::support::{
    anonymous_booking, browser, doctor_in, free_starts, sync_directories, with_emulators_and,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_booking_whose_request_times_out_is_still_made_once() {
    let (app, emulators) = with_emulators_and(|config| {
        config.request_timeout = Duration::from_secs(1);
    })
    .await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let start = free_starts(&app, doctor, branch).await[0].clone();
    let before = emulators.control.appointment_count();

    // Another session holds the records table for three seconds: the local write waits.
    let url = app.config.database_url.clone();
    let (locked_tx, locked) = tokio::sync::oneshot::channel();
    let holder = tokio::spawn(async move {
        let mut conn = diesel_async::AsyncPgConnection::establish(&url)
            .await
            .expect("connect");
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            diesel::sql_query("LOCK TABLE records IN SHARE ROW EXCLUSIVE MODE")
                .execute(conn)
                .await?;
            let _ = locked_tx.send(());
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok(())
        })
        .await
        .expect("lock held");
    });
    locked.await.expect("locked");

    let started = std::time::Instant::now();
    let response = browser()
        .post(app.url("/api/v1/specialist/anonymous-reserve"))
        .json(&anonymous_booking(doctor, branch, &start, "+79165550041"))
        .send()
        .await
        .expect("reserve");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_millis(2_500),
        "answered at the limit"
    );
    let body: Value = response.json().await.expect("the error shape");
    assert_eq!(body["error"]["code"], "timeout");

    holder.await.expect("lock released");
    let mut booked = false;
    for _ in 0..50 {
        if app
            .count("SELECT count(*) AS n FROM records WHERE status = 'booked'")
            .await
            == 1
        {
            booked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(booked, "the booking went on after the answer");
    assert_eq!(emulators.control.appointment_count(), before + 1);
    assert_eq!(app.count("SELECT count(*) AS n FROM sms_outbox").await, 1);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM booking_intents WHERE state = 'done'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_move_that_cannot_be_written_locally_is_moved_back_in_the_mis() {
    let (app, emulators) = with_emulators_and(|_| {}).await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let starts = free_starts(&app, doctor, branch).await;
    app.create_user("mover@example.ru", "mover passphrase 1", Role::Patient)
        .await;
    let token = app
        .api_token("mover@example.ru", "mover passphrase 1")
        .await;
    let booked: Value = browser()
        .post(app.url("/api/v1/records"))
        .bearer_auth(&token)
        .json(&json!({"specialist_id": doctor, "branch_id": branch, "start": starts[0]}))
        .send()
        .await
        .expect("book")
        .json()
        .await
        .expect("json");
    let id = booked["id"].as_i64().expect("id");
    let schedid = booked["mis_id"].as_i64().expect("mis id");
    let old = emulators
        .control
        .appointments()
        .into_iter()
        .find(|a| a.schedid == schedid)
        .expect("in the MIS");

    crate::support::refuse_writes(&app, "UPDATE", "records").await;
    let response = browser()
        .post(app.url(&format!("/api/v1/records/{id}/reschedule")))
        .bearer_auth(&token)
        .json(&json!({"start": starts[1]}))
        .send()
        .await
        .expect("reschedule");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "service_unavailable", "{body}");

    // Both sides still say the old time.
    let now = emulators
        .control
        .appointments()
        .into_iter()
        .find(|a| a.schedid == schedid)
        .expect("still in the MIS");
    assert_eq!((now.date, now.start), (old.date, old.start));
    let record: Value = browser()
        .get(app.url(&format!("/api/v1/records/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("record")
        .json()
        .await
        .expect("json");
    assert_eq!(record["start"], starts[0]);
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM booking_intents WHERE kind = 'move' AND state = 'failed'"
        )
        .await,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sms_outbox WHERE kind = 'moved'")
            .await,
        0
    );
    // The slot the move was going to is free again.
    assert!(free_starts(&app, doctor, branch).await.contains(&starts[1]));
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_rows_name_the_request_that_caused_them() {
    let (app, _emulators) = with_emulators_and(|_| {}).await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let start = free_starts(&app, doctor, branch).await[0].clone();
    let response = browser()
        .post(app.url("/api/v1/specialist/anonymous-reserve"))
        .header("x-request-id", "req-audit-0001")
        .json(&anonymous_booking(doctor, branch, &start, "+79165550061"))
        .send()
        .await
        .expect("reserve");
    assert_eq!(response.status(), StatusCode::CREATED);
    let generated = browser()
        .post(app.url("/api/v1/user/login"))
        .json(&json!({"email": "nobody@example.ru", "password": "wrong password 1"}))
        .send()
        .await
        .expect("login");
    let login_id = generated
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("a request id")
        .to_owned();
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM audit_events WHERE action = 'record_booked' AND request_id = 'req-audit-0001'",
        )
        .await,
        1,
        "the booking, audited inside its own task, names the request"
    );
    assert_eq!(
        app.count(
            &format!(
                "SELECT count(*) AS n FROM audit_events WHERE action = 'login_failed' AND request_id = '{login_id}'"
            ),
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_mis_costs_schedule_readers_the_budget_and_they_get_the_stored_copy() {
    let (app, emulators) = with_emulators_and(|config| {
        config.infoclinica_read_budget = Duration::from_secs(1);
        config.schedule_cache_ttl = Duration::from_secs(1);
    })
    .await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let first = crate::support::schedule(&app, doctor, branch, 1).await;
    assert_eq!(first["source"], "mis", "{first}");
    // The cached day expires; the MIS turns slow (slower than the budget, retries aside).
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    emulators
        .control
        .set_mis_faults(sovamed::emulator::MisFaults {
            latency_ms: 3_000,
            ..Default::default()
        });
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let url = app.url(&format!(
            "/api/v1/specialist/schedule?specialist_id={doctor}&branch_id={branch}&date_from={}",
            first["days"][0]["date"].as_str().expect("date")
        ));
        readers.spawn(async move {
            let started = std::time::Instant::now();
            let response = browser().get(url).send().await.expect("schedule");
            let status = response.status();
            let body: Value = response.json().await.expect("json");
            (status, body, started.elapsed())
        });
    }
    while let Some(read) = readers.join_next().await {
        let (status, body, took) = read.expect("join");
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["source"], "stale", "{body}");
        // One budget for the first reader; the others share its outcome instead of each
        // waiting for the MIS in turn (before: 6, 10, 14, 18, 22, 26 s).
        assert!(
            took < Duration::from_millis(2_800),
            "answered after {took:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_front_desk_cancel_reaches_the_cabinet_within_a_poll() {
    let (app, emulators) = with_emulators_and(|config| {
        config.change_feed_interval = Duration::from_secs(1);
    })
    .await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let start = free_starts(&app, doctor, branch).await[0].clone();
    app.create_user("desk-feed@example.ru", "feed passphrase 1", Role::Patient)
        .await;
    let token = app
        .api_token("desk-feed@example.ru", "feed passphrase 1")
        .await;
    let booked: Value = browser()
        .post(app.url("/api/v1/records"))
        .bearer_auth(&token)
        .json(&json!({"specialist_id": doctor, "branch_id": branch, "start": start}))
        .send()
        .await
        .expect("book")
        .json()
        .await
        .expect("json");
    let id = booked["id"].as_i64().expect("id");
    let schedid = booked["mis_id"].as_i64().expect("mis id");

    // The clinic's front desk cancels it in the MIS, over the emulator's control API.
    let mis_base = emulators.mis_url.trim_end_matches("/api/xml").to_owned();
    let started = std::time::Instant::now();
    let desk = browser()
        .post(format!("{mis_base}/_emulator/front-desk"))
        .json(&json!({"action": "cancel", "schedid": schedid}))
        .send()
        .await
        .expect("front desk");
    assert_eq!(desk.status(), StatusCode::NO_CONTENT);
    let mut seen = None;
    while started.elapsed() < Duration::from_secs(10) {
        let record: Value = browser()
            .get(app.url(&format!("/api/v1/records/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .expect("record")
            .json()
            .await
            .expect("json");
        if record["status"] == "cancelled" {
            seen = Some((started.elapsed(), record));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (took, record) = seen.expect("the cabinet shows the clinic's cancel");
    println!("front desk cancel → cabinet: {took:?} (poll interval 1 s)");
    assert_eq!(record["notification"]["kind"], "cancelled", "{record}");
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM audit_events WHERE action = 'record_cancelled_by_clinic'"
        )
        .await,
        1
    );
}
