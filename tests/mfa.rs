//! The second factor of staff and admin sign-in (TOTP and recovery codes) on the pages and in
//! the API, and the list of active sessions with ending them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::{Client, StatusCode, redirect::Policy};
use serde_json::{Value, json};
use sovamed::db::models::user::Role;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::support::{TestApp, browser, csrf_token, location, session_cookie};

const PASSWORD: &str = "a perfectly fine passphrase";
const FIREFOX: &str =
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

/// An app where staff and admins sign in with a second factor (the production default).
async fn mfa_app() -> TestApp {
    TestApp::spawn_with(|config| config.mfa_required_roles = vec![Role::Staff, Role::Admin]).await
}

/// A browser-like client that introduces itself with `user_agent`.
fn browser_as(user_agent: &str) -> Client {
    sovamed::integrations::http::install_crypto_provider();
    Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .user_agent(user_agent)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// What an authenticator app holding `secret` computes (SHA-1, 6 digits, 30 s).
fn authenticator(secret: &str) -> TOTP {
    let bytes = Secret::Encoded(secret.to_owned())
        .to_bytes()
        .expect("base32 secret");
    TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes).expect("totp")
}

/// The app's code `steps` time steps from now (negative: in the past).
fn code_at(totp: &TOTP, steps: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    totp.generate((now + steps * 30) as u64)
}

/// A code that is not `code`: its first digit moved on by one.
fn wrong_code(code: &str) -> String {
    let mut digits: Vec<u8> = code.bytes().collect();
    digits[0] = b'0' + (digits[0] - b'0' + 1) % 10;
    String::from_utf8(digits).expect("digits")
}

/// The secret the setup page shows for typing by hand, without its spaces.
fn secret_on(html: &str) -> String {
    let marker = "class=\"secret\">";
    let start = html.find(marker).expect("the setup page shows the secret") + marker.len();
    let end = start + html[start..].find("</code>").expect("end of the secret");
    html[start..end].replace(' ', "")
}

/// The recovery codes on the page shown after enrolment.
fn recovery_codes_on(html: &str) -> Vec<String> {
    html.split("<li><code>")
        .skip(1)
        .map(|rest| rest.split("</code>").next().expect("code").to_owned())
        .collect()
}

async fn get(app: &TestApp, client: &Client, path: &str) -> reqwest::Response {
    client.get(app.url(path)).send().await.expect("GET")
}

async fn post_form(
    app: &TestApp,
    client: &Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client
        .post(app.url(path))
        .form(form)
        .send()
        .await
        .expect("POST")
}

