//! The website on another origin: CORS on the API for the configured origins only, and
//! errors a frontend can act on (distinct codes, Russian per-field messages for bodies that
//! do not parse).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, browser};

const SITE: &str = "https://site.example";

#[tokio::test(flavor = "multi_thread")]
async fn the_api_answers_the_website_origin_and_nobody_else() {
    let app = TestApp::spawn_with(|config| {
        config.cors_allowed_origins = vec![SITE.to_owned()];
    })
    .await;
    let client = browser();

    let preflight = client
        .request(
            Method::OPTIONS,
            app.url("/api/v1/specialist/anonymous-reserve"),
        )
        .header("origin", SITE)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,idempotency-key",
        )
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], SITE);
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .expect("text")
        .to_ascii_lowercase();
    assert!(
        allowed.contains("idempotency-key") && allowed.contains("authorization"),
        "{allowed}"
    );
    assert!(headers.get("access-control-allow-credentials").is_none());

    let read = client
        .get(app.url("/api/v1/branches"))
        .header("origin", SITE)
        .send()
        .await
        .expect("branches");
    assert_eq!(read.headers()["access-control-allow-origin"], SITE);
    let exposed = read.headers()["access-control-expose-headers"]
        .to_str()
        .expect("text")
        .to_ascii_lowercase();
    assert!(
        exposed.contains("retry-after") && exposed.contains("location"),
        "{exposed}"
    );

    // The schedule read, routed beside the API's nest: the same CORS, and the API's 405.
    let schedule = "/api/v1/specialist/schedule?specialist_id=1&branch_id=1&date_from=2030-01-01";
    let preflight = client
        .request(Method::OPTIONS, app.url(schedule))
        .header("origin", SITE)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], SITE);
    let read = client
        .get(app.url(schedule))
        .header("origin", SITE)
        .send()
        .await
        .expect("schedule");
    assert_eq!(read.headers()["access-control-allow-origin"], SITE);
    let wrong = client
        .post(app.url(schedule))
        .header("origin", SITE)
        .send()
        .await
        .expect("schedule");
    assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.headers()["access-control-allow-origin"], SITE);
    assert!(
        wrong.headers()["allow"]
            .to_str()
            .expect("text")
            .contains("GET")
    );
    let body: Value = wrong.json().await.expect("the API's JSON error");
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");

    for (what, request) in [
        (
            "another origin",
            client
                .get(app.url("/api/v1/branches"))
                .header("origin", "https://evil.example"),
        ),
        (
            "another origin's preflight",
            client
                .request(Method::OPTIONS, app.url("/api/v1/records"))
                .header("origin", "https://evil.example")
                .header("access-control-request-method", "POST"),
        ),
        (
            "a page",
            client.get(app.url("/login")).header("origin", SITE),
        ),
    ] {
        let response = request.send().await.expect(what);
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_configured_origins_there_are_no_cors_headers() {
    let app = TestApp::spawn().await;
    let response = browser()
        .get(app.url("/api/v1/branches"))
        .header("origin", SITE)
        .send()
        .await
        .expect("branches");
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_that_do_not_parse_are_named_in_russian() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({"email": "a@example.ru"}),
            "password",
            "Обязательное поле",
        ),
        (
            json!({"email": "a@example.ru", "password": "x", "role": "admin"}),
            "role",
            "Неизвестное поле: уберите его из запроса",
        ),
        (
            json!({"email": 5, "password": "x"}),
            "email",
            "Неверный тип значения",
        ),
    ];
    for (body, field, message) in cases {
        let response = browser()
            .post(app.url("/api/v1/user/login"))
            .json(&body)
            .send()
            .await
            .expect("login");
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        let answer: Value = response.json().await.expect("json");
        assert_eq!(answer["error"]["fields"][field], message, "{answer}");
        let text = answer.to_string();
        assert!(
            !text.contains("expected")
                && !text.contains("line 1")
                && !text.contains("missing field"),
            "no serde text: {text}"
        );
    }
}
