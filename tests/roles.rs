//! The role matrix of the page routes.

use reqwest::StatusCode;
use sovamed::db::models::user::Role;

use crate::support::{TestApp, browser, location};

const PASSWORD: &str = "a perfectly fine passphrase";

#[tokio::test(flavor = "multi_thread")]
async fn every_page_route_answers_each_role_as_the_contract_says() {
    let app = TestApp::spawn().await;
    let mut clients = vec![("anonymous", browser())];
    for (name, role) in [
        ("patient", Role::Patient),
        ("staff", Role::Staff),
        ("admin", Role::Admin),
    ] {
        let email = format!("{name}@example.ru");
        app.create_user(&email, PASSWORD, role).await;
        let client = browser();
        let response = app.log_in(&client, &email, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{name} logs in");
        assert_eq!(location(&response), role.home_path());
        clients.push((name, client));
    }

    // Expected answer per route for anonymous, patient, staff, admin.
    let matrix: [(&str, [u16; 4]); 11] = [
        ("/", [200, 200, 200, 200]),
        ("/doctors", [200, 200, 200, 200]),
        ("/staff/sync", [303, 403, 200, 200]),
        ("/cabinet", [303, 200, 403, 403]),
        ("/staff", [303, 403, 200, 200]),
        ("/staff/callers", [303, 403, 200, 200]),
        ("/staff/book", [303, 403, 200, 200]),
        ("/admin", [303, 403, 403, 200]),
        ("/admin/audit", [303, 403, 403, 200]),
        ("/login", [200, 303, 303, 303]),
        ("/register", [200, 303, 303, 303]),
    ];
    for (path, expected) in matrix {
        for ((who, client), want) in clients.iter().zip(expected) {
            let response = client.get(app.url(path)).send().await.expect("request");
            assert_eq!(response.status().as_u16(), want, "GET {path} as {who}");
            if want == 303 && *who == "anonymous" {
                assert_eq!(
                    location(&response),
                    format!("/login?next={}", path.replace('/', "%2F"))
                );
            }
            if want == 403 {
                let body = response.text().await.expect("body");
                assert!(
                    body.contains("Доступ запрещён"),
                    "a 403 page for {who} at {path}"
                );
            }
            // HEAD follows GET's access rules.
            let head = client.head(app.url(path)).send().await.expect("HEAD");
            assert_eq!(head.status().as_u16(), want, "HEAD {path} as {who}");
        }
    }

    // Each page shows who is logged in.
    for ((who, client), path) in clients.iter().skip(1).zip(["/cabinet", "/staff", "/admin"]) {
        let body = client
            .get(app.url(path))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("body");
        assert!(
            body.contains("Тестов Тест Тестович"),
            "{who} sees their name at {path}"
        );
        assert!(body.contains("Выйти"), "{who} sees a logout control");
    }

    // Denials are audited.
    let mut conn = app.db().await;
    let denied = sovamed::db::models::audit_event::count(&mut conn, "access_denied", "/admin")
        .await
        .expect("count");
    assert_eq!(denied, 4, "patient and staff, GET and HEAD");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_pages_and_methods_get_html_errors() {
    let app = TestApp::spawn().await;
    let client = browser();
    let missing = client
        .get(app.url("/no-such-page"))
        .send()
        .await
        .expect("404");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(
        missing.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/html")
    );
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::TRACE,
    ] {
        let response = client
            .request(method.clone(), app.url("/login"))
            .send()
            .await
            .expect("request");
        assert!(
            matches!(response.status().as_u16(), 403 | 405),
            "{method} /login gives {}",
            response.status()
        );
    }
}
