//! A patient's data rights: «Кто видел мои данные» (staff views through the pages and the
//! API, lists and exports, SMS), the export of everything about them and nothing about
//! anyone else, refused attempts at another's record, and withdrawing a consent.
//!
//! Two patients, Anna and Boris, each with a record, SMS and both consents, are seeded
//! straight into the database (the directories come from the emulators).

use reqwest::{Client, StatusCode};
use serde_json::Value;
use sovamed::db::models::user::Role;

use crate::support::{
    TestApp, browser, csrf_token, doctor_in, free_starts, location, page, post, sync_directories,
    with_emulators,
};

const PASSWORD: &str = "data rights passphrase";
const STAFF_NAME: &str = "Регистраторова Вера Павловна";
const ANNA_PHONE: &str = "+79031110001";
const BORIS_PHONE: &str = "+79032220002";

/// The seeded world: the app, both patients and their rows, and a logged-in staff member.
struct World {
    app: TestApp,
    emulators: sovamed::emulator::Emulators,
    doctor: i64,
    branch: i64,
    anna: i64,
    boris: i64,
    record_a: i64,
    record_b: i64,
    sms_a: Vec<i64>,
    sms_b: i64,
    consents_a: Vec<i64>,
    staff: Client,
    staff_id: i64,
}

/// A number from `sql` (one `BIGINT` named `n`), for inserts that return an id.
async fn one(app: &TestApp, sql: &str) -> i64 {
    app.count(sql).await
}

async fn patient(app: &TestApp, email: &str, name: &str, phone: &str) -> i64 {
    let user = app.create_user(email, PASSWORD, Role::Patient).await;
    one(
        app,
        &format!(
            "WITH u AS (UPDATE users SET full_name = '{name}', phone = '{phone}' WHERE id = {} \
             RETURNING 1) SELECT count(*) AS n FROM u",
            user.id
        ),
    )
    .await;
    user.id
}

/// A future record of `user` with `doctor` in `branch`, `days` ahead.
async fn record(
    app: &TestApp,
    (doctor, branch): (i64, i64),
    user: i64,
    (last, first, phone, comment): (&str, &str, &str, &str),
    days: i64,
) -> i64 {
    one(
        app,
        &format!(
            "WITH ins AS (INSERT INTO records (mis_id, specialist_id, branch_id, starts_at, ends_at, \
             user_id, patient_pcode, patient_last_name, patient_first_name, patient_phone, comment, source) \
             VALUES (700000 + {user}, {doctor}, {branch}, date_trunc('hour', now()) + interval '{days} days', \
             date_trunc('hour', now()) + interval '{days} days 20 minutes', {user}, 880000 + {user}, \
             '{last}', '{first}', '{phone}', '{comment}', 'cabinet') RETURNING id) SELECT id AS n FROM ins"
        ),
    )
    .await
}

/// A sent SMS to `phone`, about `record` (or about none).
async fn sms(app: &TestApp, record: Option<i64>, kind: &str, phone: &str, body: &str) -> i64 {
    let record = record.map_or_else(|| "NULL".to_owned(), |id| id.to_string());
    one(
        app,
        &format!(
            "WITH ins AS (INSERT INTO sms_outbox (record_id, kind, phone, body, status, attempts, sent_at) \
             VALUES ({record}, '{kind}', '{phone}', '{body}', 'sent', 1, now() - interval '1 minute') \
             RETURNING id) SELECT id AS n FROM ins"
        ),
    )
    .await
}

/// Both consents of `user`, against the current texts.
async fn consents(app: &TestApp, user: i64) -> Vec<i64> {
    let mut ids = Vec::new();
    for purpose in ["personal_data", "health_data"] {
        ids.push(
            one(
                app,
                &format!(
                    "WITH ins AS (INSERT INTO consents (user_id, text_id, client_ip) \
                     SELECT {user}, id, '203.0.113.5' FROM consent_texts WHERE purpose = '{purpose}' \
                     ORDER BY version DESC LIMIT 1 RETURNING id) SELECT id AS n FROM ins"
                ),
            )
            .await,
        );
    }
    ids
}