async fn api_login(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let response = browser()
        .post(app.url("/api/v1/user/login"))
        .json(&body)
        .send()
        .await
        .expect("API login");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_enrol_a_second_factor_before_anything_and_each_code_works_once() {
    let app = mfa_app().await;
    let email = "desk@example.ru";
    app.create_user(email, PASSWORD, Role::Staff).await;

    // The password alone opens nothing: every staff page sends the session to the setup.
    let first = browser();
    let login = app.log_in(&first, email, PASSWORD).await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&login), "/mfa/setup");
    for path in ["/staff", "/staff/records", "/account/sessions"] {
        let response = get(&app, &first, path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            location(&response),
            format!("/mfa/setup?next={}", path.replace('/', "%2F")),
            "{path}"
        );
    }
    // Nor the API: without a second factor there is no token to ask with.
    let (status, body) = api_login(&app, json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "mfa_required");
    assert!(body["token"].is_null());
    let (status, body) = api_login(
        &app,
        json!({"email": email, "password": PASSWORD, "otp": "123456"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        body["error"]["code"], "mfa_required",
        "no factor is set up yet"
    );

    // The setup page: a QR code as inline SVG the CSP allows, and the secret in text, the
    // same on a reload.
    let setup = get(&app, &first, "/mfa/setup?next=%2Fstaff").await;
    assert_eq!(setup.status(), StatusCode::OK);
    let html = setup.text().await.expect("html");
    let svg_start = html.find("<svg class=\"qr\"").expect("an inline QR code");
    let svg_end = svg_start + html[svg_start..].find("</svg>").expect("end of the SVG");
    assert!(
        !html[svg_start..svg_end].contains("style"),
        "no inline style"
    );
    assert!(!html.contains("<?xml"));
    let secret = secret_on(&html);
    assert_eq!(secret.len(), 32, "160 bits in base32");
    let again = get(&app, &first, "/mfa/setup")
        .await
        .text()
        .await
        .expect("html");
    assert_eq!(
        secret_on(&again),
        secret,
        "a reload keeps the secret scanned"
    );
    let totp = authenticator(&secret);
    let token = csrf_token(&html);

    let right = code_at(&totp, 0);
    let wrong = wrong_code(&right);
    let refused = post_form(
        &app,
        &first,
        "/mfa/setup",
        &[
            ("csrf_token", token.as_str()),
            ("code", wrong.as_str()),
            ("next", "/staff"),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text()
            .await
            .expect("html")
            .contains("Код не подошёл")
    );
    assert_eq!(
        get(&app, &first, "/staff").await.status(),
        StatusCode::SEE_OTHER,
        "a wrong code passes nothing"
    );

    let enrolled = post_form(
        &app,
        &first,
        "/mfa/setup",
        &[
            ("csrf_token", token.as_str()),
            ("code", right.as_str()),
            ("next", "/staff"),
        ],
    )
    .await;
    assert_eq!(enrolled.status(), StatusCode::OK);
    assert!(
        session_cookie(&enrolled).is_some(),
        "the second factor renews the session id"
    );
    let html = enrolled.text().await.expect("html");
    assert!(html.contains("Второй фактор подключён"));
    assert!(
        html.contains("class=\"button\" href=\"/staff\""),
        "«Продолжить» goes to next"
    );
    let recovery = recovery_codes_on(&html);
    assert_eq!(recovery.len(), 10, "{html}");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM mfa_recovery_codes WHERE used_at IS NULL")
            .await,
        10
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM mfa_recovery_codes WHERE code_hash LIKE '%{}%'",
            recovery[0].replace('-', "")
        ))
        .await,
        0,
        "stored hashed"
    );
    assert_eq!(get(&app, &first, "/staff").await.status(), StatusCode::OK);
    assert_eq!(
        get(&app, &first, "/account/sessions").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get(&app, &first, "/mfa").await.status(),
        StatusCode::SEE_OTHER,
        "a session that passed is sent on"
    );

    // A second login: the code step. The enrolment's code again (reused) and a code of three
    // steps ago (outside the window) are refused; a recovery code works.
    let second = browser();
    let login = app.log_in(&second, email, PASSWORD).await;
    assert_eq!(location(&login), "/mfa");
    let desk = get(&app, &second, "/staff").await;
    assert_eq!(location(&desk), "/mfa?next=%2Fstaff");
    let page = get(&app, &second, "/mfa").await;
    assert_eq!(page.status(), StatusCode::OK);
    let token = csrf_token(&page.text().await.expect("html"));
    for (what, code) in [("reused", right.clone()), ("stale", code_at(&totp, -3))] {
        let refused = post_form(
            &app,
            &second,
            "/mfa",
            &[
                ("csrf_token", token.as_str()),
                ("code", code.as_str()),
                ("next", ""),
            ],
        )
        .await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{what}");
        assert_eq!(
            get(&app, &second, "/staff").await.status(),
            StatusCode::SEE_OTHER,
            "{what}"
        );
    }
    let passed = post_form(
        &app,
        &second,
        "/mfa",
        &[
            ("csrf_token", token.as_str()),
            ("code", recovery[0].as_str()),
            ("next", ""),
        ],
    )
    .await;
    assert_eq!(passed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&passed), "/staff", "the role's home without next");
    assert_eq!(get(&app, &second, "/staff").await.status(), StatusCode::OK);

    // The same recovery code once more: refused; another one, typed in lower case, works.
    let third = browser();
    app.log_in(&third, email, PASSWORD).await;
    let token = csrf_token(&get(&app, &third, "/mfa").await.text().await.expect("html"));
    let reused = post_form(
        &app,
        &third,
        "/mfa",
        &[
            ("csrf_token", token.as_str()),
            ("code", recovery[0].as_str()),
            ("next", ""),
        ],
    )
    .await;
    assert_eq!(reused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let lower = recovery[1].to_lowercase();
    let passed = post_form(
        &app,
        &third,
        "/mfa",
        &[
            ("csrf_token", token.as_str()),
            ("code", lower.as_str()),
            ("next", "/staff/records"),
        ],
    )
    .await;
    assert_eq!(location(&passed), "/staff/records");

    // The API with `otp`: a fresh code works once; the token opens the staff API, and its
    // refresh token keeps working without the second factor again.
    let otp = code_at(&totp, 1);
    let (status, body) = api_login(
        &app,
        json!({"email": email, "password": PASSWORD, "otp": otp}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let records = browser()
        .get(app.url("/api/v1/records"))
        .bearer_auth(body["token"].as_str().expect("token"))
        .send()
        .await
        .expect("records");
    assert_eq!(records.status(), StatusCode::OK);
    let refreshed = browser()
        .post(app.url("/api/v1/user/refresh"))
        .json(&json!({"refresh_token": body["refresh_token"]}))
        .send()
        .await
        .expect("refresh");
    assert_eq!(refreshed.status(), StatusCode::OK);
    let (status, body) = api_login(
        &app,
        json!({"email": email, "password": PASSWORD, "otp": otp}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        body["error"]["code"], "invalid_credentials",
        "a reused code is refused like a wrong password"
    );
    let (status, _) = api_login(
        &app,
        json!({"email": email, "password": PASSWORD, "otp": recovery[2]}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a recovery code works in the API too"
    );

    for (action, at_least) in [
        ("mfa_enrolled", 1),
        ("mfa_passed", 1),
        ("mfa_failed", 4),
        ("mfa_recovery_used", 3),
    ] {
        let n = app
            .count(&format!(
                "SELECT count(*) AS n FROM audit_events WHERE action = '{action}'"
            ))
            .await;
        assert!(n >= at_least, "{action}: {n}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_codes_are_limited_per_account() {
    let app = mfa_app().await;
    app.create_user("guess@example.ru", PASSWORD, Role::Admin)
        .await;
    let client = browser();
    app.log_in(&client, "guess@example.ru", PASSWORD).await;
    let html = get(&app, &client, "/mfa/setup")
        .await
        .text()
        .await
        .expect("html");
    let totp = authenticator(&secret_on(&html));
    let token = csrf_token(&html);
    let wrong = wrong_code(&code_at(&totp, 0));
    for _ in 0..5 {
        let refused = post_form(
            &app,
            &client,
            "/mfa/setup",
            &[
                ("csrf_token", token.as_str()),
                ("code", wrong.as_str()),
                ("next", ""),
            ],
        )
        .await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    // The sixth attempt is refused even with the right code.
    let right = code_at(&totp, 0);
    let limited = post_form(
        &app,
        &client,
        "/mfa/setup",
        &[
            ("csrf_token", token.as_str()),
            ("code", right.as_str()),
            ("next", ""),
        ],
    )
    .await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(
        get(&app, &client, "/admin").await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sessions_page_lists_logins_and_ending_one_logs_that_client_out() {
    let app = TestApp::spawn().await;
    app.create_user("anna@example.ru", PASSWORD, Role::Patient)
        .await;
    let firefox = browser_as(FIREFOX);
    let chrome = browser_as(CHROME);
    for client in [&firefox, &chrome] {
        let login = app.log_in(client, "anna@example.ru", PASSWORD).await;
        assert_eq!(location(&login), "/cabinet");
    }

    let page = get(&app, &firefox, "/account/sessions").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains("Firefox, Linux"), "{html}");
    assert!(html.contains("Chrome, Windows"), "{html}");
    assert!(html.contains("127.0.0.1"));
    assert_eq!(html.matches("Этот сеанс").count(), 1, "{html}");
    let own = app
        .count("SELECT id AS n FROM login_sessions WHERE device = 'Firefox, Linux'")
        .await;
    let other = app
        .count("SELECT id AS n FROM login_sessions WHERE device = 'Chrome, Windows'")
        .await;
    assert!(html.contains(&format!("/account/sessions/{other}/end")));
    assert!(
        !html.contains(&format!("/account/sessions/{own}/end")),
        "this session has no «Завершить»"
    );
    let token = csrf_token(&html);

    // This session cannot be ended from its own list; the other one can.
    let own_end = post_form(
        &app,
        &firefox,
        &format!("/account/sessions/{own}/end"),
        &[("csrf_token", token.as_str())],
    )
    .await;
    assert_eq!(location(&own_end), "/account/sessions?done=none");
    let without_token = post_form(
        &app,
        &firefox,
        &format!("/account/sessions/{other}/end"),
        &[],
    )
    .await;
    assert_eq!(without_token.status(), StatusCode::FORBIDDEN, "CSRF");
    let ended = post_form(
        &app,
        &firefox,
        &format!("/account/sessions/{other}/end"),
        &[("csrf_token", token.as_str())],
    )
    .await;
    assert_eq!(location(&ended), "/account/sessions?done=ended");
    let refused = get(&app, &chrome, "/cabinet").await;
    assert_eq!(
        refused.status(),
        StatusCode::SEE_OTHER,
        "the ended session is out"
    );
    assert_eq!(location(&refused), "/login?next=%2Fcabinet");
    assert_eq!(
        get(&app, &firefox, "/cabinet").await.status(),
        StatusCode::OK
    );
    let html = get(&app, &firefox, "/account/sessions")
        .await
        .text()
        .await
        .expect("html");
    assert!(!html.contains("Chrome, Windows"), "{html}");
    assert!(html.contains("Других действующих входов нет"));
    assert_eq!(
        app.count("SELECT count(*) AS n FROM audit_events WHERE action = 'session_ended'")
            .await,
        1
    );

    // «Завершить все, кроме этого».
    app.log_in(&chrome, "anna@example.ru", PASSWORD).await;
    assert_eq!(
        get(&app, &chrome, "/cabinet").await.status(),
        StatusCode::OK
    );
    let all = post_form(
        &app,
        &firefox,
        "/account/sessions/end-others",
        &[("csrf_token", token.as_str())],
    )
    .await;
    assert_eq!(location(&all), "/account/sessions?done=others");
    assert_eq!(
        get(&app, &chrome, "/cabinet").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        get(&app, &firefox, "/cabinet").await.status(),
        StatusCode::OK
    );

    // Logging out ends the row too.
    app.log_in(&chrome, "anna@example.ru", PASSWORD).await;
    let cabinet = get(&app, &chrome, "/cabinet")
        .await
        .text()
        .await
        .expect("html");
    let token = csrf_token(&cabinet);
    let logout = post_form(&app, &chrome, "/logout", &[("csrf_token", token.as_str())]).await;
    assert_eq!(location(&logout), "/login");
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM login_sessions WHERE device = 'Chrome, Windows' AND ended_at IS NULL"
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_change_ends_the_other_sessions_when_the_box_is_ticked() {
    let app = TestApp::spawn().await;
    app.create_user("boris@example.ru", PASSWORD, Role::Patient)
        .await;
    let (mine, other) = (browser_as(FIREFOX), browser_as(CHROME));
    for client in [&mine, &other] {
        app.log_in(client, "boris@example.ru", PASSWORD).await;
    }
    let profile = get(&app, &mine, "/cabinet/profile")
        .await
        .text()
        .await
        .expect("html");
    assert!(
        profile.contains("name=\"end_others\" type=\"checkbox\" value=\"1\" checked"),
        "the box is ticked by default"
    );
    assert!(profile.contains("href=\"/account/sessions\""));
    let token = csrf_token(&profile);
    let changed = post_form(
        &app,
        &mine,
        "/cabinet/profile/password",
        &[
            ("csrf_token", token.as_str()),
            ("current_password", PASSWORD),
            ("new_password", "a second fine passphrase"),
            ("end_others", "1"),
        ],
    )
    .await;
    assert_eq!(location(&changed), "/cabinet/profile?done=password");
    assert_eq!(
        get(&app, &other, "/cabinet").await.status(),
        StatusCode::SEE_OTHER,
        "the other session ended"
    );
    assert_eq!(get(&app, &mine, "/cabinet").await.status(), StatusCode::OK);
    let listed = get(&app, &mine, "/account/sessions")
        .await
        .text()
        .await
        .expect("html");
    assert!(
        listed.contains("Этот сеанс"),
        "this session is listed still"
    );
    assert!(!listed.contains("Chrome, Windows"), "{listed}");

    // Unticked: the other sessions go on.
    app.log_in(&other, "boris@example.ru", "a second fine passphrase")
        .await;
    let profile = get(&app, &mine, "/cabinet/profile")
        .await
        .text()
        .await
        .expect("html");
    let token = csrf_token(&profile);
    let kept = post_form(
        &app,
        &mine,
        "/cabinet/profile/password",
        &[
            ("csrf_token", token.as_str()),
            ("current_password", "a second fine passphrase"),
            ("new_password", "a third fine passphrase"),
        ],
    )
    .await;
    assert_eq!(location(&kept), "/cabinet/profile?done=password_kept");
    assert_eq!(get(&app, &other, "/cabinet").await.status(), StatusCode::OK);
    assert_eq!(get(&app, &mine, "/cabinet").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_resets_a_lost_factor_and_the_next_login_enrols_again() {
    let app = mfa_app().await;
    let email = "lost.phone@example.ru";
    let user = app.create_user(email, PASSWORD, Role::Staff).await;
    app.count(&format!(
        "WITH u AS (UPDATE users SET totp_secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', \
         totp_enrolled_at = now(), totp_last_step = 1 WHERE id = {id} RETURNING 1), \
         c AS (INSERT INTO mfa_recovery_codes (user_id, code_hash) SELECT {id}, md5(g::text) \
         FROM generate_series(1, 10) g RETURNING 1) SELECT (SELECT count(*) FROM u) + (SELECT count(*) FROM c) AS n",
        id = user.id
    ))
    .await;
    // Enrolled: the password step asks for a code, not for a setup.
    let before = browser();
    let login = app.log_in(&before, email, PASSWORD).await;
    assert_eq!(location(&login), "/mfa");

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sovamed"))
        .args(["user", "reset-mfa", "--email", email])
        .env("DATABASE_URL", &app.config.database_url)
        .env("REDIS_PREFIX", &app.config.redis_prefix)
        .env("APP_ENV", "development")
        .output()
        .expect("sovamed user reset-mfa");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM users WHERE id = {} AND totp_secret IS NULL \
             AND totp_enrolled_at IS NULL AND totp_last_step IS NULL AND session_version > {}",
            user.id, user.session_version
        ))
        .await,
        1,
        "the factor is gone and the sessions ended"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM mfa_recovery_codes WHERE user_id = {}",
            user.id
        ))
        .await,
        0
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM audit_events WHERE action = 'mfa_reset' AND subject = '{}'",
            user.id
        ))
        .await,
        1
    );
    // The session that waited for a code is over; a new login is sent to the setup.
    let ended = get(&app, &before, "/staff").await;
    assert_eq!(ended.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&ended).starts_with("/login"),
        "{}",
        location(&ended)
    );
    let after = browser();
    let login = app.log_in(&after, email, PASSWORD).await;
    assert_eq!(location(&login), "/mfa/setup");
    // Unknown accounts are refused in words.
    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_sovamed"))
        .args(["user", "reset-mfa", "--email", "nobody@example.ru"])
        .env("DATABASE_URL", &app.config.database_url)
        .env("REDIS_PREFIX", &app.config.redis_prefix)
        .env("APP_ENV", "development")
        .output()
        .expect("sovamed user reset-mfa");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no account"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_otp_longer_than_the_schema_allows_is_refused_for_every_role() {
    let app = mfa_app().await;
    app.create_user("patient@example.ru", PASSWORD, Role::Patient)
        .await;
    let (status, body) = api_login(
        &app,
        json!({"email": "patient@example.ru", "password": PASSWORD, "otp": "0".repeat(33)}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["fields"]["otp"].is_string(), "{body}");
    let (status, _) = api_login(
        &app,
        json!({"email": "patient@example.ru", "password": PASSWORD, "otp": "0".repeat(32)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "a patient's otp is ignored");
}
