//! Login throttling per account and per client address.

use reqwest::StatusCode;
use sovamed::db::models::user::Role;

use crate::support::{TestApp, browser, csrf_token};

const PASSWORD: &str = "the right passphrase";

#[tokio::test(flavor = "multi_thread")]
async fn the_sixth_wrong_password_is_throttled_and_the_right_one_too() {
    let app = TestApp::spawn().await;
    app.create_user("anna@example.ru", PASSWORD, Role::Patient)
        .await;
    let client = browser();
    for attempt in 1..=5 {
        let response = app.log_in(&client, "anna@example.ru", "wrong").await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "attempt {attempt} is an ordinary failure"
        );
    }
    let before = app.state().passwords.verifications();
    let sixth = app.log_in(&client, "anna@example.ru", "wrong").await;
    assert_eq!(sixth.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = sixth.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(
        (1..=15 * 60).contains(&retry_after),
        "Retry-After {retry_after}"
    );

    let right = app.log_in(&client, "anna@example.ru", PASSWORD).await;
    assert_eq!(
        right.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the right password is refused while throttled"
    );
    assert_eq!(
        app.state().passwords.verifications(),
        before,
        "no argon2 runs while throttled"
    );

    // The API shares the counter.
    let api = browser()
        .post(app.url("/api/v1/user/login"))
        .json(&serde_json::json!({"email": "anna@example.ru", "password": PASSWORD}))
        .send()
        .await
        .expect("API login");
    assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(api.headers().contains_key("retry-after"));
    let body: serde_json::Value = api.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");

    let mut conn = app.db().await;
    let audited =
        sovamed::db::models::audit_event::count(&mut conn, "login_throttled", "anna@example.ru")
            .await
            .expect("count");
    assert!(audited >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lock_is_temporary() {
    let app =
        TestApp::spawn_with(|config| config.login_limit_window = std::time::Duration::from_secs(8))
            .await;
    app.create_user("anna@example.ru", PASSWORD, Role::Patient)
        .await;
    let client = browser();
    for _ in 0..6 {
        app.log_in(&client, "anna@example.ru", "wrong").await;
    }
    assert_eq!(
        app.log_in(&client, "anna@example.ru", PASSWORD)
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    tokio::time::sleep(std::time::Duration::from_millis(8500)).await;
    assert_eq!(
        app.log_in(&client, "anna@example.ru", PASSWORD)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_parallel_wrong_passwords_run_at_most_the_threshold_of_verifications() {
    let app = TestApp::spawn().await;
    app.create_user("anna@example.ru", PASSWORD, Role::Patient)
        .await;
    let client = browser();
    let token = csrf_token(
        &client
            .get(app.url("/login"))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("body"),
    );
    let before = app.state().passwords.verifications();

    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (client, url, token) = (client.clone(), app.url("/login"), token.clone());
        attempts.spawn(async move {
            client
                .post(url)
                .form(&[
                    ("csrf_token", token.as_str()),
                    ("email", "anna@example.ru"),
                    ("password", "wrong"),
                ])
                .send()
                .await
                .expect("login")
                .status()
        });
    }
    let mut throttled = 0;
    while let Some(status) = attempts.join_next().await {
        if status.expect("task") == StatusCode::TOO_MANY_REQUESTS {
            throttled += 1;
        }
    }
    let ran = app.state().passwords.verifications() - before;
    assert!(
        ran <= 5,
        "{ran} argon2 verifications for 50 parallel attempts"
    );
    assert_eq!(throttled, 45);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_address_trying_many_accounts_is_throttled_and_forwarded_for_is_not_believed() {
    let app = TestApp::spawn_with(|config| config.login_limit_per_ip = 10).await;
    let client = browser();
    let token = csrf_token(
        &client
            .get(app.url("/login"))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("body"),
    );
    let mut statuses = Vec::new();
    for n in 0..12 {
        let response = client
            .post(app.url("/login"))
            .header("x-forwarded-for", format!("1.2.3.{n}"))
            .form(&[
                ("csrf_token", token.as_str()),
                ("email", &format!("user{n}@example.ru")),
                ("password", "guess"),
            ])
            .send()
            .await
            .expect("login");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(&statuses[..10], &[200; 10]);
    assert_eq!(
        &statuses[10..],
        &[429, 429],
        "X-Forwarded-For from an untrusted peer changes nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_for_from_a_trusted_proxy_names_the_client() {
    let app = TestApp::spawn_with(|config| {
        config.login_limit_per_ip = 3;
        config.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
    })
    .await;
    let client = browser();
    let token = csrf_token(
        &client
            .get(app.url("/login"))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("body"),
    );
    for n in 0..6 {
        let response = client
            .post(app.url("/login"))
            .header("x-forwarded-for", format!("198.51.100.{n}"))
            .form(&[
                ("csrf_token", token.as_str()),
                ("email", &format!("user{n}@example.ru")),
                ("password", "guess"),
            ])
            .send()
            .await
            .expect("login");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "each client address has its own counter"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_concurrent_logins_never_run_more_hashes_than_cores() {
    let app = TestApp::spawn_with(|config| {
        config.login_limit_per_ip = 10_000;
        config.login_limit_per_account = 10_000;
    })
    .await;
    app.create_user("crowd@example.ru", PASSWORD, Role::Patient)
        .await;
    let client = browser();
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let request = client
            .post(app.url("/api/v1/user/login"))
            .json(&serde_json::json!({"email": "crowd@example.ru", "password": "wrong guess"}));
        attempts.spawn(request.send());
    }
    let answers = attempts.join_all().await;
    let mut busy = 0;
    for answer in answers {
        let answer = answer.expect("answer");
        match answer.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(answer.headers()["retry-after"], "1");
                let body: serde_json::Value = answer.json().await.expect("json");
                assert_eq!(body["error"]["code"], "busy");
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let passwords = &app.state().passwords;
    assert!(
        passwords.peak_concurrency() <= passwords.cores(),
        "{} argon2 runs at once on {} cores",
        passwords.peak_concurrency(),
        passwords.cores()
    );
    assert!(busy > 0, "a hundred at once overflow the queue");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ipv6_client_cannot_rotate_its_address_within_its_prefix() {
    let app = TestApp::spawn_with(|config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
        config.login_limit_per_ip = 3;
    })
    .await;
    let attempt = async |from: &str, n: u32| {
        browser()
            .post(app.url("/api/v1/user/login"))
            .header("x-forwarded-for", from)
            .json(&serde_json::json!({"email": format!("nobody{n}@example.ru"), "password": "x"}))
            .send()
            .await
            .expect("login")
            .status()
    };
    for (n, host) in ["::a", "::b", "::c"].into_iter().enumerate() {
        let from = format!("2001:db8:1:2{host}");
        assert_eq!(
            attempt(&from, u32::try_from(n).expect("n")).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        attempt("2001:db8:1:2:ffff:1:2:3", 9).await,
        StatusCode::TOO_MANY_REQUESTS,
        "another address of the same /64 shares the count"
    );
    assert_eq!(
        attempt("2001:db8:1:3::a", 10).await,
        StatusCode::UNAUTHORIZED,
        "another /64 is another client"
    );
}
