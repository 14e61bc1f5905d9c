//! The admin's screens beyond account editing: confirmations before destructive changes, the
//! audit screen, and the account list's filters and last logins.

use reqwest::StatusCode;
use sovamed::db::models::{
    audit_event::{self, NewAuditEvent},
    user::{self, NewUser, Role},
};

use crate::{
    admin::{admin_client, token_of},
    support::{TestApp, browser, csrf_token, location},
};

const PASSWORD: &str = "a perfectly fine passphrase";

/// GET `path` as `client`, expecting 200; the body.
async fn page(client: &reqwest::Client, app: &TestApp, path: &str) -> String {
    let response = client.get(app.url(path)).send().await.expect("page");
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.text().await.expect("body")
}

/// GET `path` as `client`, expecting 422; the body.
async fn refused(client: &reqwest::Client, app: &TestApp, path: &str) -> String {
    let response = client.get(app.url(path)).send().await.expect("page");
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "GET {path}"
    );
    response.text().await.expect("body")
}

/// Appends `n` events directly, as the core would.
async fn append_events(app: &TestApp, n: usize, actor: Option<i64>, action: &str, subject: &str) {
    let conn = app.db().await;
    for _ in 0..n {
        audit_event::insert(
            &conn,
            &NewAuditEvent {
                actor_user_id: actor,
                action,
                subject: Some(subject),
                client_ip: Some("127.0.0.1"),
                request_id: None,
                details: serde_json::json!({}),
            },
        )
        .await
        .expect("insert event");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn destructive_changes_ask_for_confirmation_first() {
    let app = TestApp::spawn().await;
    let (admin, _) = admin_client(&app).await;
    let desk = app
        .create_user("desk@example.ru", PASSWORD, Role::Staff)
        .await;
    let desk_client = browser();
    app.log_in(&desk_client, "desk@example.ru", PASSWORD).await;
    let path = format!("/admin/users/{}", desk.id);

    // Disabling without `confirm`: a confirmation page, and nothing changes.
    let token = token_of(&admin, &app, &path).await;
    let asked = admin
        .post(app.url(&format!("{path}/disable")))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("disable");
    assert_eq!(asked.status(), StatusCode::OK);
    let confirmation = asked.text().await.expect("body");
    assert!(confirmation.contains("Отключить учётную запись?"));
    assert!(confirmation.contains("desk@example.ru"));
    assert!(confirmation.contains(&format!("action=\"{path}/disable\"")));
    assert!(confirmation.contains("name=\"confirm\" value=\"1\""));
    assert!(confirmation.contains("Подтвердить"));
    assert!(confirmation.contains(&format!("href=\"{path}\">Отмена")));
    let mut conn = app.db().await;
    let unchanged = user::find(&mut conn, desk.id)
        .await
        .expect("query")
        .expect("row");
    assert!(!unchanged.disabled);
    assert_eq!(unchanged.session_version, desk.session_version);

    // A role change, a password and "end sessions" ask the same way.
    let token = token_of(&admin, &app, &path).await;
    let role = admin
        .post(app.url(&format!("{path}/role")))
        .form(&[("csrf_token", token.as_str()), ("role", "patient")])
        .send()
        .await
        .expect("role");
    assert_eq!(role.status(), StatusCode::OK);
    let body = role.text().await.expect("body");
    assert!(body.contains("Сменить роль?"));
    assert!(body.contains("с «сотрудник» на «пациент»"));
    assert!(body.contains("name=\"role\" value=\"patient\""));
    let token = token_of(&admin, &app, &path).await;
    let password = admin
        .post(app.url(&format!("{path}/password")))
        .form(&[
            ("csrf_token", token.as_str()),
            ("password", "a brand new desk passphrase"),
        ])
        .send()
        .await
        .expect("password");
    assert_eq!(password.status(), StatusCode::OK);
    assert!(
        password
            .text()
            .await
            .expect("body")
            .contains("Задать новый пароль?")
    );
    let token = token_of(&admin, &app, &path).await;
    let sessions = admin
        .post(app.url(&format!("{path}/sessions/end")))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("sessions");
    assert_eq!(sessions.status(), StatusCode::OK);
    assert!(
        sessions
            .text()
            .await
            .expect("body")
            .contains("Завершить все сеансы?")
    );
    let unchanged = user::find(&mut conn, desk.id)
        .await
        .expect("query")
        .expect("row");
    assert_eq!(unchanged.role(), Role::Staff);
    assert_eq!(unchanged.password_hash, desk.password_hash);
    assert_eq!(unchanged.session_version, desk.session_version);
    assert_eq!(
        desk_client
            .get(app.url("/staff"))
            .send()
            .await
            .expect("staff")
            .status(),
        StatusCode::OK,
        "the staff member's session survives the questions"
    );

    // The confirmation page's own form, posted: the account is disabled.
    let confirmed = admin
        .post(app.url(&format!("{path}/disable")))
        .form(&[
            ("csrf_token", csrf_token(&confirmation).as_str()),
            ("confirm", "1"),
        ])
        .send()
        .await
        .expect("disable");
    assert_eq!(confirmed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&confirmed), format!("{path}?done=disable"));
    let disabled = user::find(&mut conn, desk.id)
        .await
        .expect("query")
        .expect("row");
    assert!(disabled.disabled);
    assert_eq!(
        desk_client
            .get(app.url("/staff"))
            .send()
            .await
            .expect("staff")
            .status(),
        StatusCode::SEE_OTHER
    );
    let audited = audit_event::count(&mut conn, "user_disabled", &desk.id.to_string())
        .await
        .expect("count");
    assert_eq!(audited, 1);

    // Enabling needs no confirmation.
    let token = token_of(&admin, &app, &path).await;
    let enabled = admin
        .post(app.url(&format!("{path}/enable")))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("enable");
    assert_eq!(enabled.status(), StatusCode::SEE_OTHER);
    assert!(
        !user::find(&mut conn, desk.id)
            .await
            .expect("query")
            .expect("row")
            .disabled
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_screen_filters_pages_and_refuses_bad_filters() {
    let app = TestApp::spawn().await;
    let (admin, admin_id) = admin_client(&app).await;
    let anna = app
        .create_user("anna@example.ru", PASSWORD, Role::Patient)
        .await;
    app.log_in(&browser(), "anna@example.ru", PASSWORD).await;
    app.log_in(&browser(), "anna@example.ru", "not her passphrase")
        .await;

    // By actor (a part of the e-mail): Anna's logins, not the admin's.
    let body = page(&admin, &app, "/admin/audit?actor=anna").await;
    assert!(body.contains("Найдено событий: 2"), "{body}");
    assert!(body.contains("<td data-label=\"Действие\">успешный вход</td>"));
    assert!(body.contains("<td data-label=\"Действие\">неудачная попытка входа</td>"));
    assert!(body.contains("anna@example.ru"));
    assert!(body.contains("(пациент)"));
    assert!(!body.contains("root@example.ru"));
    assert!(!body.contains(">login_"), "codes are never shown as text");

    // By action.
    let body = page(&admin, &app, "/admin/audit?actor=anna&action=login_failed").await;
    assert!(body.contains("Найдено событий: 1"), "{body}");
    assert!(!body.contains("<td data-label=\"Действие\">успешный вход</td>"));

    // Paging: 50 a page, newest first, the filters kept in the links.
    append_events(
        &app,
        60,
        Some(anna.id),
        "user_sessions_ended",
        &anna.id.to_string(),
    )
    .await;
    let first = page(&admin, &app, "/admin/audit?action=user_sessions_ended").await;
    assert!(first.contains("Найдено событий: 60"));
    assert_eq!(
        first
            .matches("<td data-label=\"Действие\">завершены все сеансы</td>")
            .count(),
        50
    );
    assert!(
        first.contains(
            "/admin/audit?actor=&#38;action=user_sessions_ended&#38;patient=&#38;date_from=&#38;date_to=&#38;page=2"
        ),
        "{first}"
    );
    let second = page(
        &admin,
        &app,
        "/admin/audit?action=user_sessions_ended&page=2",
    )
    .await;
    assert_eq!(
        second
            .matches("<td data-label=\"Действие\">завершены все сеансы</td>")
            .count(),
        10
    );
    assert!(second.contains(&format!("href=\"/admin/users/{}\"", anna.id)));

    // By patient: what she did, and what was done to her account by others (here a system
    // event naming her id), but not events about someone else.
    append_events(&app, 1, None, "user_enabled", &anna.id.to_string()).await;
    append_events(&app, 1, None, "user_enabled", &admin_id.to_string()).await;
    let body = page(
        &admin,
        &app,
        &format!("/admin/audit?patient={}&action=user_enabled", anna.id),
    )
    .await;
    assert!(body.contains("Найдено событий: 1"), "{body}");
    assert!(body.contains("система"));
    assert!(body.contains(&format!("учётная запись № {}", anna.id)));
    let body = page(&admin, &app, &format!("/admin/audit?patient={}", anna.id)).await;
    assert!(body.contains("Найдено событий: 63"), "{body}");

    // By days (Moscow days, the screen's): every event is from today.
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Moscow)
        .date_naive();
    let (yesterday, tomorrow) = (
        today.pred_opt().expect("day"),
        today.succ_opt().expect("day"),
    );
    let body = page(
        &admin,
        &app,
        &format!("/admin/audit?actor=anna&date_from={yesterday}&date_to={tomorrow}"),
    )
    .await;
    assert!(body.contains("Найдено событий: 62"), "{body}");
    let body = page(
        &admin,
        &app,
        &format!("/admin/audit?actor=anna&date_to={yesterday}"),
    )
    .await;
    assert!(body.contains("Событий по этим условиям нет."));

    // Bad filters: the page with the field's message, 422.
    let body = refused(&admin, &app, "/admin/audit?date_from=2026-13-01").await;
    assert!(body.contains("id=\"date_from-error\""));
    assert!(body.contains("Дата в формате ГГГГ-ММ-ДД"));
    let long = "я".repeat(101);
    let body = refused(&admin, &app, &format!("/admin/audit?actor={long}")).await;
    assert!(body.contains("id=\"actor-error\""));
    let body = refused(&admin, &app, "/admin/audit?patient=abc").await;
    assert!(body.contains("id=\"patient-error\""));
    let body = refused(&admin, &app, "/admin/audit?action=drop_everything").await;
    assert!(body.contains("id=\"action-error\""));
    let body = refused(
        &admin,
        &app,
        &format!("/admin/audit?date_from={tomorrow}&date_to={yesterday}"),
    )
    .await;
    assert!(body.contains("id=\"date_to-error\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_see_the_audit_screen() {
    let app = TestApp::spawn().await;
    for (email, role) in [
        ("p@example.ru", Role::Patient),
        ("s@example.ru", Role::Staff),
    ] {
        app.create_user(email, PASSWORD, role).await;
        let client = browser();
        app.log_in(&client, email, PASSWORD).await;
        let response = client
            .get(app.url("/admin/audit"))
            .send()
            .await
            .expect("page");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{email}");
    }
    let anonymous = browser()
        .get(app.url("/admin/audit"))
        .send()
        .await
        .expect("page");
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&anonymous), "/login?next=%2Fadmin%2Faudit");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_account_list_filters_by_role_and_status_and_shows_last_logins() {
    let app = TestApp::spawn().await;
    let (admin, _) = admin_client(&app).await;
    let patient = app
        .create_user("pat@example.ru", PASSWORD, Role::Patient)
        .await;
    app.create_user("desk@example.ru", PASSWORD, Role::Staff)
        .await;
    let gone = app
        .create_user("gone@example.ru", PASSWORD, Role::Staff)
        .await;
    let mut conn = app.db().await;
    user::set_disabled(&mut conn, gone.id, true)
        .await
        .expect("disable");

    let staff = page(&admin, &app, "/admin/users?role=staff").await;
    assert!(staff.contains("desk@example.ru") && staff.contains("gone@example.ru"));
    assert!(!staff.contains("pat@example.ru") && !staff.contains("root@example.ru"));
    let disabled = page(&admin, &app, "/admin/users?status=disabled").await;
    assert!(disabled.contains("gone@example.ru"));
    assert!(!disabled.contains("desk@example.ru") && !disabled.contains("pat@example.ru"));
    let active_staff = page(&admin, &app, "/admin/users?role=staff&status=active").await;
    assert!(active_staff.contains("desk@example.ru"));
    assert!(!active_staff.contains("gone@example.ru"));
    refused(&admin, &app, "/admin/users?role=wizard").await;
    refused(&admin, &app, "/admin/users?status=sleeping").await;

    // The last login: none yet, then the time of the login, on Moscow clocks.
    let patients = page(&admin, &app, "/admin/users?role=patient").await;
    assert!(patients.contains("не входил"));
    app.log_in(&browser(), "pat@example.ru", PASSWORD).await;
    let logged_in = user::find(&mut conn, patient.id)
        .await
        .expect("query")
        .expect("row")
        .last_login_at
        .expect("last login noted");
    let patients = page(&admin, &app, "/admin/users?role=patient").await;
    assert!(!patients.contains("не входил"));
    assert!(
        patients.contains(&sovamed::web::labels::moscow_time(logged_in)),
        "{patients}"
    );

    // The pager's links keep the filters, URL-encoded.
    for n in 0..55 {
        let email = format!("bulk{n}@example.ru");
        user::insert(
            &mut conn,
            &NewUser {
                email: &email,
                password_hash: "not a hash: nobody logs in",
                full_name: "Пакетный Пользователь",
                phone: None,
                birth_date: None,
                role: Role::Patient,
                phone_verified_at: None,
            },
        )
        .await
        .expect("insert user");
    }
    let first = page(
        &admin,
        &app,
        "/admin/users?q=%D0%9F%D0%B0%D0%BA%D0%B5%D1%82%D0%BD%D1%8B%D0%B9&role=patient",
    )
    .await;
    assert!(first.contains("Учётные записи (всего 55)"));
    assert!(
        first.contains(
            "/admin/users?q=%D0%9F%D0%B0%D0%BA%D0%B5%D1%82%D0%BD%D1%8B%D0%B9&#38;role=patient&#38;status=&#38;page=2"
        ),
        "{first}"
    );
}
