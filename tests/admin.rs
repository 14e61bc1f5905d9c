//! Account management by admins.

use reqwest::StatusCode;
use sovamed::db::models::user::{self, Role};

use crate::{
    invitations::{accept, invitation_token, invite},
    support::{TestApp, browser, csrf_token, location},
};

pub(crate) const ADMIN_PASSWORD: &str = "admin passphrase 42";

pub(crate) async fn admin_client(app: &TestApp) -> (reqwest::Client, i64) {
    let admin = app
        .create_user("root@example.ru", ADMIN_PASSWORD, Role::Admin)
        .await;
    let client = browser();
    let response = app.log_in(&client, "root@example.ru", ADMIN_PASSWORD).await;
    assert_eq!(location(&response), "/admin");
    (client, admin.id)
}

pub(crate) async fn token_of(client: &reqwest::Client, app: &TestApp, path: &str) -> String {
    csrf_token(
        &client
            .get(app.url(path))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("body"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_create_change_reset_and_disable_accounts() {
    let app = TestApp::spawn().await;
    let (admin, admin_id) = admin_client(&app).await;

    // Create a staff account: by invitation, the employee choosing the password.
    let link_page = invite(&admin, &app, "Desk@Example.ru", "staff").await;
    let accepted = accept(
        &browser(),
        &app,
        &invitation_token(&link_page),
        "front desk passphrase",
        "front desk passphrase",
    )
    .await;
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    let list = admin
        .get(app.url("/admin/users?q=desk"))
        .send()
        .await
        .expect("list")
        .text()
        .await
        .expect("body");
    assert!(list.contains("desk@example.ru"));
    let mut conn = app.db().await;
    let desk = user::find_by_email(&mut conn, "desk@example.ru")
        .await
        .expect("query")
        .expect("created");
    assert_eq!(desk.role(), Role::Staff);

    // A bad name and a duplicate are refused on their fields.
    let token = token_of(&admin, &app, "/admin/users").await;
    let again = admin
        .post(app.url("/admin/users"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "desk@example.ru"),
            ("full_name", "Кто-то"),
            ("role", "staff"),
        ])
        .send()
        .await
        .expect("create");
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = again.text().await.expect("body");
    assert!(body.contains("id=\"full_name-error\""), "{body}");
    let token = token_of(&admin, &app, "/admin/users").await;
    let again = admin
        .post(app.url("/admin/users"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "desk@example.ru"),
            ("full_name", "Регистратура Вторая"),
            ("role", "staff"),
        ])
        .send()
        .await
        .expect("create");
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = again.text().await.expect("body");
    assert!(body.contains("Этот адрес уже зарегистрирован"), "{body}");

    // The staff member logs in; a role change ends that session.
    let desk_client = browser();
    app.log_in(&desk_client, "desk@example.ru", "front desk passphrase")
        .await;
    assert_eq!(
        desk_client
            .get(app.url("/staff"))
            .send()
            .await
            .expect("staff")
            .status(),
        StatusCode::OK
    );
    let path = format!("/admin/users/{}", desk.id);
    let token = token_of(&admin, &app, &path).await;
    let changed = admin
        .post(app.url(&format!("{path}/role")))
        .form(&[
            ("csrf_token", token.as_str()),
            ("role", "patient"),
            ("confirm", "1"),
        ])
        .send()
        .await
        .expect("role");
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        desk_client
            .get(app.url("/staff"))
            .send()
            .await
            .expect("staff")
            .status(),
        StatusCode::SEE_OTHER
    );

    // A password reset: the old password stops working.
    let token = token_of(&admin, &app, &path).await;
    let reset = admin
        .post(app.url(&format!("{path}/password")))
        .form(&[
            ("csrf_token", token.as_str()),
            ("password", "a fresh desk passphrase"),
            ("confirm", "1"),
        ])
        .send()
        .await
        .expect("reset");
    assert_eq!(reset.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.log_in(&browser(), "desk@example.ru", "front desk passphrase")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.log_in(&browser(), "desk@example.ru", "a fresh desk passphrase")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );

    // Disabled accounts cannot log in; admins cannot disable themselves.
    let token = token_of(&admin, &app, &path).await;
    admin
        .post(app.url(&format!("{path}/disable")))
        .form(&[("csrf_token", token.as_str()), ("confirm", "1")])
        .send()
        .await
        .expect("disable");
    assert_eq!(
        app.log_in(&browser(), "desk@example.ru", "a fresh desk passphrase")
            .await
            .status(),
        StatusCode::OK
    );
    let token = token_of(&admin, &app, &path).await;
    let own = admin
        .post(app.url(&format!("/admin/users/{admin_id}/disable")))
        .form(&[("csrf_token", token.as_str()), ("confirm", "1")])
        .send()
        .await
        .expect("disable self");
    assert_eq!(own.status(), StatusCode::CONFLICT);

    // Without the CSRF token nothing changes.
    let forged = admin
        .post(app.url(&format!("{path}/enable")))
        .form(&[("x", "y")])
        .send()
        .await
        .expect("enable");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let desk = user::find(&mut conn, desk.id)
        .await
        .expect("query")
        .expect("row");
    assert!(desk.disabled);
    let audited = sovamed::db::models::audit_event::count(
        &mut conn,
        "user_role_changed",
        &format!("{} → patient", desk.id),
    )
    .await
    .expect("count");
    assert_eq!(audited, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_reach_account_management() {
    let app = TestApp::spawn().await;
    for (email, role) in [
        ("p@example.ru", Role::Patient),
        ("s@example.ru", Role::Staff),
    ] {
        app.create_user(email, "some passphrase 1", role).await;
        let client = browser();
        app.log_in(&client, email, "some passphrase 1").await;
        assert_eq!(
            client
                .get(app.url("/admin/users"))
                .send()
                .await
                .expect("page")
                .status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            client
                .get(app.url("/admin/users/1"))
                .send()
                .await
                .expect("page")
                .status(),
            StatusCode::FORBIDDEN
        );
    }
    let anonymous = browser()
        .get(app.url("/admin/users"))
        .send()
        .await
        .expect("page");
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
}
