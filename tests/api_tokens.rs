//! Refresh tokens: rotation, reuse detection, logout, and revocation by a password change.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sovamed::db::models::user::Role;

use crate::support::{TestApp, browser};

async fn post(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    let response = browser()
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn login(app: &TestApp, email: &str, password: &str) -> Value {
    let (status, body) = post(
        app,
        "/api/v1/user/login",
        json!({"email": email, "password": password}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn refresh_token(body: &Value) -> String {
    body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_token_rotates_and_its_reuse_revokes_the_family() {
    let app = TestApp::spawn().await;
    app.create_user("tokens@example.ru", "token passphrase 1", Role::Patient)
        .await;
    let first = login(&app, "tokens@example.ru", "token passphrase 1").await;
    let r1 = refresh_token(&first);
    assert!(r1.len() >= 32, "at least 128 bits");
    assert!(first["refresh_expires_in"].as_u64().expect("secs") > 86_400);

    let (status, second) = post(&app, "/api/v1/user/refresh", json!({"refresh_token": r1})).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let r2 = refresh_token(&second);
    assert_ne!(r1, r2, "rotated");
    let me = browser()
        .get(app.url("/api/v1/user/me"))
        .bearer_auth(second["token"].as_str().expect("token"))
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), StatusCode::OK, "the new access token works");

    // The spent token again: refused, and its family with it.
    let (status, body) = post(&app, "/api/v1/user/refresh", json!({"refresh_token": r1})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = post(&app, "/api/v1/user/refresh", json!({"refresh_token": r2})).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the newer token of the family is revoked too"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM refresh_tokens WHERE revoked_at IS NULL")
            .await,
        0
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM refresh_tokens WHERE token_hash LIKE '%{r2}%'"
        ))
        .await,
        0,
        "stored hashed"
    );

    // Logout revokes; an unknown token logs out quietly.
    let fresh = refresh_token(&login(&app, "tokens@example.ru", "token passphrase 1").await);
    let (status, _) = post(&app, "/api/v1/user/logout", json!({"refresh_token": fresh})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = post(
        &app,
        "/api/v1/user/refresh",
        json!({"refresh_token": fresh}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = post(
        &app,
        "/api/v1/user/logout",
        json!({"refresh_token": "nothing"}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = post(&app, "/api/v1/user/refresh", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["fields"]["refresh_token"].is_string(),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_change_refuses_the_access_and_refresh_tokens_issued_before() {
    let app = TestApp::spawn().await;
    let user = app
        .create_user("changed@example.ru", "token passphrase 2", Role::Patient)
        .await;
    let before = login(&app, "changed@example.ru", "token passphrase 2").await;
    let passwords = sovamed::auth::password::Passwords::new()
        .await
        .expect("hasher");
    sovamed::domain::accounts::set_password(
        &app.state().db,
        &passwords,
        &user,
        sovamed::domain::accounts::NewPassword::parse("a changed passphrase").expect("policy"),
        sovamed::domain::audit::Actor::command_line(),
    )
    .await
    .expect("password set");
    let (status, _) = post(
        &app,
        "/api/v1/user/refresh",
        json!({"refresh_token": refresh_token(&before)}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let me = browser()
        .get(app.url("/api/v1/user/me"))
        .bearer_auth(before["token"].as_str().expect("token"))
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
}

/// The schema allows any 1 to 128 characters, so anything within it is an unknown token
/// (refused with 401 by a refresh, a no-op for a logout), never a 422: spaces only, and 128
/// letters of another script (256 bytes).
#[tokio::test(flavor = "multi_thread")]
async fn a_schema_valid_token_that_is_not_ours_is_unknown_not_invalid() {
    let app = TestApp::spawn().await;
    for token in ["   ".to_owned(), "я".repeat(128)] {
        let (status, body) = post(
            &app,
            "/api/v1/user/refresh",
            json!({"refresh_token": token}),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        let (status, body) =
            post(&app, "/api/v1/user/logout", json!({"refresh_token": token})).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let (status, _) = post(
        &app,
        "/api/v1/user/logout",
        json!({"refresh_token": "я".repeat(129)}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}
