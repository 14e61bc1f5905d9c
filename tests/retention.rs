//! Deletion and retention: a patient closes their account (sessions, tokens and upcoming
//! visits end at once), the anonymiser erases the personal data after the grace period (run
//! here with "now" moved on instead of waiting), and the daily retention job removes or
//! blanks rows past their periods while the audit trail stays append-only for everyone else.

use std::process::Stdio;

use chrono::{Duration, NaiveDate, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sovamed::{
    db::models::user::{self, NewUser, Role, User},
    domain::retention,
    emulator::MisFaults,
};

use crate::support::{
    TestApp, browser, csrf_token, doctor_in, free_starts, location, sync_directories,
    with_emulators,
};

const EMAIL: &str = "udalyaev@example.ru";
const PASSWORD: &str = "deletion passphrase 1";
const PHONE: &str = "+79161234001";
const SURNAME: &str = "Удаляев";

/// A patient with every personal field filled in, and names no other row of the test has.
async fn patient(app: &TestApp) -> User {
    let hash = sovamed::auth::password::hash(PASSWORD.to_owned())
        .await
        .expect("hash");
    let mut conn = app.db().await;
    user::insert(
        &mut conn,
        &NewUser {
            email: EMAIL,
            password_hash: &hash,
            full_name: "Удаляев Пётр Сергеевич",
            phone: Some(PHONE),
            birth_date: Some(NaiveDate::from_ymd_opt(1985, 4, 12).expect("date")),
            role: Role::Patient,
            phone_verified_at: Some(Utc::now()),
        },
    )
    .await
    .expect("insert patient")
}

async fn exec(conn: &mut AsyncPgConnection, sql: &str) {
    diesel::sql_query(sql).execute(conn).await.expect(sql);
}

async fn api_status(app: &TestApp, token: &str) -> StatusCode {
    browser()
        .get(app.url("/api/v1/user/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("me")
        .status()
}

async fn refresh_status(app: &TestApp, refresh: &str) -> StatusCode {
    browser()
        .post(app.url("/api/v1/user/refresh"))
        .json(&json!({ "refresh_token": refresh }))
        .send()
        .await
        .expect("refresh")
        .status()
}

async fn delete_account(
    app: &TestApp,
    client: &reqwest::Client,
    csrf: &str,
    password: &str,
) -> (StatusCode, String) {
    let response = client
        .post(app.url("/cabinet/delete"))
        .form(&[("csrf_token", csrf), ("password", password)])
        .send()
        .await
        .expect("POST /cabinet/delete");
    let status = response.status();
    (status, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deletion_request_closes_the_account_at_once_and_erases_it_after_the_grace() {
    let (app, emulators) = with_emulators().await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let starts = free_starts(&app, doctor, branch).await;
    let account = patient(&app).await;
    let id = account.id;

    // The API: an access token and a refresh token; two visits ahead, one with a stored
    // Idempotency-Key answer.
    let login: Value = browser()
        .post(app.url("/api/v1/user/login"))
        .json(&json!({ "email": EMAIL, "password": PASSWORD }))
        .send()
        .await
        .expect("API login")
        .json()
        .await
        .expect("json");
    let token = login["token"].as_str().expect("token").to_owned();
    let refresh = login["refresh_token"].as_str().expect("refresh").to_owned();
    let appointments_before = emulators.control.appointment_count();
    let mut mis_ids = Vec::new();
    for (n, start) in starts[..2].iter().enumerate() {
        let response = browser()
            .post(app.url("/api/v1/records"))
            .bearer_auth(&token)
            .header("idempotency-key", format!("deletion-{n}"))
            .json(&json!({
                "specialist_id": doctor,
                "branch_id": branch,
                "start": start,
                "comment": "Болит колено"
            }))
            .send()
            .await
            .expect("book");
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("json");
        mis_ids.push(body["mis_id"].as_i64().expect("mis id"));
    }
    assert_eq!(
        emulators.control.appointment_count(),
        appointments_before + 2
    );

    // Consents, an SMS code on the phone and its SMS, as registration would leave them.
    let mut conn = app.db().await;
    exec(
        &mut conn,
        &format!(
            "INSERT INTO consents (user_id, text_id, client_ip) \
             SELECT {id}, id, '127.0.0.1' FROM consent_texts"
        ),
    )
    .await;
    exec(
        &mut conn,
        &format!(
            "INSERT INTO phone_verifications (id, phone, purpose, user_id, code_hash, expires_at, client_ip) \
             VALUES ('deletion-code', '{PHONE}', 'phone_change', {id}, 'hash', now() + interval '10 minutes', '127.0.0.1')"
        ),
    )
    .await;
    exec(
        &mut conn,
        &format!(
            "INSERT INTO sms_outbox (kind, phone, body, status) \
             VALUES ('code', '{PHONE}', 'Совамед: код 123456', 'sent')"
        ),
    )
    .await;
    drop(conn);

    // Two browser sessions.
    let cabinet = browser();
    let other = browser();
    for client in [&cabinet, &other] {
        let login = app.log_in(client, EMAIL, PASSWORD).await;
        assert_eq!(login.status(), StatusCode::SEE_OTHER);
    }

    let page = cabinet
        .get(app.url("/cabinet/delete"))
        .send()
        .await
        .expect("GET /cabinet/delete");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("body");
    assert!(html.contains("Удаление учётной записи"), "{html}");
    assert!(html.contains("30 дней"), "the grace is named");
    assert!(html.contains("будут отменены"), "the visits' fate is said");
    let csrf = csrf_token(&html);

    // A wrong password changes nothing.
    let (status, html) = delete_account(&app, &cabinet, &csrf, "not the password").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Неверный пароль"), "{html}");
    let still_open = format!(
        "SELECT count(*) AS n FROM users WHERE id = {id} AND NOT disabled AND deletion_requested_at IS NULL"
    );
    assert_eq!(app.count(&still_open).await, 1);
    let booked =
        format!("SELECT count(*) AS n FROM records WHERE user_id = {id} AND status = 'booked'");
    assert_eq!(app.count(&booked).await, 2);
    assert_eq!(api_status(&app, &token).await, StatusCode::OK);

    // An MIS that cannot cancel leaves the account open too: no visit is left booked for an
    // account nobody can use.
    emulators.control.set_mis_faults(MisFaults {
        http_500: true,
        ..MisFaults::default()
    });
    let (status, html) = delete_account(&app, &cabinet, &csrf, PASSWORD).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{html}");
    assert!(html.contains("Учётная запись не закрыта"), "{html}");
    assert_eq!(app.count(&still_open).await, 1);
    assert_eq!(app.count(&booked).await, 2);
    emulators.control.set_mis_faults(MisFaults::default());

    // The right password: closed now.
    let (status, html) = delete_account(&app, &cabinet, &csrf, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Учётная запись закрыта"), "{html}");
    assert!(html.contains("Отменено предстоящих визитов: 2"), "{html}");
    for client in [&cabinet, &other] {
        let response = client
            .get(app.url("/cabinet"))
            .send()
            .await
            .expect("GET /cabinet");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert!(location(&response).starts_with("/login"));
    }
    assert_eq!(api_status(&app, &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh_status(&app, &refresh).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM refresh_tokens WHERE user_id = {id} AND revoked_at IS NULL"
        ))
        .await,
        0
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM users WHERE id = {id} AND disabled AND deletion_requested_at IS NOT NULL"
        ))
        .await,
        1
    );
    // The visits were cancelled through the ordinary cancel: in the MIS, here, with an SMS.
    assert_eq!(app.count(&booked).await, 0);
    assert_eq!(emulators.control.appointment_count(), appointments_before);
    assert!(
        emulators
            .control
            .appointments()
            .iter()
            .all(|a| !mis_ids.contains(&a.schedid))
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sms_outbox WHERE kind = 'cancelled'")
            .await,
        2
    );
    let audited = |action: &str| {
        format!(
            "SELECT count(*) AS n FROM audit_events WHERE action = '{action}' AND subject = '{id}'"
        )
    };
    assert_eq!(app.count(&audited("account_deletion_requested")).await, 1);

    // Before the grace has passed nothing personal is erased.
    let db = &app.state().db;
    let grace = Duration::days(30);
    let anonymised = retention::anonymise_due(db, grace, Utc::now() + Duration::days(29))
        .await
        .expect("anonymiser");
    assert_eq!(anonymised, 0);
    let personal_in_users = format!(
        "SELECT count(*) AS n FROM users WHERE email = '{EMAIL}' OR full_name LIKE '%{SURNAME}%' \
         OR phone = '{PHONE}' OR (id = {id} AND (birth_date IS NOT NULL OR mis_pcode IS NOT NULL))"
    );
    let personal_in_records = format!(
        "SELECT count(*) AS n FROM records WHERE patient_last_name LIKE '%{SURNAME}%' \
         OR patient_first_name = 'Пётр' OR patient_middle_name IS NOT NULL \
         OR patient_phone = '{PHONE}' OR patient_email = '{EMAIL}' \
         OR patient_birth_date IS NOT NULL OR comment IS NOT NULL OR manage_token_hash IS NOT NULL"
    );
    let personal_in_sms = format!(
        "SELECT count(*) AS n FROM sms_outbox WHERE phone = '{PHONE}' OR body LIKE '%{SURNAME}%' \
         OR body LIKE '%123456%'"
    );
    let personal_in_codes = format!(
        "SELECT count(*) AS n FROM phone_verifications WHERE phone = '{PHONE}' OR user_id = {id}"
    );
    let personal_in_intents = format!(
        "SELECT count(*) AS n FROM booking_intents WHERE request::text LIKE '%{SURNAME}%' \
         OR request::text LIKE '%{PHONE}%' OR request::text LIKE '%{EMAIL}%'"
    );
    let personal_in_answers = format!(
        "SELECT count(*) AS n FROM idempotency_keys WHERE response::text LIKE '%{SURNAME}%' \
         OR scope = 'user:{id}'"
    );
    assert!(app.count(&personal_in_users).await > 0);
    assert_eq!(app.count(&personal_in_records).await, 2);
    assert!(app.count(&personal_in_sms).await > 0);
    assert_eq!(app.count(&personal_in_codes).await, 1);
    assert!(app.count(&personal_in_intents).await > 0);
    assert!(app.count(&personal_in_answers).await > 0);

    // After it, every table has forgotten the patient; the visit facts and the proof of
    // consent stay.
    let anonymised = retention::anonymise_due(db, grace, Utc::now() + Duration::days(31))
        .await
        .expect("anonymiser");
    assert_eq!(anonymised, 1);
    for sql in [
        &personal_in_users,
        &personal_in_records,
        &personal_in_sms,
        &personal_in_codes,
        &personal_in_intents,
        &personal_in_answers,
    ] {
        assert_eq!(app.count(sql).await, 0, "{sql}");
    }
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM users WHERE id = {id} AND email = 'deleted-{id}@invalid' \
             AND full_name = 'Удалённый пользователь' AND phone IS NULL AND birth_date IS NULL \
             AND mis_pcode IS NULL AND password_set_at IS NULL AND disabled \
             AND anonymised_at IS NOT NULL"
        ))
        .await,
        1
    );
    let mis_list = mis_ids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM records WHERE user_id = {id} AND status = 'cancelled' \
             AND specialist_id = {doctor} AND branch_id = {branch} AND mis_id IN ({mis_list}) \
             AND patient_last_name = 'Удалено' AND patient_phone = '+70000000000'"
        ))
        .await,
        2
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sms_outbox WHERE body <> '[удалено]'")
            .await,
        0,
        "every SMS of the patient is blanked, the rows kept"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM consents WHERE user_id = {id} AND withdrawn_at IS NOT NULL"
        ))
        .await,
        2
    );
    assert_eq!(app.count(&audited("account_deletion_requested")).await, 1);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM audit_events WHERE action = 'account_anonymised' \
             AND subject = '{id}' AND details->>'actor' = 'system'"
        ))
        .await,
        1
    );
    let relogin = browser()
        .post(app.url("/api/v1/user/login"))
        .json(&json!({ "email": EMAIL, "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(relogin.status(), StatusCode::UNAUTHORIZED);

    // A second run finds nothing more to do.
    let again = retention::anonymise_due(db, grace, Utc::now() + Duration::days(32))
        .await
        .expect("anonymiser");
    assert_eq!(again, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_retention_job_removes_or_blanks_what_is_past_its_period_and_keeps_the_rest() {
    let app = TestApp::spawn().await;
    let owner = app
        .create_user("tokens@example.ru", "retention passphrase 1", Role::Patient)
        .await;
    // "Now" ten years ahead: the rows below are old only for this run, never for the
    // server's own daily job, which runs at the real time.
    let now = Utc::now() + Duration::days(3650);
    let days_ago = |days: i64| (now - Duration::days(days)).to_rfc3339();
    let hours_ago = |hours: i64| (now - Duration::hours(hours)).to_rfc3339();
    let today = now.date_naive();

    let mut conn = app.db().await;
    exec(
        &mut conn,
        &format!(
            "INSERT INTO audit_events (occurred_at, action, subject) VALUES \
             ('{}', 'test_old', 'old'), ('{}', 'test_new', 'new')",
            days_ago(1100),
            days_ago(1000)
        ),
    )
    .await;
    exec(
        &mut conn,
        &format!(
            "INSERT INTO sms_outbox (kind, phone, body, status, created_at, next_attempt_at) VALUES \
             ('notice', '+79160000001', 'старый текст', 'sent', '{old}', '{old}'), \
             ('notice', '+79160000002', 'новый текст', 'sent', '{new}', '{new}'), \
             ('notice', '+79160000003', 'ждёт отправки', 'pending', '{old}', '2999-01-01T00:00:00Z')",
            old = days_ago(200),
            new = days_ago(100)
        ),
    )
    .await;
    exec(
        &mut conn,
        "INSERT INTO branches (mis_id, name, timezone, source_hash) \
         VALUES (9001, 'Филиал для теста', 'Europe/Moscow', 'test')",
    )
    .await;
    exec(
        &mut conn,
        "INSERT INTO specialists (mis_id, full_name, source_hash) \
         VALUES (9001, 'Врач для теста', 'test')",
    )
    .await;
    exec(
        &mut conn,
        &format!(
            "INSERT INTO schedule_snapshots (specialist_id, branch_id, day, intervals, fetched_at) \
             SELECT s.id, b.id, d.day, '[]'::jsonb, now() \
             FROM specialists s, branches b, (VALUES (DATE '{}'), (DATE '{}')) AS d (day) \
             WHERE s.mis_id = 9001 AND b.mis_id = 9001",
            today - Duration::days(20),
            today - Duration::days(10)
        ),
    )
    .await;
    exec(
        &mut conn,
        &format!(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response, created_at) VALUES \
             ('user:1', 'old', 'hash', 201, '{{}}', '{}'), ('user:1', 'new', 'hash', 201, '{{}}', '{}')",
            hours_ago(50),
            hours_ago(10)
        ),
    )
    .await;
    exec(
        &mut conn,
        &format!(
            "INSERT INTO phone_verifications (id, phone, purpose, code_hash, expires_at, client_ip) VALUES \
             ('old', '+79160000001', 'booking', 'hash', '{}', '127.0.0.1'), \
             ('new', '+79160000002', 'booking', 'hash', '{}', '127.0.0.1')",
            days_ago(2),
            hours_ago(2)
        ),
    )
    .await;
    exec(
        &mut conn,
        &format!(
            "INSERT INTO refresh_tokens (user_id, family, token_hash, session_version, expires_at, revoked_at) VALUES \
             ({id}, 'f1', 'expired-long-ago', 1, '{}', NULL), \
             ({id}, 'f2', 'revoked-long-ago', 1, '{}', '{}'), \
             ({id}, 'f3', 'expired-lately', 1, '{}', NULL)",
            days_ago(8),
            days_ago(-20),
            days_ago(8),
            days_ago(1),
            id = owner.id
        ),
    )
    .await;

    let policy = app.config.retention_policy();
    let report = retention::run(&app.state().db, &policy, now)
        .await
        .expect("retention run");
    assert!(report.audit_events_deleted >= 1, "{report}");
    assert_eq!(report.sms_texts_erased, 1, "{report}");
    assert_eq!(report.schedule_snapshots_deleted, 1, "{report}");
    assert_eq!(report.idempotency_keys_deleted, 1, "{report}");
    assert_eq!(report.phone_verifications_deleted, 1, "{report}");
    assert_eq!(report.refresh_tokens_deleted, 2, "{report}");
    assert_eq!(report.accounts_anonymised, 0, "{report}");

    let kept_snapshot = format!(
        "SELECT count(*) AS n FROM schedule_snapshots WHERE day = DATE '{}'",
        today - Duration::days(10)
    );
    for (sql, expected) in [
        (
            "SELECT count(*) AS n FROM audit_events WHERE action = 'test_old'",
            0,
        ),
        (
            "SELECT count(*) AS n FROM audit_events WHERE action = 'test_new'",
            1,
        ),
        (
            "SELECT count(*) AS n FROM sms_outbox WHERE phone = '+79160000001' AND body = '[удалено]' AND status = 'sent'",
            1,
        ),
        (
            "SELECT count(*) AS n FROM sms_outbox WHERE body = 'новый текст'",
            1,
        ),
        (
            "SELECT count(*) AS n FROM sms_outbox WHERE body = 'ждёт отправки'",
            1,
        ),
        ("SELECT count(*) AS n FROM sms_outbox", 3),
        ("SELECT count(*) AS n FROM schedule_snapshots", 1),
        (kept_snapshot.as_str(), 1),
        (
            "SELECT count(*) AS n FROM idempotency_keys WHERE key = 'new'",
            1,
        ),
        ("SELECT count(*) AS n FROM idempotency_keys", 1),
        (
            "SELECT count(*) AS n FROM phone_verifications WHERE id = 'new'",
            1,
        ),
        ("SELECT count(*) AS n FROM phone_verifications", 1),
        (
            "SELECT count(*) AS n FROM refresh_tokens WHERE family = 'f3'",
            1,
        ),
        ("SELECT count(*) AS n FROM refresh_tokens", 1),
        (
            "SELECT count(*) AS n FROM audit_events WHERE action = 'retention_run' \
             AND details->>'actor' = 'system' AND details->>'sms_texts_erased' = '1'",
            1,
        ),
    ] {
        assert_eq!(app.count(sql).await, expected, "{sql}");
    }

    // Outside the retention job the trail is still append-only: a DELETE without the
    // setting is refused, so is one of a row after the cutoff set, and UPDATE always.
    let far = (now + Duration::days(1)).to_rfc3339();
    let refused = diesel::sql_query("DELETE FROM audit_events WHERE action = 'test_new'")
        .execute(&mut conn)
        .await;
    assert!(refused.is_err(), "a DELETE without the setting");
    let before_row = days_ago(1050);
    let refused = conn
        .transaction(async |conn| {
            diesel::sql_query("SELECT set_config('sovamed.audit_retention_cutoff', $1, true)")
                .bind::<diesel::sql_types::Text, _>(&before_row)
                .execute(conn)
                .await?;
            diesel::sql_query("DELETE FROM audit_events WHERE action = 'test_new'")
                .execute(conn)
                .await
        })
        .await;
    assert!(refused.is_err(), "a DELETE of a row after the cutoff");
    let refused = conn
        .transaction(async |conn| {
            diesel::sql_query("SELECT set_config('sovamed.audit_retention_cutoff', $1, true)")
                .bind::<diesel::sql_types::Text, _>(&far)
                .execute(conn)
                .await?;
            diesel::sql_query(
                "UPDATE audit_events SET subject = 'changed' WHERE action = 'test_new'",
            )
            .execute(conn)
            .await
        })
        .await;
    assert!(refused.is_err(), "an UPDATE, even with the setting");
    // Once the transaction that set it has ended, the setting reads empty: still refused.
    conn.transaction(async |conn| {
        diesel::sql_query("SELECT set_config('sovamed.audit_retention_cutoff', $1, true)")
            .bind::<diesel::sql_types::Text, _>(&far)
            .execute(conn)
            .await
    })
    .await
    .expect("set and commit");
    let refused = diesel::sql_query("DELETE FROM audit_events WHERE action = 'test_new'")
        .execute(&mut conn)
        .await;
    assert!(
        refused.is_err(),
        "a DELETE after the setting's transaction ended"
    );
    drop(conn);
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM audit_events WHERE action = 'test_new' AND subject = 'new'"
        )
        .await,
        1
    );

    // The command line runs the same job once and prints its counts.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sovamed"))
        .args(["retention", "run"])
        .env("DATABASE_URL", &app.config.database_url)
        .env("REDIS_PREFIX", &app.config.redis_prefix)
        .env("APP_ENV", "development")
        .stdin(Stdio::null())
        .output()
        .expect("sovamed retention run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("audit events deleted: "), "{printed}");
    assert!(printed.contains("accounts anonymised: 0"), "{printed}");
    // At least the two runs of this test (the server's own daily job may have run too).
    assert!(
        app.count("SELECT count(*) AS n FROM audit_events WHERE action = 'retention_run'")
            .await
            >= 2
    );
}
