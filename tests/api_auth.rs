//! The JWT API: login, `/me`, and every kind of bad token.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sovamed::db::models::user::Role;

use crate::support::{JWT_SECRET, TestApp, browser};

const PASSWORD: &str = "api user passphrase";

async fn me(app: &TestApp, authorization: Option<&str>) -> (StatusCode, Value) {
    let mut request = browser().get(app.url("/api/v1/user/me"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.expect("me");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn claims(user_id: i64, exp_offset: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "sub": user_id.to_string(), "iat": now, "nbf": now, "exp": now + exp_offset,
        "iss": "sovamed", "aud": "sovamed-api", "typ": "access", "ver": 1
    })
}

fn sign(claims: &Value, secret: &[u8]) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("sign")
}

#[tokio::test(flavor = "multi_thread")]
async fn login_gives_a_token_that_opens_me() {
    let app = TestApp::spawn().await;
    let user = app
        .create_user("api@example.ru", PASSWORD, Role::Staff)
        .await;
    let response = browser()
        .post(app.url("/api/v1/user/login"))
        .json(&json!({"email": "API@example.ru", "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers().get("set-cookie").is_none(),
        "the API never starts a cookie session"
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(
        body["user"],
        json!({"id": user.id, "email": "api@example.ru", "full_name": user.full_name, "role": "staff"})
    );

    let token = body["token"].as_str().expect("token");
    let (status, me_body) = me(&app, Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me_body["email"], "api@example.ru");
    assert_eq!(me_body["role"], "staff");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_credentials_give_one_generic_401() {
    let app = TestApp::spawn().await;
    app.create_user("api@example.ru", PASSWORD, Role::Patient)
        .await;
    let mut bodies = Vec::new();
    for (email, password) in [("api@example.ru", "wrong"), ("nobody@example.ru", "wrong")] {
        let response = browser()
            .post(app.url("/api/v1/user/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        bodies.push(response.text().await.expect("body"));
    }
    assert_eq!(bodies[0], bodies[1]);
    let body: Value = serde_json::from_str(&bodies[0]).expect("json");
    assert_eq!(body["error"]["code"], "invalid_credentials");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_token_gives_401_in_the_error_shape() {
    let app = TestApp::spawn().await;
    let user = app
        .create_user("api@example.ru", PASSWORD, Role::Patient)
        .await;
    let good = app.api_token("api@example.ru", PASSWORD).await;
    let [header, payload, signature]: [&str; 3] = good
        .split('.')
        .collect::<Vec<_>>()
        .try_into()
        .expect("three parts");

    let mut tampered_claims: Value =
        serde_json::from_slice(&B64.decode(payload).expect("b64")).expect("json");
    tampered_claims["sub"] = json!((user.id + 1).to_string());
    let tampered = format!(
        "{header}.{}.{signature}",
        B64.encode(tampered_claims.to_string())
    );

    let none_token = |alg: &str| {
        let header = B64.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
        format!("{header}.{payload}.")
    };
    let mut refresh = claims(user.id, 600);
    refresh["typ"] = json!("refresh");
    let mut wrong_aud = claims(user.id, 600);
    wrong_aud["aud"] = json!("another-service");
    let mut wrong_iss = claims(user.id, 600);
    wrong_iss["iss"] = json!("someone-else");
    let mut no_exp = claims(user.id, 600);
    no_exp.as_object_mut().expect("object").remove("exp");
    let mut future_nbf = claims(user.id, 600);
    future_nbf["nbf"] = json!(chrono::Utc::now().timestamp() + 3600);
    let kid_header = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("../../../../dev/null".into());
        h.jku = Some("http://127.0.0.2:9999/jwks".into());
        encode(
            &h,
            &claims(user.id, 600),
            &EncodingKey::from_secret(b"another key another key another key!!"),
        )
        .expect("sign")
    };

    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("garbage", Some("Bearer not-a-token".into())),
        ("empty bearer", Some("Bearer ".into())),
        ("basic scheme", Some(format!("Basic {good}"))),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                sign(&claims(user.id, -3600), JWT_SECRET.as_bytes())
            )),
        ),
        (
            "another key",
            Some(format!(
                "Bearer {}",
                sign(
                    &claims(user.id, 600),
                    b"another key another key another key!!"
                )
            )),
        ),
        ("tampered payload", Some(format!("Bearer {tampered}"))),
        ("alg none", Some(format!("Bearer {}", none_token("none")))),
        ("alg None", Some(format!("Bearer {}", none_token("None")))),
        ("alg nOnE", Some(format!("Bearer {}", none_token("nOnE")))),
        (
            "refresh type",
            Some(format!("Bearer {}", sign(&refresh, JWT_SECRET.as_bytes()))),
        ),
        (
            "wrong audience",
            Some(format!(
                "Bearer {}",
                sign(&wrong_aud, JWT_SECRET.as_bytes())
            )),
        ),
        (
            "wrong issuer",
            Some(format!(
                "Bearer {}",
                sign(&wrong_iss, JWT_SECRET.as_bytes())
            )),
        ),
        (
            "no exp",
            Some(format!("Bearer {}", sign(&no_exp, JWT_SECRET.as_bytes()))),
        ),
        (
            "nbf in the future",
            Some(format!(
                "Bearer {}",
                sign(&future_nbf, JWT_SECRET.as_bytes())
            )),
        ),
        ("kid and jku headers", Some(format!("Bearer {kid_header}"))),
    ];
    for (name, authorization) in cases {
        let (status, body) = me(&app, authorization.as_deref()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
        // Only a token of ours past its expiry says so; everything else is one answer.
        let expected = if name == "expired" {
            "token_expired"
        } else {
            "unauthorized"
        };
        assert_eq!(body["error"]["code"], expected, "{name}");
    }
    // A token in the query string is not read.
    let response = browser()
        .get(app.url(&format!("/api/v1/user/me?access_token={good}")))
        .send()
        .await
        .expect("me");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The session cookie does not authenticate the API.
    let client = browser();
    app.log_in(&client, "api@example.ru", PASSWORD).await;
    assert_eq!(
        client
            .get(app.url("/api/v1/user/me"))
            .send()
            .await
            .expect("me")
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // The good token still works.
    assert_eq!(
        me(&app, Some(&format!("Bearer {good}"))).await.0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_of_disabled_users_and_from_before_a_password_change_are_refused() {
    let app = TestApp::spawn().await;
    let user = app
        .create_user("api@example.ru", PASSWORD, Role::Patient)
        .await;
    let other = app
        .create_user("other@example.ru", PASSWORD, Role::Patient)
        .await;
    let token = app.api_token("api@example.ru", PASSWORD).await;
    let other_token = app.api_token("other@example.ru", PASSWORD).await;
    let mut conn = app.db().await;
    sovamed::db::models::user::set_disabled(&mut conn, user.id, true)
        .await
        .expect("disable");
    assert_eq!(
        me(&app, Some(&format!("Bearer {token}"))).await.0,
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(
        me(&app, Some(&format!("Bearer {other_token}"))).await.0,
        StatusCode::OK
    );
    sovamed::db::models::user::set_password_hash(&mut conn, other.id, &other.password_hash)
        .await
        .expect("set password");
    assert_eq!(
        me(&app, Some(&format!("Bearer {other_token}"))).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_get_4xx_in_the_error_shape() {
    let app = TestApp::spawn().await;
    let url = app.url("/api/v1/user/login");
    let client = browser();
    let cases = [
        (
            "unknown field",
            "application/json",
            json!({"email": "a@b.ru", "password": "x", "role": "admin"}).to_string(),
            422,
        ),
        (
            "missing field",
            "application/json",
            json!({"email": "a@b.ru"}).to_string(),
            422,
        ),
        (
            "wrong type",
            "application/json",
            json!({"email": 5, "password": "x"}).to_string(),
            422,
        ),
        (
            "malformed",
            "application/json",
            "{\"email\": ".to_owned(),
            400,
        ),
        (
            "text/plain",
            "text/plain",
            json!({"email": "a@b.ru", "password": "x"}).to_string(),
            415,
        ),
        (
            "oversized",
            "application/json",
            format!(
                "{{\"email\":\"{}\",\"password\":\"x\"}}",
                "a".repeat(2 * 1024 * 1024)
            ),
            413,
        ),
    ];
    for (name, content_type, body, expected) in cases {
        // A fresh connection per case: the server may close one after refusing a large body.
        let response = browser()
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), expected, "{name}");
        let body: Value = response.json().await.expect("error body is JSON");
        assert!(body["error"]["code"].is_string(), "{name}: {body}");
        assert!(body["error"]["message"].is_string(), "{name}: {body}");
    }
    let unknown_field: Value = client
        .post(&url)
        .json(&json!({"email": "a@b.ru", "password": "x", "role": "admin"}))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(
        unknown_field["error"]["fields"]["role"].is_string(),
        "{unknown_field}"
    );

    let missing = client
        .get(app.url("/api/v1/nothing-here"))
        .send()
        .await
        .expect("404");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: Value = missing.json().await.expect("json");
    assert_eq!(body["error"]["code"], "not_found");
    let wrong_method = client.get(&url).send().await.expect("405");
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = wrong_method.json().await.expect("json");
    assert_eq!(body["error"]["code"], "method_not_allowed");
}
