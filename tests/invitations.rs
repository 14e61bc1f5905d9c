//! Staff and admin accounts by invitation: the admin gets a one-time link instead of typing
//! a password, the employee sets the password through it and is logged in; the link works
//! once, for 24 hours, and a new one replaces it.

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use sovamed::db::models::{
    audit_event,
    user::{self, Role},
};

use crate::{
    admin::{admin_client, token_of},
    support::{TestApp, browser, csrf_token, location},
};

const PASSWORD: &str = "front desk passphrase";

/// The token of the link on the admin's link page (32 hex digits after `/invite/`).
pub(crate) fn invitation_token(html: &str) -> String {
    let marker = "/invite/";
    let start = html
        .find(marker)
        .map(|i| i + marker.len())
        .expect("the page shows an invitation link");
    let token: String = html[start..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    assert_eq!(token.len(), 32, "a 128-bit token: {token}");
    token
}

/// Invites a staff member through the admin's form; the link page's body.
pub(crate) async fn invite(admin: &Client, app: &TestApp, email: &str, role: &str) -> String {
    let token = token_of(admin, app, "/admin/users").await;
    let response = admin
        .post(app.url("/admin/users"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", email),
            ("full_name", "Регистратура Первая"),
            ("phone", "+7 912 000-00-01"),
            ("role", role),
        ])
        .send()
        .await
        .expect("invite");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    response.text().await.expect("body")
}

/// Opens the link in `client` and posts the form with `password` twice (or `confirm`).
pub(crate) async fn accept(
    client: &Client,
    app: &TestApp,
    token: &str,
    password: &str,
    confirm: &str,
) -> Response {
    let path = format!("/invite/{token}");
    let page = client.get(app.url(&path)).send().await.expect("GET link");
    assert_eq!(page.status(), StatusCode::OK, "the link opens");
    let csrf = csrf_token(&page.text().await.expect("body"));
    client
        .post(app.url(&path))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("password", password),
            ("password_confirm", confirm),
        ])
        .send()
        .await
        .expect("POST link")
}

/// GET and POST of a dead link: the same 404 page.
async fn assert_dead(app: &TestApp, token: &str) {
    let client = browser();
    let path = format!("/invite/{token}");
    let response = client.get(app.url(&path)).send().await.expect("GET link");
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "GET {path}");
    assert_eq!(
        response
            .headers()
            .get("referrer-policy")
            .and_then(|v| v.to_str().ok()),
        Some("no-referrer")
    );
    let body = response.text().await.expect("body");
    assert!(
        body.contains("Ссылка недействительна или устарела"),
        "{body}"
    );
    assert!(!body.contains("Придумайте пароль"));
    // A session and a CSRF token from a page that has a form, so the post reaches the handler.
    let csrf = token_of(&client, app, "/login").await;
    let response = client
        .post(app.url(&path))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("password", "another fine passphrase"),
            ("password_confirm", "another fine passphrase"),
        ])
        .send()
        .await
        .expect("POST link");
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "POST {path}");
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("Ссылка недействительна или устарела")
    );
}

/// «Выдать новую ссылку» on the account page at `path`; the new link's token.
async fn reissue(admin: &Client, app: &TestApp, path: &str) -> String {
    let token = token_of(admin, app, path).await;
    let response = admin
        .post(app.url(&format!("{path}/invite")))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("reissue");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let body = response.text().await.expect("body");
    assert!(body.contains("Новая ссылка-приглашение"), "{body}");
    invitation_token(&body)
}

