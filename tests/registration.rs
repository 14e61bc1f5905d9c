//! Patient self-registration.

use reqwest::StatusCode;
use sovamed::db::models::user::{self, Role};

use crate::support::{TestApp, browser, csrf_token, location};

fn valid_form(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("csrf_token", token.to_owned()),
        ("email", "  New.Patient@Example.ru ".into()),
        ("password", "пароль длинный и свой 42".into()),
        ("full_name", "Новикова  Ольга Петровна".into()),
        ("phone", "8 (912) 345-67-89".into()),
        ("birth_date", "1990-05-17".into()),
        ("consent_personal", "yes".into()),
        ("consent_health", "yes".into()),
    ]
}

fn with(
    form: &[(&'static str, String)],
    field: &str,
    value: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut form: Vec<_> = form
        .iter()
        .filter(|(k, _)| *k != field && !(field == "consent" && k.starts_with("consent")))
        .cloned()
        .collect();
    if let Some(value) = value {
        let key = match field {
            "email" => "email",
            "password" => "password",
            "full_name" => "full_name",
            "phone" => "phone",
            "birth_date" => "birth_date",
            _ => "consent_personal",
        };
        form.push((key, value.to_owned()));
    }
    form
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patient_registers_with_a_code_and_lands_in_the_cabinet() {
    let (app, emulators) = crate::support::with_emulators_and(|config| {
        config.anonymous_booking_verify = true;
    })
    .await;
    let client = browser();
    let token = csrf_token(
        &client
            .get(app.url("/register"))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("body"),
    );
    let response = client
        .post(app.url("/register"))
        .form(&valid_form(&token))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/phone-code");
    let code_page = client
        .get(app.url("/phone-code"))
        .send()
        .await
        .expect("code page")
        .text()
        .await
        .expect("body");
    assert!(
        code_page.contains("+7912***6789"),
        "the page names the masked phone"
    );
    let control = emulators.control.clone();
    assert!(
        crate::support::eventually(10, || control
            .sms_messages()
            .iter()
            .any(|m| m.to == "79123456789"))
        .await
    );
    let text = control.sms_messages().remove(0).text;
    let code = text
        .split_whitespace()
        .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
        .expect("a code");
    let confirmed = client
        .post(app.url("/phone-code"))
        .form(&[
            ("csrf_token", csrf_token(&code_page)),
            ("code", code.to_owned()),
        ])
        .send()
        .await
        .expect("confirm");
    assert_eq!(location(&confirmed), "/login?registered=1");
    let login = app
        .log_in(
            &client,
            "new.patient@example.ru",
            "пароль длинный и свой 42",
        )
        .await;
    assert_eq!(location(&login), "/cabinet");
    let cabinet = client
        .get(app.url("/cabinet"))
        .send()
        .await
        .expect("cabinet")
        .text()
        .await
        .expect("body");
    assert!(cabinet.contains("Новикова Ольга Петровна"));
    assert!(cabinet.contains("+79123456789"));

    let mut conn = app.db().await;
    let stored = user::find_by_email(&mut conn, "new.patient@example.ru")
        .await
        .expect("query")
        .expect("created");
    assert_eq!(stored.role(), Role::Patient);
    assert_eq!(stored.phone.as_deref(), Some("+79123456789"));
    assert!(stored.phone_verified_at.is_some(), "the phone is proven");
    assert!(
        stored
            .password_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
    );
    assert!(!stored.password_hash.contains("пароль"));
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM consents WHERE user_id = {}",
            stored.id
        ))
        .await,
        2,
        "both consents are on record"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_invalid_field_gets_its_own_message() {
    let app = TestApp::spawn_with(|config| config.registration_limit_per_ip_hour = 1000).await;
    let client = browser();
    let token = csrf_token(
        &client
            .get(app.url("/register"))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("body"),
    );
    let form = valid_form(&token);
    let cases: [(&str, Option<&str>, &str); 12] = [
        (
            "email",
            Some("not-an-email"),
            "Некорректный адрес электронной почты",
        ),
        ("email", Some(""), "Укажите электронную почту"),
        ("password", Some("short"), "не короче 8 символов"),
        ("password", Some("password1"), "слишком распространён"),
        (
            "password",
            Some(&"x".repeat(129)),
            "не длиннее 128 символов",
        ),
        ("full_name", Some(" "), "Укажите фамилию"),
        ("phone", Some("abc"), "Некорректный номер телефона"),
        ("phone", Some("٠١٢٣٤٥٦٧٨٩"), "Некорректный номер телефона"),
        ("birth_date", Some("2999-01-01"), "Укажите дату рождения"),
        ("birth_date", Some("вчера"), "Укажите дату рождения"),
        ("consent", None, "Без согласия"),
        (
            "phone",
            Some(&"1".repeat(1000)),
            "Некорректный номер телефона",
        ),
    ];
    for (field, value, message) in cases {
        let response = client
            .post(app.url("/register"))
            .form(&with(&form, field, value))
            .send()
            .await
            .expect("register");
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}={value:?}"
        );
        let body = response.text().await.expect("body");
        assert!(
            body.contains(message),
            "{field}={value:?} should say {message}"
        );
        assert!(
            body.contains(&format!("id=\"{field}-error\"")),
            "{field} error sits by its field"
        );
        assert_eq!(
            body.matches("class=\"field-error\"").count(),
            1,
            "{field}={value:?}: only that field is flagged"
        );
    }
    let mut conn = app.db().await;
    assert!(
        user::find_by_email(&mut conn, "new.patient@example.ru")
            .await
            .expect("query")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_bodies_and_passwords_are_refused_without_hashing() {
    let app = TestApp::spawn().await;
    let client = browser();
    let token = csrf_token(
        &client
            .get(app.url("/register"))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("body"),
    );
    let hashes_before = app.state().passwords.hashes();

    let mut form = valid_form(&token);
    form.push(("padding", "x".repeat(2 * 1024 * 1024)));
    let huge = client
        .post(app.url("/register"))
        .form(&form)
        .send()
        .await
        .expect("register");
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let long_password = with(&valid_form(&token), "password", Some(&"п".repeat(5 * 1024)));
    let response = client
        .post(app.url("/register"))
        .form(&long_password)
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.state().passwords.hashes(),
        hashes_before,
        "nothing was hashed"
    );

    // A 10 KB password at login is refused without argon2 either.
    let verifications = app.state().passwords.verifications();
    let login = client
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "someone@example.ru"),
            ("password", &"x".repeat(10 * 1024)),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), StatusCode::OK);
    assert_eq!(app.state().passwords.verifications(), verifications);
}
