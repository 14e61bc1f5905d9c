//! Health, readiness, static files and security headers.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{TestApp, browser};

#[tokio::test(flavor = "multi_thread")]
async fn health_and_readiness_answer_when_everything_is_up() {
    let app = TestApp::spawn().await;
    assert_eq!(
        browser()
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("healthz")
            .status(),
        StatusCode::OK
    );
    let ready = browser()
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["checks"]["postgres"], "ok");
    assert_eq!(body["checks"]["redis"], "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_names_redis_when_it_is_unreachable() {
    // Port 9 (discard) has no Redis on a test machine.
    let app = TestApp::spawn_with(|config| config.redis_url = "redis://127.0.0.1:9".into()).await;
    assert_eq!(
        browser()
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("healthz")
            .status(),
        StatusCode::OK
    );
    let ready = browser()
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["failed"], serde_json::json!(["redis"]));
    assert_eq!(body["checks"]["postgres"], "ok");

    // Pages that need the session say what is down instead of failing with a 500.
    let login = browser()
        .get(app.url("/login"))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        login
            .text()
            .await
            .expect("body")
            .contains("хранилище сеансов")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_names_postgres_when_it_is_unreachable() {
    let mut app = TestApp::spawn().await;
    app.config.database_url = "postgres://postgres@127.0.0.1:9/nothing".into();
    let state = sovamed::app::App::new(app.config.clone())
        .await
        .expect("state builds without connecting");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let server = sovamed::server::start_with(state, listener)
        .await
        .expect("serve");
    let ready = browser()
        .get(format!("http://{}/readyz", server.addr))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["failed"], serde_json::json!(["postgres"]));
    let api = browser()
        .post(format!("http://{}/api/v1/user/login", server.addr))
        .json(&serde_json::json!({"email": "a@b.ru", "password": "whatever pass"}))
        .send()
        .await
        .expect("login");
    assert_eq!(
        api.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "a pool error is a 503, not a panic"
    );
    let body: Value = api.json().await.expect("json");
    assert_eq!(body["error"]["code"], "service_unavailable");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn static_files_have_types_etags_and_no_traversal() {
    let app = TestApp::spawn().await;
    let client = browser();
    let css = client
        .get(app.url("/static/app.css"))
        .send()
        .await
        .expect("css");
    assert_eq!(css.status(), StatusCode::OK);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/css")
    );
    assert!(
        css.headers()["cache-control"]
            .to_str()
            .expect("cc")
            .contains("max-age")
    );
    let etag = css.headers()["etag"].clone();
    let again = client
        .get(app.url("/static/app.css"))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("css");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let htmx = client
        .get(app.url("/static/htmx.min.js"))
        .send()
        .await
        .expect("htmx");
    assert_eq!(htmx.status(), StatusCode::OK);
    for path in [
        "/static/..%2f..%2fetc/passwd",
        "/static/../Cargo.toml",
        "/static/nope.js",
    ] {
        let response = client.get(app.url(path)).send().await.expect("static");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(!response.text().await.expect("body").contains("root:"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    for path in [
        "/",
        "/login",
        "/static/app.css",
        "/api/v1/user/me",
        "/nope",
        "/healthz",
    ] {
        let response = browser().get(app.url(path)).send().await.expect("request");
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().expect("csp");
        assert!(
            csp.contains("object-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(headers.contains_key("referrer-policy"), "{path}");
        assert!(headers.contains_key("x-request-id"), "{path}");
        assert!(
            headers.get("access-control-allow-origin").is_none(),
            "{path}"
        );
    }
    let login = browser()
        .get(app.url("/login"))
        .send()
        .await
        .expect("login");
    assert_eq!(login.headers()["cache-control"], "no-store");
    let cookie = login.headers()["set-cookie"].to_str().expect("cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/")
    );
    assert!(!cookie.contains("Domain"));
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_carry_the_series_and_no_personal_data() {
    let (app, _emulators) = crate::support::with_emulators().await;
    crate::support::sync_directories(&app).await;
    let (doctor, branch) = crate::support::doctor_in(&app, None).await;
    let _ = crate::support::schedule(&app, doctor, branch, 2).await;
    let _ = crate::support::schedule(&app, doctor, branch, 2).await;
    app.create_user(
        "metrics@example.ru",
        "metrics passphrase",
        sovamed::db::models::user::Role::Patient,
    )
    .await;
    let client = browser();
    app.log_in(&client, "metrics@example.ru", "metrics passphrase")
        .await;
    let _ = client
        .get(app.url(&format!("/doctors/{doctor}")))
        .send()
        .await
        .expect("page");

    let response = browser()
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("body");
    for series in [
        "http_requests_total{",
        "http_request_duration_seconds_bucket{",
        "schedule_cache_requests_total{result=\"hit\"}",
        "schedule_cache_requests_total{result=\"miss\"}",
        "mis_requests_total{",
        "mis_request_duration_seconds_bucket{",
        "sync_runs_total{",
        "sms_outbox_depth",
        "db_pool_connections{state=\"in_use\"}",
    ] {
        assert!(text.contains(series), "missing {series}");
    }
    assert!(
        text.contains("route=\"/doctors/{id}\""),
        "routes are templates"
    );
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let labels = line
            .split('{')
            .nth(1)
            .and_then(|rest| rest.split('}').next())
            .unwrap_or_default();
        assert!(!labels.contains('@'), "an e-mail in {line}");
        assert!(
            !labels.contains("+7") && !labels.contains("79"),
            "a phone in {line}"
        );
        if let Some(route) = labels
            .split("route=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
        {
            assert!(
                !route
                    .replace("/api/v1", "")
                    .chars()
                    .any(|c| c.is_ascii_digit()),
                "an id in {line}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_routed_api_path_is_in_the_openapi_document() {
    let app = TestApp::spawn().await;
    let response = browser()
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("openapi");
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.expect("json");
    assert!(
        document["openapi"]
            .as_str()
            .expect("version")
            .starts_with("3.1")
    );
    let documented: std::collections::BTreeSet<String> = document["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect();

    // The API router's routes, read from the one router file.
    let router = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/router.rs"))
        .expect("router.rs");
    let api_block = router
        .split("let api = Router::new()")
        .nth(1)
        .and_then(|rest| rest.split(".fallback(").next())
        .expect("the API router block");
    let mut routed: std::collections::BTreeSet<String> = api_block
        .split(".route(")
        .skip(1)
        .filter_map(|call| call.split('"').nth(1))
        .map(|path| format!("/api/v1{path}"))
        .collect();
    // API routes registered by their full path beside the nest (the hot schedule read).
    let beside: Vec<String> = router
        .lines()
        .filter(|line| line.starts_with("const API_"))
        .filter_map(|line| line.split('"').nth(1))
        .map(str::to_owned)
        .collect();
    assert!(
        beside.iter().all(|path| path.starts_with("/api/v1/")),
        "{beside:?}"
    );
    assert!(
        beside.contains(&"/api/v1/specialist/schedule".to_owned()),
        "{beside:?}"
    );
    routed.extend(beside);
    assert!(routed.len() >= 15, "{routed:?}");
    let missing: Vec<&String> = routed.difference(&documented).collect();
    assert!(missing.is_empty(), "routed but not documented: {missing:?}");
    let extra: Vec<&String> = documented.difference(&routed).collect();
    assert!(extra.is_empty(), "documented but not routed: {extra:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_route_exists_only_with_the_bench_switch() {
    let plain = TestApp::spawn().await;
    let absent = browser()
        .get(plain.url("/__bench/hello"))
        .send()
        .await
        .expect("hello");
    assert_eq!(absent.status(), StatusCode::NOT_FOUND);

    let bench = TestApp::spawn_with(|config| config.bench_routes = true).await;
    let hello = browser()
        .get(bench.url("/__bench/hello"))
        .send()
        .await
        .expect("hello");
    assert_eq!(hello.status(), StatusCode::OK);
    // The same layers as every other route: request id and security headers.
    assert!(hello.headers().contains_key("x-request-id"));
    assert_eq!(
        hello
            .headers()
            .get("x-content-type-options")
            .map(|v| v.as_bytes()),
        Some(&b"nosniff"[..])
    );
    assert_eq!(hello.text().await.expect("body"), "ok");
}
