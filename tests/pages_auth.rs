//! Cabinet login, sessions, logout, CSRF and `next`.

use reqwest::StatusCode;
use sovamed::db::models::user::Role;

use crate::support::{TestApp, browser, csrf_token, location, session_cookie};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test(flavor = "multi_thread")]
async fn login_opens_the_cabinet_and_the_session_survives_a_restart() {
    let mut app = TestApp::spawn().await;
    app.create_user("anna@example.ru", PASSWORD, Role::Patient)
        .await;
    let client = browser();

    let response = app.log_in(&client, "Anna@Example.ru ", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/cabinet");
    let cabinet = client
        .get(app.url("/cabinet"))
        .send()
        .await
        .expect("cabinet");
    assert_eq!(cabinet.status(), StatusCode::OK);
    assert_eq!(cabinet.headers()["cache-control"], "no-store");
    assert!(
        cabinet
            .text()
            .await
            .expect("body")
            .contains("Тестов Тест Тестович")
    );

    app.restart().await;
    let after_restart = client
        .get(app.url("/cabinet"))
        .send()
        .await
        .expect("cabinet");
    assert_eq!(
        after_restart.status(),
        StatusCode::OK,
        "the session lives in Redis, not in the process"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_and_unknown_email_give_identical_pages() {
    let app = TestApp::spawn().await;
    app.create_user("known@example.ru", PASSWORD, Role::Patient)
        .await;

    let (wrong_client, unknown_client) = (browser(), browser());
    let wrong = app
        .log_in(&wrong_client, "known@example.ru", "not the password")
        .await;
    let unknown = app
        .log_in(&unknown_client, "nobody@example.ru", "not the password")
        .await;
    assert_eq!(wrong.status(), unknown.status());
    assert_eq!(wrong.status(), StatusCode::OK);
    assert_eq!(
        session_cookie(&wrong).is_some(),
        session_cookie(&unknown).is_some()
    );
    let strip = |html: String| html.replace(&csrf_token(&html), "TOKEN");
    let wrong_body = strip(wrong.text().await.expect("body"));
    let unknown_body = strip(unknown.text().await.expect("body"));
    assert_eq!(wrong_body, unknown_body);
    assert!(wrong_body.contains("Неверная электронная почта или пароль"));

    for client in [&wrong_client, &unknown_client] {
        let cabinet = client
            .get(app.url("/cabinet"))
            .send()
            .await
            .expect("cabinet");
        assert_eq!(
            cabinet.status(),
            StatusCode::SEE_OTHER,
            "a failed login logs nobody in"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_session_id_is_renewed_at_login_and_logout_ends_it() {
    let app = TestApp::spawn().await;
    app.create_user("anna@example.ru", PASSWORD, Role::Patient)
        .await;
    let client = browser();

    let login_page = client
        .get(app.url("/login"))
        .send()
        .await
        .expect("login page");
    let anonymous_id = session_cookie(&login_page).expect("the login form starts a pre-session");
    let token = csrf_token(&login_page.text().await.expect("body"));
    let response = client
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "anna@example.ru"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("login");
    let logged_in_id = session_cookie(&response).expect("login sets a new cookie");
    assert_ne!(anonymous_id, logged_in_id);

    // The pre-login id is anonymous now, and its Redis key is gone.
    let replay = browser()
        .get(app.url("/cabinet"))
        .header("cookie", format!("sovamed_session={anonymous_id}"))
        .send()
        .await
        .expect("replay");
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
    let mut redis_conn = app.state().redis.pool.clone();
    let anonymous_key = redis_key(&anonymous_id);
    let logged_in_key = redis_key(&logged_in_id);
    assert!(!exists(&mut redis_conn, &anonymous_key).await);
    assert!(exists(&mut redis_conn, &logged_in_key).await);
    // The record expires in Redis with the idle timeout (EXAT at the record's expiry).
    let ttl = ttl_seconds(&mut redis_conn, &logged_in_key).await;
    assert!(
        ttl > 0 && ttl <= i64::try_from(app.config.session_idle.as_secs()).expect("seconds"),
        "session TTL {ttl} s, idle timeout {:?}",
        app.config.session_idle
    );

    // Logout needs the CSRF token, deletes the server-side session and the cookie.
    let cabinet = client
        .get(app.url("/cabinet"))
        .send()
        .await
        .expect("cabinet")
        .text()
        .await
        .expect("body");
    let token = csrf_token(&cabinet);
    let logout = client
        .post(app.url("/logout"))
        .form(&[("csrf_token", token)])
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&logout), "/login");
    assert!(!exists(&mut redis_conn, &logged_in_key).await);
    let replay = browser()
        .get(app.url("/cabinet"))
        .header("cookie", format!("sovamed_session={logged_in_id}"))
        .send()
        .await
        .expect("replay");
    assert_eq!(
        replay.status(),
        StatusCode::SEE_OTHER,
        "the old cookie opens nothing after logout"
    );
}

/// The Redis key of the session a cookie names: tower-sessions-redis-store keys a record by
/// the bare session id, without `REDIS_PREFIX`.
fn redis_key(cookie_value: &str) -> String {
    let id: tower_sessions::session::Id = cookie_value.parse().expect("session id");
    id.to_string()
}

async fn exists(pool: &mut fred::clients::Pool, key: &str) -> bool {
    use fred::interfaces::KeysInterface;
    let n: i64 = pool.exists(key).await.expect("EXISTS");
    n == 1
}

async fn ttl_seconds(pool: &mut fred::clients::Pool, key: &str) -> i64 {
    use fred::interfaces::KeysInterface;
    pool.ttl(key).await.expect("TTL")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_id_the_server_never_issued_is_not_adopted() {
    let app = TestApp::spawn().await;
    app.create_user("anna@example.ru", PASSWORD, Role::Patient)
        .await;
    let planted = "AAAAAAAAAAAAAAAAAAAAAA";
    let client = browser();
    let page = client
        .get(app.url("/login"))
        .header("cookie", format!("sovamed_session={planted}"))
        .send()
        .await
        .expect("login page");
    let issued = session_cookie(&page).expect("a fresh pre-session");
    assert_ne!(issued, planted);
}

#[tokio::test(flavor = "multi_thread")]
async fn posts_without_a_valid_csrf_token_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    app.create_user("anna@example.ru", PASSWORD, Role::Patient)
        .await;

    // Another session's token.
    let other = browser();
    let other_token = csrf_token(
        &other
            .get(app.url("/login"))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("body"),
    );

    let client = browser();
    let own_token = csrf_token(
        &client
            .get(app.url("/login"))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("body"),
    );
    for token in [None, Some(other_token.as_str()), Some("")] {
        let mut form = vec![("email", "anna@example.ru"), ("password", PASSWORD)];
        if let Some(token) = token {
            form.push(("csrf_token", token));
        }
        let response = client
            .post(app.url("/login"))
            .form(&form)
            .send()
            .await
            .expect("login");
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "login with token {token:?}"
        );
        assert!(
            response
                .text()
                .await
                .expect("body")
                .contains("Доступ запрещён")
        );
        let registration = client
            .post(app.url("/register"))
            .form(&[
                ("email", "new@example.ru"),
                ("password", "a long enough passphrase"),
                ("full_name", "Новиков Н Н"),
                ("phone", "+79001112233"),
                ("birth_date", "1990-01-01"),
                ("consent", "yes"),
                ("csrf_token", token.unwrap_or_default()),
            ])
            .send()
            .await
            .expect("register");
        assert_eq!(registration.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(
        client
            .get(app.url("/cabinet"))
            .send()
            .await
            .expect("cabinet")
            .status(),
        StatusCode::SEE_OTHER
    );
    let mut conn = app.db().await;
    assert!(
        sovamed::db::models::user::find_by_email(&mut conn, "new@example.ru")
            .await
            .expect("query")
            .is_none()
    );

    // Logged in, a logout without the token leaves the session alive.
    let response = client
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", own_token.as_str()),
            ("email", "anna@example.ru"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let logout = client
        .post(app.url("/logout"))
        .form(&[("csrf_token", other_token.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        client
            .get(app.url("/cabinet"))
            .send()
            .await
            .expect("cabinet")
            .status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn next_is_followed_only_to_same_site_paths() {
    let app = TestApp::spawn().await;
    app.create_user("anna@example.ru", PASSWORD, Role::Patient)
        .await;
    for (next, expected) in [
        ("https://evil.example/", "/cabinet"),
        ("//evil.example", "/cabinet"),
        ("/\\evil.example", "/cabinet"),
        ("/cabinet?tab=visits", "/cabinet?tab=visits"),
    ] {
        let response = app
            .log_in_next(&browser(), "anna@example.ru", PASSWORD, next)
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&response), expected, "next={next}");
    }
    // The login form keeps only a safe `next`.
    let page = browser()
        .get(app.url("/login?next=//evil.example"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    assert!(!page.contains("evil.example"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_get_logout_only_asks_for_confirmation_and_the_form_logs_out() {
    let app = TestApp::spawn().await;
    app.create_user("anna@example.ru", PASSWORD, Role::Patient)
        .await;
    let client = browser();
    app.log_in(&client, "anna@example.ru", PASSWORD).await;

    let cabinet_status = async || {
        client
            .get(app.url("/cabinet"))
            .send()
            .await
            .expect("cabinet")
            .status()
    };
    // Cross-site, same-origin, or no Sec-Fetch-Site at all: a GET never logs out.
    let mut page = String::new();
    for site in [Some("cross-site"), Some("same-origin"), None] {
        let mut request = client.get(app.url("/logout"));
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        let answer = request.send().await.expect("logout");
        assert_eq!(answer.status(), StatusCode::OK, "{site:?}");
        page = answer.text().await.expect("html");
        assert!(page.contains("Выйти из личного кабинета?"));
        assert_eq!(
            cabinet_status().await,
            StatusCode::OK,
            "{site:?}: still logged in"
        );
    }
    let out = client
        .post(app.url("/logout"))
        .form(&[("csrf_token", csrf_token(&page))])
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(cabinet_status().await, StatusCode::SEE_OTHER);
    // Logged out, the question is not asked.
    let again = client.get(app.url("/logout")).send().await.expect("logout");
    assert_eq!(location(&again), "/login");
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_end_at_the_absolute_timeout_despite_activity() {
    let app =
        TestApp::spawn_with(|config| config.session_absolute = std::time::Duration::from_secs(4))
            .await;
    app.create_user("anna@example.ru", PASSWORD, Role::Patient)
        .await;
    let client = browser();
    app.log_in(&client, "anna@example.ru", PASSWORD).await;
    assert_eq!(
        client
            .get(app.url("/cabinet"))
            .send()
            .await
            .expect("cabinet")
            .status(),
        StatusCode::OK
    );
    for _ in 0..5 {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let _ = client
            .get(app.url("/cabinet"))
            .send()
            .await
            .expect("cabinet");
    }
    assert_eq!(
        client
            .get(app.url("/cabinet"))
            .send()
            .await
            .expect("cabinet")
            .status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn disabling_an_account_ends_its_cookie_sessions() {
    let app = TestApp::spawn().await;
    let user = app
        .create_user("anna@example.ru", PASSWORD, Role::Patient)
        .await;
    let client = browser();
    app.log_in(&client, "anna@example.ru", PASSWORD).await;
    assert_eq!(
        client
            .get(app.url("/cabinet"))
            .send()
            .await
            .expect("cabinet")
            .status(),
        StatusCode::OK
    );
    let mut conn = app.db().await;
    sovamed::db::models::user::set_disabled(&mut conn, user.id, true)
        .await
        .expect("disable");
    assert_eq!(
        client
            .get(app.url("/cabinet"))
            .send()
            .await
            .expect("cabinet")
            .status(),
        StatusCode::SEE_OTHER
    );
    let retry = app.log_in(&browser(), "anna@example.ru", PASSWORD).await;
    assert_eq!(
        retry.status(),
        StatusCode::OK,
        "a disabled account cannot log in"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_session_ends() {
    let app =
        TestApp::spawn_with(|config| config.session_idle = std::time::Duration::from_secs(3)).await;
    app.create_user("anna@example.ru", PASSWORD, Role::Patient)
        .await;
    let login = app.log_in(&browser(), "anna@example.ru", PASSWORD).await;
    let id = session_cookie(&login).expect("session cookie");
    let replay = || {
        browser()
            .get(app.url("/cabinet"))
            .header("cookie", format!("sovamed_session={id}"))
            .send()
    };
    assert_eq!(replay().await.expect("cabinet").status(), StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    // Replayed by hand: a browser would have dropped the cookie, the server must drop the session.
    assert_eq!(
        replay().await.expect("cabinet").status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn production_cookies_are_secure_and_host_prefixed() {
    let app =
        TestApp::spawn_with(|config| config.app_env = sovamed::config::AppEnv::Production).await;
    let page = browser()
        .get(app.url("/login"))
        .send()
        .await
        .expect("login");
    let cookie = page.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    assert!(cookie.starts_with("__Host-sovamed_session="), "{cookie}");
    assert!(cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("Path=/"));
    assert!(page.headers().contains_key("strict-transport-security"));
}
