//! The holes a security test of the running server found (issue 14): schedule reads of any
//! date, `/metrics` open to anyone, personal data in logs, memory under concurrent logins.
//! The last two run the real binary in production mode, as a deployment would.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    TestApp, browser, doctor_in, eventually,
    served::{Served, production_env},
    sync_directories, with_emulators_and,
};

#[tokio::test(flavor = "multi_thread")]
async fn schedule_reads_stay_inside_the_window_and_uncached_reads_are_limited() {
    let (app, emulators) = with_emulators_and(|config| {
        config.schedule_uncached_reads_per_ip_minute = 3;
        config.schedule_horizon_days = 30;
    })
    .await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let read = |from: String, to: String| {
        let url = app.url(&format!(
            "/api/v1/specialist/schedule?specialist_id={doctor}&branch_id={branch}&date_from={from}&date_to={to}"
        ));
        async move { browser().get(url).send().await.expect("schedule") }
    };
    let today = chrono::Utc::now().date_naive();
    let day = |offset: i64| (today + chrono::Duration::days(offset)).to_string();
    emulators.control.reset_mis_calls();
    let snapshots_before = app
        .count("SELECT count(*) AS n FROM schedule_snapshots")
        .await;
    for (from, to, field) in [
        (
            "9999-01-01".to_owned(),
            "9999-01-01".to_owned(),
            "date_from",
        ),
        (
            "0001-01-01".to_owned(),
            "0001-01-02".to_owned(),
            "date_from",
        ),
        (day(-5), day(-5), "date_from"),
        (day(25), day(40), "date_to"),
    ] {
        let response = read(from.clone(), to).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{from}"
        );
        let body: Value = response.json().await.expect("json");
        assert!(
            body["error"]["fields"][field]
                .as_str()
                .is_some_and(|m| m.contains("Расписание доступно")),
            "{body}"
        );
    }
    assert_eq!(
        emulators.control.mis_calls("SCHEDULE"),
        0,
        "no refused read reaches the MIS"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM schedule_snapshots")
            .await,
        snapshots_before,
        "nor stores a snapshot"
    );

    // Three reads that miss the cache are allowed a minute; a fourth is refused, while a
    // read of a day already cached still answers.
    for offset in 1..=3 {
        let response = read(day(offset), day(offset)).await;
        assert_eq!(response.status(), StatusCode::OK, "day +{offset}");
    }
    let refused = read(day(4), day(4)).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    let cached = read(day(2), day(2)).await;
    assert_eq!(
        cached.status(),
        StatusCode::OK,
        "a cached day is never limited"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_need_the_token_and_production_without_one_serves_none() {
    let app = TestApp::spawn_with(|config| {
        config.metrics_token = Some("scrape-token-for-tests-0123456789".into());
    })
    .await;
    let client = browser();
    let open = client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(open.status(), StatusCode::UNAUTHORIZED);
    let wrong = client
        .get(app.url("/metrics"))
        .bearer_auth("scrape-token-for-tests-012345678X")
        .send()
        .await
        .expect("metrics");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = client
        .get(app.url("/metrics"))
        .bearer_auth("scrape-token-for-tests-0123456789")
        .send()
        .await
        .expect("metrics");
    assert_eq!(right.status(), StatusCode::OK);
    assert!(right.text().await.expect("body").contains("http_requests"));

    let production =
        TestApp::spawn_with(|config| config.app_env = sovamed::config::AppEnv::Production).await;
    let hidden = client
        .get(production.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
}

async fn post_json(url: String, body: &Value, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = browser().post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("post");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn no_personal_data_in_logs_at_trace_level_or_in_metric_labels() {
    let (_app, emulators) = with_emulators_and(|_| {}).await;
    let server = Served::start(&production_env(&emulators).await);
    // The periodic sync runs at start: wait for the doctors.
    let client = browser();
    let mut doctors = Value::Null;
    for _ in 0..200 {
        doctors = client
            .get(server.url("/api/v1/specialists"))
            .send()
            .await
            .expect("specialists")
            .json()
            .await
            .expect("json");
        if doctors["total"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let doctor = &doctors["items"][0];
    let (doctor_id, branch_id) = (
        doctor["id"].as_i64().expect("doctor"),
        doctor["branches"][0]["id"].as_i64().expect("branch"),
    );
    let schedule: Value = client
        .get(server.url(&format!(
            "/api/v1/specialist/schedule?specialist_id={doctor_id}&branch_id={branch_id}&date_from={}&date_to={}",
            chrono::Utc::now().date_naive(),
            chrono::Utc::now().date_naive() + chrono::Duration::days(13)
        )))
        .send()
        .await
        .expect("schedule")
        .json()
        .await
        .expect("json");
    let starts: Vec<String> = schedule["days"]
        .as_array()
        .expect("days")
        .iter()
        .flat_map(|d| d["slots"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["free"] == true)
        .map(|s| s["start"].as_str().expect("start").to_owned())
        .collect();

    // A visitor proves a phone and books without an account.
    let phone = "+79165550198";
    let (status, started) = post_json(
        server.url("/api/v1/phone-verifications"),
        &json!({"phone": phone, "purpose": "booking"}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let gateway = emulators.control.clone();
    assert!(
        eventually(15, || gateway
            .sms_messages()
            .iter()
            .any(|m| m.to == "79165550198"))
        .await,
        "the code SMS"
    );
    let code = gateway
        .sms_messages()
        .into_iter()
        .find(|m| m.to == "79165550198")
        .expect("sms")
        .text
        .split_whitespace()
        .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
        .expect("code")
        .to_owned();
    let id = started["verification_id"].as_str().expect("id");
    let (status, proof) = post_json(
        server.url(&format!("/api/v1/phone-verifications/{id}/confirm")),
        &json!({"code": code}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{proof}");
    let phone_token = proof["phone_token"].as_str().expect("proof").to_owned();
    let (status, booked) = post_json(
        server.url("/api/v1/specialist/anonymous-reserve"),
        &json!({
            "specialist_id": doctor_id,
            "branch_id": branch_id,
            "start": starts[0],
            "patient": {"last_name": "Логова", "first_name": "Мария", "middle_name": "Ивановна",
                        "phone": phone, "birth_date": "1984-06-07", "email": "maria.logova@example.ru"},
            "comment": "Первичный приём",
            "consent": {"personal_data": true, "health_data": true},
            "phone_token": phone_token,
        }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    // Its visit link, opened: the token is in the path.
    let visit_sms = eventually(15, || {
        gateway
            .sms_messages()
            .iter()
            .any(|m| m.to == "79165550198" && m.text.contains("/v/"))
    })
    .await;
    assert!(visit_sms, "the booking SMS with the link");
    let visit_token = gateway
        .sms_messages()
        .into_iter()
        .find_map(|m| {
            m.text.split("/v/").nth(1).map(|t| {
                t.chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect::<String>()
            })
        })
        .expect("link");
    let page = client
        .get(server.url(&format!("/v/{visit_token}")))
        .send()
        .await
        .expect("visit page");
    assert_eq!(page.status(), StatusCode::OK);

    // Logins through the API: a wrong password, then a right one with its tokens.
    let (status, _) = post_json(
        server.url("/api/v1/user/login"),
        &json!({"email": "maria.logova@example.ru", "password": "not her password at all"}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let bad_token = client
        .get(server.url("/api/v1/user/me"))
        .bearer_auth("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2VjcmV0LXNpZ25hdHVyZQ")
        .send()
        .await
        .expect("me");
    assert_eq!(bad_token.status(), StatusCode::UNAUTHORIZED);
    // Let the outbox send and log.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let metrics = client
        .get(server.url("/metrics"))
        .bearer_auth("scrape-token-for-tests-0123456789")
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    // The booking's steps were timed, each under its fixed name.
    for step in [
        "checks",
        "slot_lock",
        "patient_card",
        "intent",
        "card_noted",
        "reserve",
        "record",
        "release",
    ] {
        let series = format!("booking_step_duration_seconds_count{{step=\"{step}\"}} 1");
        assert!(metrics.contains(&series), "missing {series}");
    }
    // Their buckets go below a millisecond, where most of the app's own steps fall.
    assert!(
        metrics.contains("booking_step_duration_seconds_bucket{step=\"checks\",le=\"0.00025\"}"),
        "sub-millisecond step buckets"
    );
    let log = server.log();
    assert!(log.lines().count() > 50, "trace logging is on: {log}");
    assert!(
        log.lines()
            .all(|l| l.trim_start().starts_with('{') || l.contains("serving on")),
        "production logs are JSON"
    );
    // A line's own timestamp (its microseconds) may spell any six digits, like a code: it is
    // cut off before looking, and a secret must stand alone, not inside a longer number.
    let log: String = log
        .lines()
        .map(|l| match (l.find("\"timestamp\":\""), l.find("Z\",")) {
            (Some(from), Some(to)) if to > from => format!("{}{}", &l[..from], &l[to + 3..]),
            _ => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let stands_alone = |line: &str, secret: &str| {
        line.match_indices(secret).any(|(at, _)| {
            let before = line[..at].chars().next_back();
            let after = line[at + secret.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_digit())
                && !after.is_some_and(|c| c.is_ascii_digit())
        })
    };
    for secret in [
        "maria.logova@example.ru",
        "79165550198",
        "9165550198",
        "916) 555",
        "Логова",
        "Мария",
        phone_token.as_str(),
        code.as_str(),
        visit_token.as_str(),
        "c2VjcmV0LXNpZ25hdHVyZQ",
        "not her password",
    ] {
        let in_log: Vec<&str> = log.lines().filter(|l| stands_alone(l, secret)).collect();
        assert!(in_log.is_empty(), "{secret:?} in the log: {in_log:#?}");
        assert!(!metrics.contains(secret), "{secret:?} in a metric");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_concurrent_logins_keep_the_server_under_its_memory_bound() {
    // Two cores × 19 MiB of argon2 memory, plus connections and buffers; the unbounded
    // server grew 1.8 GB here, the bounded one on the blocking pool 215 MiB.
    const BOUND_MIB: u64 = 80;
    let (_app, emulators) = with_emulators_and(|_| {}).await;
    let mut env = production_env(&emulators).await;
    env.retain(|(name, _)| *name != "RUST_LOG");
    // Only the logins: no periodic sync growing the process meanwhile.
    env.push(("SYNC_INTERVAL_MINUTES", "0".into()));
    env.push(("LOGIN_LIMIT_PER_IP", "1000".into()));
    env.push(("LOGIN_LIMIT_PER_ACCOUNT", "1000".into()));
    let database_url = env
        .iter()
        .find(|(n, _)| *n == "DATABASE_URL")
        .map(|(_, v)| v.clone())
        .expect("db");
    let server = Served::start(&env);
    // An account to log into, written straight to the server's database.
    let hash = sovamed::auth::password::hash("a perfectly fine passphrase".to_owned())
        .await
        .expect("hash");
    crate::support::count_rows(
        &database_url,
        &format!(
            "WITH u AS (INSERT INTO users (email, password_hash, full_name, role) VALUES \
             ('load@example.ru', '{hash}', 'Нагрузкин Нил', 'patient') RETURNING 1) SELECT count(*) AS n FROM u"
        ),
    )
    .await;
    let before = server.rss_kib();
    let logins = (0..100).map(|i| {
        let url = server.url("/api/v1/user/login");
        async move {
            let password = if i % 2 == 0 {
                "a perfectly fine passphrase"
            } else {
                "a wrong passphrase entirely"
            };
            browser()
                .post(url)
                .json(&json!({"email": "load@example.ru", "password": password}))
                .send()
                .await
                .expect("login")
                .status()
        }
    });
    let statuses = futures_util::future::join_all(logins).await;
    let after = server.rss_kib();
    assert!(
        statuses
            .iter()
            .all(|s| matches!(s.as_u16(), 200 | 401 | 503)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&StatusCode::OK),
        "some logins got through"
    );
    let grown_mib = after.saturating_sub(before) / 1024;
    assert!(
        grown_mib < BOUND_MIB,
        "resident memory grew {grown_mib} MiB under 100 concurrent logins (bound {BOUND_MIB} MiB; before {before} KiB, after {after} KiB)"
    );
}