async fn logged_in(app: &TestApp, email: &str) -> Client {
    let client = browser();
    let response = app.log_in(&client, email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{email} logs in");
    client
}

async fn seeded() -> World {
    let (app, emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let anna = patient(&app, "anna@example.ru", "Аннова Анна Андреевна", ANNA_PHONE).await;
    let boris = patient(
        &app,
        "boris@example.ru",
        "Борисов Борис Борисович",
        BORIS_PHONE,
    )
    .await;
    let record_a = record(
        &app,
        (doctor, branch),
        anna,
        ("Аннова", "Анна", ANNA_PHONE, "Болит колено"),
        2,
    )
    .await;
    let record_b = record(
        &app,
        (doctor, branch),
        boris,
        ("Борисов", "Борис", BORIS_PHONE, "Болит ухо"),
        3,
    )
    .await;
    let sms_a = vec![
        sms(
            &app,
            Some(record_a),
            "booked",
            ANNA_PHONE,
            "Совамед: вы записаны к врачу, Анна",
        )
        .await,
        sms(&app, None, "code", ANNA_PHONE, "Совамед: код ••••••").await,
    ];
    let sms_b = sms(
        &app,
        Some(record_b),
        "booked",
        BORIS_PHONE,
        "Совамед: вы записаны к врачу, Борис",
    )
    .await;
    let consents_a = consents(&app, anna).await;
    consents(&app, boris).await;
    let staff_user = app
        .create_user("desk@example.ru", PASSWORD, Role::Staff)
        .await;
    one(
        &app,
        &format!(
            "WITH u AS (UPDATE users SET full_name = '{STAFF_NAME}', phone = NULL WHERE id = {} \
             RETURNING 1) SELECT count(*) AS n FROM u",
            staff_user.id
        ),
    )
    .await;
    let staff = logged_in(&app, "desk@example.ru").await;
    World {
        app,
        emulators,
        doctor,
        branch,
        anna,
        boris,
        record_a,
        record_b,
        sms_a,
        sms_b,
        consents_a,
        staff,
        staff_id: staff_user.id,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patient_sees_who_opened_listed_and_exported_their_record() {
    let w = seeded().await;
    let app = &w.app;

    // A record page at the desk, the record through the API, the list through the API and
    // the list as a CSV, the last two narrowed to Anna.
    let (status, _) = page(&w.staff, app, &format!("/staff/records/{}", w.record_a)).await;
    assert_eq!(status, StatusCode::OK);
    let token = app.api_token("desk@example.ru", PASSWORD).await;
    let shown = browser()
        .get(app.url(&format!("/api/v1/records/{}", w.record_a)))
        .bearer_auth(&token)
        .send()
        .await
        .expect("API record");
    assert_eq!(shown.status(), StatusCode::OK);
    let listed = browser()
        .get(app.url("/api/v1/records"))
        .query(&[("q", "Аннова")])
        .bearer_auth(&token)
        .send()
        .await
        .expect("API list");
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM audit_events WHERE action = 'records_listed' \
             AND actor_user_id = {} AND details -> 'patients' = '[{}]'::jsonb",
            w.staff_id, w.anna
        ))
        .await,
        1,
        "the API list names the patients it showed"
    );
    // Needs the export to write `details.patients` (the desk's change on the main branch).
    let exported = w
        .staff
        .get(app.url("/staff/records.csv"))
        .query(&[("q", "Аннова")])
        .send()
        .await
        .expect("export");
    assert_eq!(exported.status(), StatusCode::OK);
    let csv = exported.text().await.expect("csv");
    assert!(csv.contains("Аннова") && !csv.contains("Борисов"), "{csv}");

    let anna = logged_in(app, "anna@example.ru").await;
    let (status, log) = page(&anna, app, "/cabinet/access-log").await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert!(
        log.contains(&format!("{STAFF_NAME} (сотрудник)")),
        "the staff member by name: {log}"
    );
    assert_eq!(
        log.matches("запись просмотрена сотрудником").count(),
        2,
        "the page and the API: {log}"
    );
    assert!(log.contains("список записей просмотрен"), "{log}");
    assert!(log.contains("выгрузка записей"), "the export: {log}");
    assert!(log.contains("отправлено SMS: запись"), "her SMS: {log}");
    assert!(
        log.contains(&format!("href=\"/cabinet/records/{}\"", w.record_a)),
        "the record is linked: {log}"
    );
    assert!(
        log.contains(" мск") && !log.contains("UTC"),
        "times on Moscow clocks, never UTC: {log}"
    );

    // Boris was in none of it.
    let boris = logged_in(app, "boris@example.ru").await;
    let (status, his) = page(&boris, app, "/cabinet/access-log").await;
    assert_eq!(status, StatusCode::OK);
    for absent in [
        "Регистраторова",
        "запись просмотрена сотрудником",
        "выгрузка записей",
        "список записей просмотрен",
        "Аннова",
    ] {
        assert!(!his.contains(absent), "{absent} in Boris's log: {his}");
    }
    assert!(his.contains("отправлено SMS: запись"), "his own SMS: {his}");

    // Staff have no access log of their own.
    let (status, _) = page(&w.staff, app, "/cabinet/access-log").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_export_holds_everything_about_the_patient_and_nothing_about_another() {
    let w = seeded().await;
    let app = &w.app;
    let (status, _) = page(&w.staff, app, &format!("/staff/records/{}", w.record_a)).await;
    assert_eq!(status, StatusCode::OK);

    let anna = logged_in(app, "anna@example.ru").await;
    let response = anna
        .get(app.url("/cabinet/my-data.json"))
        .send()
        .await
        .expect("export");
    assert_eq!(response.status(), StatusCode::OK);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "application/json");
    assert!(header("content-disposition").starts_with("attachment"));
    assert_eq!(header("cache-control"), "no-store");
    let text = response.text().await.expect("body");
    let data: Value = serde_json::from_str(&text).expect("JSON");

    // For scripts/check-my-data-schema.py, which CI runs after the tests.
    let sample = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("my-data.json");
    std::fs::write(&sample, &text).expect("write the sample");

    assert_eq!(data["format_version"], 1);
    assert_eq!(data["account"]["id"], w.anna);
    assert_eq!(data["account"]["email"], "anna@example.ru");
    assert_eq!(data["account"]["full_name"], "Аннова Анна Андреевна");
    assert_eq!(data["phones"][0]["phone"], ANNA_PHONE);
    assert_eq!(data["phones"][0]["current"], true);
    let ids = |key: &str| -> Vec<i64> {
        let mut ids: Vec<i64> = data[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}: {data}"))
            .iter()
            .map(|item| item["id"].as_i64().expect("id"))
            .collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(ids("visits"), vec![w.record_a]);
    assert_eq!(data["visits"][0]["comment"], "Болит колено");
    assert_eq!(data["visits"][0]["status"], "booked");
    let mut sms_a = w.sms_a.clone();
    sms_a.sort_unstable();
    assert_eq!(
        ids("sms"),
        sms_a,
        "the record's SMS and the code to her phone"
    );
    let mut consents_a = w.consents_a.clone();
    consents_a.sort_unstable();
    assert_eq!(ids("consents"), consents_a);
    let log = data["access_log"].as_array().expect("access log");
    assert!(
        log.iter().any(|e| e["action"] == "record_viewed"
            && e["who"] == "staff"
            && e["who_name"] == STAFF_NAME
            && e["record_id"] == w.record_a),
        "the staff view: {log:?}"
    );
    assert!(
        log.iter()
            .any(|e| e["action"] == "sms_sent" && e["sms_kind"] == "code"),
        "the code SMS: {log:?}"
    );

    // Nothing of Boris.
    for absent in [
        "boris@example.ru",
        BORIS_PHONE,
        "Борисов",
        "Болит ухо",
        "вы записаны к врачу, Борис",
    ] {
        assert!(!text.contains(absent), "{absent} in Anna's export");
    }
    assert!(
        log.iter()
            .all(|e| e["record_id"].is_null() || e["record_id"] == w.record_a),
        "{log:?}"
    );
    assert!(
        data["sms"]
            .as_array()
            .expect("sms")
            .iter()
            .all(|m| m["id"] != w.sms_b && m["record_id"] != w.record_b)
    );

    // The same on the page, which the patient can print.
    let (status, html) = page(&anna, app, "/cabinet/my-data").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    for present in [
        "anna@example.ru",
        "Болит колено",
        "Совамед: вы записаны к врачу, Анна",
        "Согласие на обработку сведений о здоровье: действует",
        "Отозвать согласие",
        STAFF_NAME,
    ] {
        assert!(html.contains(present), "{present} on the page: {html}");
    }
    for absent in ["Борисов", "Болит ухо", "boris@example.ru"] {
        assert!(!html.contains(absent), "{absent} on Anna's page");
    }
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM audit_events WHERE action = 'my_data_exported' \
             AND actor_user_id = {anna} AND subject = '{anna}'",
            anna = w.anna
        ))
        .await,
        2,
        "the file and the page are audited"
    );
    // Another patient's own export holds their record, not Anna's.
    let boris = logged_in(app, "boris@example.ru").await;
    let theirs: Value = boris
        .get(app.url("/cabinet/my-data.json"))
        .send()
        .await
        .expect("export")
        .json()
        .await
        .expect("JSON");
    assert_eq!(theirs["account"]["id"], w.boris);
    assert_eq!(theirs["visits"][0]["id"], w.record_b);
    assert_eq!(theirs["visits"].as_array().map(Vec::len), Some(1));
    assert!(!theirs.to_string().contains("Аннова"));
}