async fn api_login(app: &TestApp, email: &str, password: &str) -> (StatusCode, Value) {
    let response = browser()
        .post(app.url("/api/v1/user/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("API login");
    let status = response.status();
    (status, response.json().await.expect("json"))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invitation_sets_the_password_once_and_logs_the_employee_in() {
    let app = TestApp::spawn().await;
    let (admin, _) = admin_client(&app).await;

    // The admin types no password and gets the link once, on the configured address.
    let page = invite(&admin, &app, "Desk@Example.ru", "staff").await;
    assert!(page.contains("Учётная запись создана"), "{page}");
    assert!(page.contains("24 часа"));
    assert!(page.contains("один раз"));
    let token = invitation_token(&page);
    assert!(page.contains(&format!("{}/invite/{token}", app.config.public_base_url)));
    let mut conn = app.db().await;
    let desk = user::find_by_email(&mut conn, "desk@example.ru")
        .await
        .expect("query")
        .expect("created");
    assert_eq!(desk.role(), Role::Staff);
    assert!(desk.password_set_at.is_none());
    assert!(
        desk.password_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "an unusable but real hash, so a login costs what a wrong password does"
    );
    // Only the token's hash is stored, for 24 hours.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM invitations WHERE token_hash = '{token}'"
        ))
        .await,
        0
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM invitations WHERE token_hash = encode(sha256('{token}'::bytea), 'hex') \
             AND user_id = {} AND expires_at = created_at + interval '24 hours' AND used_at IS NULL",
            desk.id
        ))
        .await,
        1
    );

    // Before the password is set the account cannot log in, with the generic failure.
    let refused = app.log_in(&browser(), "desk@example.ru", PASSWORD).await;
    assert_eq!(refused.status(), StatusCode::OK);
    assert!(
        refused
            .text()
            .await
            .expect("body")
            .contains("Неверная электронная почта или пароль.")
    );
    let (status, body) = api_login(&app, "desk@example.ru", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "invalid_credentials");

    // The invitee's page: the e-mail and the name, no referrer.
    let employee = browser();
    let path = format!("/invite/{token}");
    let response = employee.get(app.url(&path)).send().await.expect("GET link");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("referrer-policy")
            .and_then(|v| v.to_str().ok()),
        Some("no-referrer")
    );
    let body = response.text().await.expect("body");
    assert!(body.contains("Придумайте пароль"));
    assert!(body.contains("desk@example.ru"));
    assert!(body.contains("Регистратура Первая"));

    // A weak password and a mismatch: the form again, 422, on their fields; nothing spent.
    let weak = accept(&employee, &app, &token, "password1", "password1").await;
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = weak.text().await.expect("body");
    assert!(body.contains("id=\"password-error\""), "{body}");
    assert!(body.contains("слишком распространён"));
    let mismatch = accept(&employee, &app, &token, PASSWORD, "front desk passphrasf").await;
    assert_eq!(mismatch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = mismatch.text().await.expect("body");
    assert!(body.contains("id=\"password_confirm-error\""), "{body}");
    assert!(body.contains("Пароли не совпадают"));

    // The password is set: logged in at once, on the role's home.
    let accepted = accept(&employee, &app, &token, PASSWORD, PASSWORD).await;
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&accepted), "/staff");
    let desk_page = employee
        .get(app.url("/logout"))
        .send()
        .await
        .expect("logged-in page");
    assert_eq!(
        desk_page.status(),
        StatusCode::OK,
        "the logout question is shown only to a logged-in user"
    );
    let stored = user::find(&mut conn, desk.id)
        .await
        .expect("query")
        .expect("row");
    assert!(stored.password_set_at.is_some());
    assert_eq!(stored.session_version, desk.session_version);

    // The link works once.
    assert_dead(&app, &token).await;

    // Now both logins work with the chosen password.
    let logged_in = app.log_in(&browser(), "desk@example.ru", PASSWORD).await;
    assert_eq!(logged_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&logged_in), "/staff");
    let (status, body) = api_login(&app, "desk@example.ru", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    for action in ["user_invited", "invitation_accepted"] {
        assert_eq!(
            audit_event::count(&mut conn, action, &desk.id.to_string())
                .await
                .expect("count"),
            1,
            "{action}"
        );
    }

    // The account page no longer offers a link.
    let account_page = admin
        .get(app.url(&format!("/admin/users/{}", desk.id)))
        .send()
        .await
        .expect("account page")
        .text()
        .await
        .expect("body");
    assert!(!account_page.contains("Приглашение не использовано"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_expires_after_a_day_and_a_new_one_replaces_the_old() {
    let app = TestApp::spawn().await;
    let (admin, _) = admin_client(&app).await;
    let first = invitation_token(&invite(&admin, &app, "desk@example.ru", "admin").await);
    let mut conn = app.db().await;
    let desk = user::find_by_email(&mut conn, "desk@example.ru")
        .await
        .expect("query")
        .expect("created");
    assert_eq!(desk.role(), Role::Admin);

    // A day later (its expiry moved into the past) the link is dead.
    let expired = app
        .count(&format!(
            "WITH i AS (UPDATE invitations SET expires_at = now() - interval '1 second' \
             WHERE token_hash = encode(sha256('{first}'::bytea), 'hex') RETURNING 1) SELECT count(*) AS n FROM i"
        ))
        .await;
    assert_eq!(expired, 1);
    assert_dead(&app, &first).await;

    // The account page says the invitation was not used and offers a new link.
    let path = format!("/admin/users/{}", desk.id);
    let account_page = admin
        .get(app.url(&path))
        .send()
        .await
        .expect("account page")
        .text()
        .await
        .expect("body");
    assert!(account_page.contains("Приглашение не использовано"));
    assert!(account_page.contains("Выданная ссылка больше не действует"));
    assert!(account_page.contains(&format!("action=\"{path}/invite\"")));
    assert!(account_page.contains("Выдать новую ссылку"));

    // A new link, shown once like the first.
    let second = reissue(&admin, &app, &path).await;
    assert_ne!(second, first);
    let account_page = admin
        .get(app.url(&path))
        .send()
        .await
        .expect("account page")
        .text()
        .await
        .expect("body");
    assert!(account_page.contains("Выданная ссылка действует до"));

    // A third link revokes the second, unused and unexpired.
    let third = reissue(&admin, &app, &path).await;
    assert_dead(&app, &second).await;
    assert_dead(&app, &first).await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM invitations WHERE user_id = {} AND revoked_at IS NOT NULL",
            desk.id
        ))
        .await,
        2
    );
    assert_eq!(
        audit_event::count(&mut conn, "invitation_reissued", &desk.id.to_string())
            .await
            .expect("count"),
        2
    );

    // A disabled account's link is dead too, and comes back with the account.
    user::set_disabled(&mut conn, desk.id, true)
        .await
        .expect("disable");
    assert_dead(&app, &third).await;
    user::set_disabled(&mut conn, desk.id, false)
        .await
        .expect("enable");
    let employee = browser();
    let accepted = accept(&employee, &app, &third, PASSWORD, PASSWORD).await;
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&accepted), "/admin");

    // An account with a password takes no new link.
    let token = token_of(&admin, &app, &path).await;
    let refused = admin
        .post(app.url(&format!("{path}/invite")))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("reissue");
    assert_eq!(refused.status(), StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_form_invites_staff_and_admins_only_and_refuses_a_taken_address() {
    let app = TestApp::spawn().await;
    let (admin, _) = admin_client(&app).await;
    invite(&admin, &app, "desk@example.ru", "staff").await;
    for (email, role, field) in [
        ("desk@example.ru", "staff", "email"),
        ("patient@example.ru", "patient", "role"),
        ("someone@example.ru", "wizard", "role"),
    ] {
        let token = token_of(&admin, &app, "/admin/users").await;
        let response = admin
            .post(app.url("/admin/users"))
            .form(&[
                ("csrf_token", token.as_str()),
                ("email", email),
                ("full_name", "Регистратура Вторая"),
                ("role", role),
            ])
            .send()
            .await
            .expect("invite");
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{role}"
        );
        let body = response.text().await.expect("body");
        assert!(body.contains(&format!("id=\"{field}-error\"")), "{body}");
        assert!(!body.contains("/invite/"), "no link for a refused form");
    }
    assert_eq!(
        app.count("SELECT count(*) AS n FROM users WHERE email IN ('patient@example.ru', 'someone@example.ru')")
            .await,
        0
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM invitations").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_cannot_reach_the_invitation_routes() {
    let app = TestApp::spawn().await;
    let (admin, _) = admin_client(&app).await;
    let token = invitation_token(&invite(&admin, &app, "new@example.ru", "staff").await);
    let mut conn = app.db().await;
    let invited = user::find_by_email(&mut conn, "new@example.ru")
        .await
        .expect("query")
        .expect("created");

    app.create_user("s@example.ru", PASSWORD, Role::Staff).await;
    let staff = browser();
    app.log_in(&staff, "s@example.ru", PASSWORD).await;
    // The logout question carries the session's CSRF token, so the posts reach the role gate.
    let csrf = token_of(&staff, &app, "/logout").await;
    let create = staff
        .post(app.url("/admin/users"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "another@example.ru"),
            ("full_name", "Регистратура Вторая"),
            ("role", "admin"),
        ])
        .send()
        .await
        .expect("invite");
    assert_eq!(create.status(), StatusCode::FORBIDDEN);
    let reissued = staff
        .post(app.url(&format!("/admin/users/{}/invite", invited.id)))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("reissue");
    assert_eq!(reissued.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM users WHERE email = 'another@example.ru'")
            .await,
        0
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM invitations").await, 1);

    // Anonymous: to the login, nothing issued.
    let anonymous = browser()
        .post(app.url(&format!("/admin/users/{}/invite", invited.id)))
        .form(&[("csrf_token", "x")])
        .send()
        .await
        .expect("reissue");
    assert_eq!(
        anonymous.status(),
        StatusCode::FORBIDDEN,
        "no session, no CSRF"
    );

    // The first link still works.
    let accepted = accept(&browser(), &app, &token, PASSWORD, PASSWORD).await;
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
}