#[tokio::test(flavor = "multi_thread")]
async fn another_patients_record_is_a_404_and_the_attempt_is_audited() {
    let w = seeded().await;
    let app = &w.app;
    let token = app.api_token("boris@example.ru", PASSWORD).await;
    let api = |path: String| browser().get(app.url(&path)).bearer_auth(&token);
    let shown = api(format!("/api/v1/records/{}", w.record_a))
        .send()
        .await
        .expect("API record");
    assert_eq!(shown.status(), StatusCode::NOT_FOUND);
    let body: Value = shown.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "not_found");
    let cancelled = browser()
        .post(app.url(&format!("/api/v1/records/{}/cancel", w.record_a)))
        .bearer_auth(&token)
        .send()
        .await
        .expect("API cancel");
    assert_eq!(cancelled.status(), StatusCode::NOT_FOUND);
    let boris = logged_in(app, "boris@example.ru").await;
    let (status, _) = page(&boris, app, &format!("/cabinet/records/{}", w.record_a)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let cancel_page = post(
        &boris,
        app,
        "/cabinet",
        &format!("/cabinet/records/{}/cancel", w.record_a),
        &[],
    )
    .await;
    assert_eq!(cancel_page.status(), StatusCode::NOT_FOUND);
    for subject in [
        format!("/api/v1/records/{}", w.record_a),
        format!("/api/v1/records/{}/cancel", w.record_a),
        format!("/cabinet/records/{}", w.record_a),
        format!("/cabinet/records/{}/cancel", w.record_a),
    ] {
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) AS n FROM audit_events WHERE action = 'access_denied' \
                 AND actor_user_id = {} AND subject = '{subject}' \
                 AND details ->> 'record_id' = '{}'",
                w.boris, w.record_a
            ))
            .await,
            1,
            "{subject} is audited with the record"
        );
    }
    assert_eq!(
        app.count("SELECT count(*) AS n FROM records WHERE status = 'cancelled'")
            .await,
        0,
        "nothing was cancelled"
    );
    // An id that does not exist is the same 404, and nobody's business.
    let missing = api("/api/v1/records/999999".to_owned())
        .send()
        .await
        .expect("API record");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM audit_events WHERE action = 'access_denied' AND subject LIKE '%999999%'")
            .await,
        0
    );
    // Anna sees the attempts, without Boris's name.
    let anna = logged_in(app, "anna@example.ru").await;
    let (_, log) = page(&anna, app, "/cabinet/access-log").await;
    assert_eq!(
        log.matches("попытка открыть вашу запись отклонена").count(),
        4,
        "{log}"
    );
    assert!(log.contains("другой пациент"));
    assert!(!log.contains("Борисов"), "another patient is never named");

    // Booking for oneself through the API is a patient's: staff get a 403, audited.
    let staff_token = app.api_token("desk@example.ru", PASSWORD).await;
    let refused = browser()
        .post(app.url("/api/v1/records"))
        .bearer_auth(&staff_token)
        .json(&serde_json::json!({
            "specialist_id": w.doctor,
            "branch_id": w.branch,
            "start": "2030-01-07T10:00:00+03:00"
        }))
        .send()
        .await
        .expect("API book");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM audit_events WHERE action = 'access_denied' \
             AND actor_user_id = {} AND subject = '/api/v1/records'",
            w.staff_id
        ))
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_withdrawn_consent_is_recorded_stops_booking_and_can_be_given_again() {
    let w = seeded().await;
    let app = &w.app;
    let anna = logged_in(app, "anna@example.ru").await;
    let withdraw = "/cabinet/consents/health_data/withdraw";

    // The first post only asks.
    let asked = post(&anna, app, "/cabinet/my-data", withdraw, &[]).await;
    assert_eq!(asked.status(), StatusCode::OK);
    let question = asked.text().await.expect("body");
    assert!(
        question.contains("Отозвать согласие на обработку сведений о здоровье?"),
        "{question}"
    );
    assert!(question.contains("прекратит обработку"));
    let in_force = |purpose: &'static str| {
        format!(
            "SELECT count(*) AS n FROM consents c JOIN consent_texts t ON t.id = c.text_id \
             WHERE c.user_id = {} AND t.purpose = '{purpose}' AND c.withdrawn_at IS NULL",
            w.anna
        )
    };
    assert_eq!(app.count(&in_force("health_data")).await, 1, "not yet");

    let done = post(
        &anna,
        app,
        "/cabinet/my-data",
        withdraw,
        &[("confirm", "1")],
    )
    .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&done), "/cabinet/my-data?done=withdrawn");
    assert_eq!(app.count(&in_force("health_data")).await, 0);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM consents c JOIN consent_texts t ON t.id = c.text_id \
             WHERE c.user_id = {} AND t.purpose = 'health_data' AND c.withdrawn_at IS NOT NULL",
            w.anna
        ))
        .await,
        1,
        "withdrawn_at is set"
    );
    assert_eq!(
        app.count(&in_force("personal_data")).await,
        1,
        "the other purpose stays"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM audit_events WHERE action = 'consent_withdrawn' \
             AND actor_user_id = {anna} AND subject = '{anna}' \
             AND details ->> 'purpose' = 'health_data'",
            anna = w.anna
        ))
        .await,
        1
    );
    let (_, shown) = page(&anna, app, "/cabinet/my-data?done=withdrawn").await;
    assert!(shown.contains("Согласие на обработку сведений о здоровье: отозвано"));
    // Nothing left to withdraw.
    let again = post(
        &anna,
        app,
        "/cabinet/my-data",
        withdraw,
        &[("confirm", "1")],
    )
    .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    // Booking in the cabinet is refused before the MIS is asked, with the way back.
    let starts = free_starts(app, w.doctor, w.branch).await;
    let confirm = format!("/doctors/{}/book", w.doctor);
    let branch = w.branch.to_string();
    let (status, confirm_page) = {
        let response = anna
            .get(app.url(&confirm))
            .query(&[
                ("branch_id", branch.as_str()),
                ("start", starts[0].as_str()),
            ])
            .send()
            .await
            .expect("confirm page");
        (response.status(), response.text().await.expect("body"))
    };
    assert_eq!(status, StatusCode::OK, "{confirm_page}");
    let csrf = csrf_token(&confirm_page);
    let booked = anna
        .post(app.url(&confirm))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("branch_id", branch.as_str()),
            ("start", starts[0].as_str()),
            ("comment", ""),
        ])
        .send()
        .await
        .expect("book");
    assert_eq!(booked.status(), StatusCode::CONFLICT);
    let refused = booked.text().await.expect("body");
    assert!(
        refused.contains("Вы отозвали согласие на обработку сведений о здоровье"),
        "{refused}"
    );
    assert!(
        refused.contains("href=\"/cabinet/consent?next="),
        "{refused}"
    );
    assert_eq!(w.emulators.control.mis_calls("SCHEDULE_REC_RESERVE"), 0);

    // Giving it again: both boxes, then back to the slot.
    let next = format!("/doctors/{}/book?branch_id={}", w.doctor, w.branch);
    let form_page = format!(
        "/cabinet/consent?{}",
        serde_urlencoded::to_string([("next", next.as_str())]).expect("query")
    );
    let one_box = post(
        &anna,
        app,
        &form_page,
        "/cabinet/consent",
        &[("consent_personal", "yes"), ("next", &next)],
    )
    .await;
    assert_eq!(one_box.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let given = post(
        &anna,
        app,
        &form_page,
        "/cabinet/consent",
        &[
            ("consent_personal", "yes"),
            ("consent_health", "yes"),
            ("next", &next),
        ],
    )
    .await;
    assert_eq!(given.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&given), next);
    assert_eq!(app.count(&in_force("health_data")).await, 1);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM audit_events WHERE action = 'consent_given' \
             AND actor_user_id = {}",
            w.anna
        ))
        .await,
        1
    );
    // The record of Boris was never touched by any of this.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM consents WHERE user_id = {} AND withdrawn_at IS NOT NULL",
            w.boris
        ))
        .await,
        0
    );
}
