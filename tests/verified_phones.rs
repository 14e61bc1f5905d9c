//! Verified phones: codes, proofs, anonymous booking with a proof and consent, the visit
//! link, registration and password reset by code, the limits, and device cookies.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use sovamed::{db::models::user::Role, emulator::Emulators};

use crate::support::{
    TestApp, anonymous_booking, browser, csrf_token, doctor_in, eventually, free_starts, location,
    sync_directories, with_emulators_and,
};

/// An app with the emulators and phone codes on (the default), `adjust` applied.
async fn verified_app(
    adjust: impl FnOnce(&mut sovamed::config::Config) + Send + 'static,
) -> (TestApp, Emulators) {
    let (app, emulators) = with_emulators_and(move |config| {
        config.anonymous_booking_verify = true;
        adjust(config);
    })
    .await;
    sync_directories(&app).await;
    (app, emulators)
}

async fn post(
    app: &TestApp,
    path: &str,
    body: &Value,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let response = browser()
        .post(app.url(path))
        .json(body)
        .send()
        .await
        .expect("request");
    let (status, headers) = (response.status(), response.headers().clone());
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        headers,
    )
}

/// The newest code the SMS emulator got for `phone` (E.164), waiting for it to arrive.
async fn code_for(emulators: &Emulators, phone: &str, after: usize) -> String {
    let digits = phone.trim_start_matches('+').to_owned();
    let control = emulators.control.clone();
    let found = eventually(10, || {
        control
            .sms_messages()
            .iter()
            .filter(|m| m.to == digits && m.text.contains("код"))
            .count()
            > after
    })
    .await;
    assert!(found, "a code SMS reached {phone}");
    let text = control
        .sms_messages()
        .into_iter()
        .rev()
        .find(|m| m.to == digits && m.text.contains("код"))
        .expect("code SMS")
        .text;
    text.split_whitespace()
        .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
        .expect("six digits in the SMS")
        .to_owned()
}

fn codes_to(emulators: &Emulators, phone: &str) -> usize {
    let digits = phone.trim_start_matches('+');
    emulators
        .control
        .sms_messages()
        .iter()
        .filter(|m| m.to == digits && m.text.contains("код"))
        .count()
}

/// Asks for a code and confirms it: the proof.
async fn phone_token(app: &TestApp, emulators: &Emulators, phone: &str, purpose: &str) -> String {
    let before = codes_to(emulators, phone);
    let (status, started, _) = post(
        app,
        "/api/v1/phone-verifications",
        &json!({"phone": phone, "purpose": purpose}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let code = code_for(emulators, phone, before).await;
    let id = started["verification_id"].as_str().expect("id");
    let (status, proof, _) = post(
        app,
        &format!("/api/v1/phone-verifications/{id}/confirm"),
        &json!({"code": code}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{proof}");
    proof["phone_token"].as_str().expect("token").to_owned()
}

fn field<'a>(body: &'a Value, name: &str) -> &'a str {
    body["error"]["fields"][name].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_anonymous_booking_needs_the_proof_of_its_own_phone() {
    let (app, emulators) = verified_app(|_| {}).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let start = free_starts(&app, doctor, branch).await.remove(0);
    let phone = "+79165551001";
    let reserve = "/api/v1/specialist/anonymous-reserve";
    let booking = anonymous_booking(doctor, branch, &start, phone);

    // No proof.
    let (status, body, _) = post(&app, reserve, &booking).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        field(&body, "phone_token").contains("Подтвердите"),
        "{body}"
    );

    // A proof of another phone.
    let other = phone_token(&app, &emulators, "+79165551002", "booking").await;
    let mut with_other = booking.clone();
    with_other["phone_token"] = json!(other);
    let (status, body, _) = post(&app, reserve, &with_other).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        field(&body, "phone_token").contains("другой номер"),
        "{body}"
    );

    // A proof for another purpose.
    let registration = phone_token(&app, &emulators, phone, "registration").await;
    let mut with_purpose = booking.clone();
    with_purpose["phone_token"] = json!(registration);
    let (status, body, _) = post(&app, reserve, &with_purpose).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        field(&body, "phone_token").contains("другой цели"),
        "{body}"
    );

    // The proof past its 15 minutes, then the same proof in time again.
    let good = phone_token(&app, &emulators, phone, "booking").await;
    let set_expiry = |interval: &str| {
        format!(
            "WITH t AS (UPDATE phone_verifications SET token_expires_at = now() + interval '{interval}' \
             WHERE token_hash = encode(sha256('{good}'::bytea), 'hex') RETURNING 1) SELECT count(*) AS n FROM t"
        )
    };
    assert_eq!(app.count(&set_expiry("-1 second")).await, 1);
    let mut with_expired = booking.clone();
    with_expired["phone_token"] = json!(good);
    let (status, body, _) = post(&app, reserve, &with_expired).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(field(&body, "phone_token").contains("устарело"), "{body}");
    assert_eq!(app.count(&set_expiry("10 minutes")).await, 1);

    // No consent, with a good proof: refused on `consent`, and the proof is not spent.
    let mut no_consent = booking.clone();
    no_consent["phone_token"] = json!(good);
    no_consent
        .as_object_mut()
        .expect("object")
        .remove("consent");
    let (status, body, _) = post(&app, reserve, &no_consent).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(field(&body, "consent").contains("согласия"), "{body}");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM records").await,
        0,
        "nothing booked"
    );

    // A new version of one text is published: the consents are given against it.
    assert_eq!(
        app.count(
            "WITH t AS (INSERT INTO consent_texts (purpose, version, title, body, published_at) \
             SELECT purpose, version + 1, title, body || ' (ред. 2)', now() FROM consent_texts \
             WHERE purpose = 'personal_data' ORDER BY version DESC LIMIT 1 RETURNING 1) \
             SELECT count(*) AS n FROM t"
        )
        .await,
        1
    );

    // The right proof books, once; the SMS carries the visit link.
    let mut good_booking = booking.clone();
    good_booking["phone_token"] = json!(good);
    let (status, body, _) = post(&app, reserve, &good_booking).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM consents c JOIN consent_texts t ON t.id = c.text_id \
             WHERE c.phone = '+79165551001' AND c.user_id IS NULL \
             AND t.version = (SELECT max(version) FROM consent_texts n WHERE n.purpose = t.purpose)"
        )
        .await,
        2,
        "both consents are on record against the phone, each against its newest text"
    );
    let next = free_starts(&app, doctor, branch).await.remove(0);
    let mut reused = anonymous_booking(doctor, branch, &next, phone);
    reused["phone_token"] = json!(good);
    let (status, body, _) = post(&app, reserve, &reused).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        field(&body, "phone_token").contains("использовано"),
        "{body}"
    );

    let digits = phone.trim_start_matches('+').to_owned();
    let control = emulators.control.clone();
    assert!(
        eventually(10, || control
            .sms_messages()
            .iter()
            .any(|m| m.to == digits && m.text.contains("/v/")))
        .await,
        "the booking SMS carries the visit link"
    );
    let text = control
        .sms_messages()
        .into_iter()
        .find(|m| m.to == digits && m.text.contains("/v/"))
        .expect("booking SMS")
        .text;
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/v/"))
        .expect("link")
        .trim_end_matches('.');
    let token = link.rsplit('/').next().expect("token");
    // 22 letters and digits: 130 bits.
    assert!(
        token.len() >= 22 && token.bytes().all(|b| b.is_ascii_alphanumeric()),
        "at least 128 bits: {token}"
    );
    // Once sent, neither the link's token nor any code is left in the outbox.
    let mut sent = 0;
    for _ in 0..100 {
        sent = app
            .count("SELECT count(*) AS n FROM sms_outbox WHERE status = 'sent'")
            .await;
        let all = app.count("SELECT count(*) AS n FROM sms_outbox").await;
        if sent == all {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        sent >= 2,
        "the codes and the booking SMS were sent ({sent})"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM sms_outbox WHERE body LIKE '%{token}%'"
        ))
        .await,
        0,
        "a sent SMS keeps no link token in the database"
    );
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM sms_outbox WHERE kind = 'booked' AND body LIKE '%/v/…%'"
        )
        .await,
        1,
        "the link is blanked, the text kept"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sms_outbox WHERE kind = 'code' AND body ~ '[0-9]{6}'")
            .await,
        0,
        "no sent code is readable"
    );
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM sms_outbox WHERE kind = 'code' AND body LIKE '%код ••••••%'"
        )
        .await,
        3,
        "the three codes of this test, each blanked with its text kept"
    );

    // The link opens the visit, and cancels it without an account.
    let client = browser();
    let page = client
        .get(app.url(&format!("/v/{token}")))
        .send()
        .await
        .expect("visit page");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains("Ваша запись на приём"), "{html}");
    let csrf = csrf_token(&html);
    let cancelled = client
        .post(app.url(&format!("/v/{token}/cancel")))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("cancel");
    assert_eq!(cancelled.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM records WHERE status = 'cancelled'")
            .await,
        1
    );
    // A made-up token is a plain 404.
    let unknown = client
        .get(app.url(&format!("/v/{}", "0".repeat(32))))
        .send()
        .await
        .expect("unknown link");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn codes_have_five_tries_ten_minutes_and_a_minute_between_sends() {
    let (app, emulators) = verified_app(|_| {}).await;
    let phone = "+79165551101";
    let (status, started, _) = post(
        &app,
        "/api/v1/phone-verifications",
        &json!({"phone": "8 (916) 555-11-01", "purpose": "booking"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert!(started["expires_at"].is_string() && started["resend_after"].is_string());
    let code = code_for(&emulators, phone, 0).await;
    let id = started["verification_id"].as_str().expect("id").to_owned();
    let confirm = format!("/api/v1/phone-verifications/{id}/confirm");
    let wrong = if code == "000000" { "111111" } else { "000000" };

    // A second code within 60 s: 429 with Retry-After.
    let (status, body, headers) = post(
        &app,
        "/api/v1/phone-verifications",
        &json!({"phone": phone, "purpose": "booking"}),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let wait: u64 = headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("secs");
    assert!((1..=60).contains(&wait), "Retry-After {wait}");

    for attempt in 1..=4 {
        let (status, body, _) = post(&app, &confirm, &json!({"code": wrong})).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "attempt {attempt}: {body}"
        );
        assert!(
            field(&body, "code").contains(&format!("Осталось попыток: {}", 5 - attempt)),
            "{body}"
        );
    }
    let (status, body, _) = post(&app, &confirm, &json!({"code": wrong})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        field(&body, "code").contains("Слишком много"),
        "the fifth wrong try ends it: {body}"
    );
    let (status, body, _) = post(&app, &confirm, &json!({"code": code})).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the sixth try is refused even when right: {body}"
    );
    assert!(field(&body, "code").contains("Слишком много"), "{body}");

    // A code past its 10 minutes.
    let other = "+79165551102";
    let (_, started, _) = post(
        &app,
        "/api/v1/phone-verifications",
        &json!({"phone": other, "purpose": "booking"}),
    )
    .await;
    let code = code_for(&emulators, other, 0).await;
    let id = started["verification_id"].as_str().expect("id");
    app.count(&format!(
        "WITH t AS (UPDATE phone_verifications SET expires_at = now() - interval '1 second' \
         WHERE id = '{id}' RETURNING 1) SELECT count(*) AS n FROM t"
    ))
    .await;
    let (status, body, _) = post(
        &app,
        &format!("/api/v1/phone-verifications/{id}/confirm"),
        &json!({"code": code}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(field(&body, "code").contains("истёк"), "{body}");

    // Codes are stored hashed: no row holds the code.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM phone_verifications WHERE code_hash LIKE '%{code}%'"
        ))
        .await,
        0
    );
    // Unknown verification, and a bad code shape.
    let (status, _, _) = post(
        &app,
        "/api/v1/phone-verifications/abc123/confirm",
        &json!({"code": "123456"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body, _) = post(
        &app,
        &format!("/api/v1/phone-verifications/{id}/confirm"),
        &json!({"code": "12ab"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!field(&body, "code").is_empty());
    let (status, body, _) = post(
        &app,
        "/api/v1/phone-verifications",
        &json!({"phone": "abc", "purpose": "booking"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!field(&body, "phone").is_empty(), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sms_cap_per_phone_holds_across_every_kind() {
    let (app, emulators) = verified_app(|config| {
        config.sms_limit_per_phone_day = 3;
    })
    .await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let phone = "+79165551201";
    // 1: a booking code; 2: the booking's SMS; 3: a registration code.
    let token = phone_token(&app, &emulators, phone, "booking").await;
    let start = free_starts(&app, doctor, branch).await.remove(0);
    let mut booking = anonymous_booking(doctor, branch, &start, phone);
    booking["phone_token"] = json!(token);
    let (status, body, _) = post(&app, "/api/v1/specialist/anonymous-reserve", &booking).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    phone_token(&app, &emulators, phone, "registration").await;
    // The fourth SMS of the day is refused, whatever its kind.
    let (status, body, headers) = post(
        &app,
        "/api/v1/phone-verifications",
        &json!({"phone": phone, "purpose": "phone_change"}),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(
        app.count("SELECT count(*) AS n FROM sms_outbox WHERE phone = '+79165551201'")
            .await,
        3
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patient_holds_at_most_five_upcoming_visits() {
    let (app, _emulators) = verified_app(|_| {}).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    app.create_user("many@example.ru", "many visits passphrase", Role::Patient)
        .await;
    let token = app
        .api_token("many@example.ru", "many visits passphrase")
        .await;
    let starts = free_starts(&app, doctor, branch).await;
    let book = |start: &str| {
        browser()
            .post(app.url("/api/v1/records"))
            .bearer_auth(&token)
            .json(&json!({"specialist_id": doctor, "branch_id": branch, "start": start}))
            .send()
    };
    for start in starts.iter().take(5) {
        let response = book(start).await.expect("book");
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let sixth = book(&starts[5]).await.expect("book");
    assert_eq!(sixth.status(), StatusCode::CONFLICT);
    let body: Value = sixth.json().await.expect("json");
    assert_eq!(body["error"]["code"], "too_many_upcoming");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("5 предстоящих"),
        "{body}"
    );
}

/// Registers through the pages up to the code page; the response of the form's POST.
async fn register_form(
    app: &TestApp,
    client: &Client,
    email: &str,
    phone: &str,
) -> reqwest::Response {
    let page = client
        .get(app.url("/register"))
        .send()
        .await
        .expect("register page")
        .text()
        .await
        .expect("html");
    client
        .post(app.url("/register"))
        .form(&[
            ("csrf_token", csrf_token(&page).as_str()),
            ("email", email),
            ("password", "a long enough passphrase"),
            ("full_name", "Новикова Ольга Петровна"),
            ("phone", phone),
            ("birth_date", "1990-05-06"),
            ("consent_personal", "yes"),
            ("consent_health", "yes"),
        ])
        .send()
        .await
        .expect("POST /register")
}

/// Types `code` on the code page.
async fn enter_code(app: &TestApp, client: &Client, code: &str) -> reqwest::Response {
    let page = client
        .get(app.url("/phone-code"))
        .send()
        .await
        .expect("code page")
        .text()
        .await
        .expect("html");
    client
        .post(app.url("/phone-code"))
        .form(&[("csrf_token", csrf_token(&page).as_str()), ("code", code)])
        .send()
        .await
        .expect("POST /phone-code")
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_answers_the_same_for_a_taken_and_a_new_email() {
    let (app, emulators) = verified_app(|_| {}).await;
    app.create_user("taken@example.ru", "the owner's passphrase", Role::Patient)
        .await;
    let mut answers = Vec::new();
    for (email, phone) in [
        ("taken@example.ru", "+79165551301"),
        ("fresh@example.ru", "+79165551302"),
    ] {
        let client = browser();
        let form = register_form(&app, &client, email, phone).await;
        let first = (form.status(), location(&form));
        let code = code_for(&emulators, phone, 0).await;
        let done = enter_code(&app, &client, &code).await;
        answers.push((first, done.status(), location(&done)));
    }
    assert_eq!(answers[0], answers[1], "the same status and page for both");
    assert_eq!(
        answers[0].0,
        (StatusCode::SEE_OTHER, "/phone-code".to_owned())
    );
    assert!(
        answers[0].2.starts_with("/login?registered=1"),
        "{answers:?}"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM users WHERE email = 'taken@example.ru'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM users WHERE email = 'fresh@example.ru' AND phone_verified_at IS NOT NULL").await,
        1
    );
    // The owner of the taken e-mail is told by SMS (the test users' phone).
    let control = emulators.control.clone();
    assert!(
        eventually(10, || control.sms_messages().iter().any(|m| m.to
            == "79001234567"
            && m.text.contains("зарегистрироваться снова")))
        .await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_meets_a_429_long_before_fifty_registrations() {
    let (app, _emulators) = verified_app(|_| {}).await;
    let client = browser();
    let mut statuses = Vec::new();
    for n in 0..50 {
        let response = register_form(
            &app,
            &client,
            &format!("bulk{n}@example.ru"),
            &format!("+7916556{n:04}"),
        )
        .await;
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
            break;
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(statuses.len() <= 11, "at most 10 an hour: {statuses:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_reset_answers_alike_and_ends_every_session() {
    let (app, emulators) = verified_app(|_| {}).await;
    let old_password = "the old passphrase";
    app.create_user("reset@example.ru", old_password, Role::Patient)
        .await;
    let old_cookie = browser();
    assert_eq!(
        app.log_in(&old_cookie, "reset@example.ru", old_password)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let old_jwt = app.api_token("reset@example.ru", old_password).await;

    let ask = async |email: &str| {
        let client = browser();
        let page = client
            .get(app.url("/password/forgot"))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("html");
        let response = client
            .post(app.url("/password/forgot"))
            .form(&[("csrf_token", csrf_token(&page).as_str()), ("email", email)])
            .send()
            .await
            .expect("POST /password/forgot");
        let answer = (response.status(), location(&response));
        let code_page = client
            .get(app.url("/phone-code"))
            .send()
            .await
            .expect("code page")
            .text()
            .await
            .expect("html");
        (
            client,
            answer,
            code_page.replace(&csrf_token(&code_page), ""),
        )
    };
    let (_, unknown_answer, unknown_page) = ask("nobody@example.ru").await;
    let before = codes_to(&emulators, "+79001234567");
    let (client, known_answer, known_page) = ask("reset@example.ru").await;
    assert_eq!(known_answer, unknown_answer, "the same answer");
    assert_eq!(known_page, unknown_page, "the same page");

    let code = code_for(&emulators, "+79001234567", before).await;
    let done = enter_code(&app, &client, &code).await;
    assert_eq!(location(&done), "/password/reset");
    let page = client
        .get(app.url("/password/reset"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let reset = client
        .post(app.url("/password/reset"))
        .form(&[
            ("csrf_token", csrf_token(&page).as_str()),
            ("password", "a brand new passphrase"),
        ])
        .send()
        .await
        .expect("POST /password/reset");
    assert_eq!(location(&reset), "/login?reset=1");

    let cabinet = old_cookie
        .get(app.url("/cabinet"))
        .send()
        .await
        .expect("cabinet");
    assert_eq!(
        cabinet.status(),
        StatusCode::SEE_OTHER,
        "the old cookie is refused"
    );
    let me = browser()
        .get(app.url("/api/v1/user/me"))
        .bearer_auth(&old_jwt)
        .send()
        .await
        .expect("me");
    assert_eq!(
        me.status(),
        StatusCode::UNAUTHORIZED,
        "the old JWT is refused"
    );
    let fresh = browser();
    assert_eq!(
        app.log_in(&fresh, "reset@example.ru", "a brand new passphrase")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_that_logged_in_before_passes_the_accounts_lock() {
    let app = TestApp::spawn_with(|config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
    })
    .await;
    let password = "the owner's passphrase";
    app.create_user("owner@example.ru", password, Role::Staff)
        .await;
    let form_login = async |client: &Client, from: &str, password: &str| {
        let page = client
            .get(app.url("/login"))
            .header("x-forwarded-for", from)
            .send()
            .await
            .expect("login page")
            .text()
            .await
            .expect("html");
        client
            .post(app.url("/login"))
            .header("x-forwarded-for", from)
            .form(&[
                ("csrf_token", csrf_token(&page).as_str()),
                ("email", "owner@example.ru"),
                ("password", password),
            ])
            .send()
            .await
            .expect("POST /login")
            .status()
    };
    // The owner's own browser logged in once before and keeps its device cookie.
    let owner = browser();
    assert_eq!(
        form_login(&owner, "203.0.113.7", password).await,
        StatusCode::SEE_OTHER
    );
    let desk = owner
        .get(app.url("/staff"))
        .send()
        .await
        .expect("desk")
        .text()
        .await
        .expect("html");
    let out = owner
        .post(app.url("/logout"))
        .form(&[("csrf_token", csrf_token(&desk).as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), StatusCode::SEE_OTHER);

    let attacker = browser();
    for _ in 0..6 {
        form_login(&attacker, "198.51.100.1", "a wrong guess").await;
    }
    assert_eq!(
        form_login(&attacker, "198.51.100.1", password).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the account is locked for clients it does not know"
    );
    let stranger = browser();
    assert_eq!(
        form_login(&stranger, "192.0.2.50", password).await,
        StatusCode::TOO_MANY_REQUESTS,
        "a client without the device cookie is refused from any address"
    );
    assert_eq!(
        form_login(&owner, "192.0.2.99", password).await,
        StatusCode::SEE_OTHER,
        "the owner on their device still logs in"
    );
}

/// A visit booked without an account through the API, with a proof; the record's id.
async fn book_anonymously(app: &TestApp, emulators: &Emulators, phone: &str) -> i64 {
    let (doctor, branch) = doctor_in(app, None).await;
    let token = phone_token(app, emulators, phone, "booking").await;
    let start = free_starts(app, doctor, branch).await.remove(0);
    let mut booking = anonymous_booking(doctor, branch, &start, phone);
    booking["phone_token"] = json!(token);
    let (status, body, _) = post(app, "/api/v1/specialist/anonymous-reserve", &booking).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_i64().expect("id")
}

/// The token of the visit link in the newest booking SMS to `phone`.
async fn visit_token(emulators: &Emulators, phone: &str) -> String {
    let digits = phone.trim_start_matches('+').to_owned();
    let control = emulators.control.clone();
    assert!(
        eventually(10, || control
            .sms_messages()
            .iter()
            .any(|m| m.to == digits && m.text.contains("/v/")))
        .await
    );
    let text = control
        .sms_messages()
        .into_iter()
        .rev()
        .find(|m| m.to == digits && m.text.contains("/v/"))
        .expect("booking SMS")
        .text;
    text.split("/v/")
        .nth(1)
        .expect("link")
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn visits_booked_without_an_account_come_into_the_account_that_proves_the_phone() {
    let (app, emulators) = verified_app(|_| {}).await;
    let phone = "+79165551401";
    let record = book_anonymously(&app, &emulators, phone).await;

    let client = browser();
    let form = register_form(&app, &client, "later@example.ru", phone).await;
    assert_eq!(location(&form), "/phone-code");
    let code = code_for(&emulators, phone, 1).await;
    let done = enter_code(&app, &client, &code).await;
    assert!(location(&done).starts_with("/login?registered=1"));
    let login = app
        .log_in(&client, "later@example.ru", "a long enough passphrase")
        .await;
    assert_eq!(location(&login), "/cabinet");
    let records = client
        .get(app.url("/cabinet/records"))
        .send()
        .await
        .expect("records")
        .text()
        .await
        .expect("html");
    assert!(
        records.contains(&format!("/cabinet/records/{record}")),
        "the earlier visit is in the cabinet"
    );
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM consents c JOIN users u ON u.id = c.user_id \
             WHERE u.email = 'later@example.ru'"
        )
        .await,
        4,
        "the consents given with the booking and at registration are the account's"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_visit_moves_through_its_link() {
    let (app, emulators) = verified_app(|_| {}).await;
    let phone = "+79165551501";
    let record = book_anonymously(&app, &emulators, phone).await;
    let token = visit_token(&emulators, phone).await;
    let client = browser();
    let page = client
        .get(app.url(&format!("/v/{token}")))
        .send()
        .await
        .expect("visit")
        .text()
        .await
        .expect("html");
    // The first free time the page offers (the day of the visit, or the next days).
    let mut html = page;
    let mut day = 0;
    while !html.contains("name=\"start\"") {
        assert!(day < 14, "no free time offered in two weeks");
        day += 1;
        let date = (chrono::Utc::now() + chrono::Duration::days(day)).date_naive();
        html = client
            .get(app.url(&format!("/v/{token}?date={date}")))
            .send()
            .await
            .expect("visit")
            .text()
            .await
            .expect("html");
    }
    let start = html
        .split("name=\"start\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a start")
        .replace("&#43;", "+");
    let moved = client
        .post(app.url(&format!("/v/{token}/move")))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("start", start.as_str()),
        ])
        .send()
        .await
        .expect("move");
    assert_eq!(location(&moved), format!("/v/{token}?done=moved"));
    let starts_at = chrono::DateTime::parse_from_rfc3339(&start).expect("start");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM records WHERE id = {record} AND starts_at = '{}'",
            starts_at.to_rfc3339()
        ))
        .await,
        1,
        "the record moved to {start}"
    );
    let after = client
        .get(app.url(&format!("/v/{token}?done=moved")))
        .send()
        .await
        .expect("visit")
        .text()
        .await
        .expect("html");
    assert!(after.contains("Запись перенесена"), "{after}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patient_edits_the_profile_and_proves_a_new_phone() {
    let (app, emulators) = verified_app(|_| {}).await;
    let password = "the profile passphrase";
    app.create_user("profile@example.ru", password, Role::Patient)
        .await;
    let client = browser();
    app.log_in(&client, "profile@example.ru", password).await;
    let profile = async || {
        client
            .get(app.url("/cabinet/profile"))
            .send()
            .await
            .expect("profile")
            .text()
            .await
            .expect("html")
    };
    let html = profile().await;
    let csrf = csrf_token(&html);

    let wrong = client
        .post(app.url("/cabinet/profile/details"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("full_name", "Иванова Мария Сергеевна"),
            ("email", "maria@example.ru"),
            ("current_password", "not the password"),
        ])
        .send()
        .await
        .expect("details");
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        wrong
            .text()
            .await
            .expect("html")
            .contains("Неверный текущий пароль")
    );
    let right = client
        .post(app.url("/cabinet/profile/details"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("full_name", "Иванова Мария Сергеевна"),
            ("email", "maria@example.ru"),
            ("current_password", password),
        ])
        .send()
        .await
        .expect("details");
    assert_eq!(location(&right), "/cabinet/profile?done=details");
    assert!(profile().await.contains("maria@example.ru"));

    // A new phone, by a code sent to it; a visit booked on it before comes along.
    let phone = "+79165551601";
    let record = book_anonymously(&app, &emulators, phone).await;
    let asked = client
        .post(app.url("/cabinet/profile/phone"))
        .form(&[("csrf_token", csrf.as_str()), ("phone", "8 916 555-16-01")])
        .send()
        .await
        .expect("phone");
    assert_eq!(location(&asked), "/phone-code");
    let code = code_for(&emulators, phone, 1).await;
    let done = enter_code(&app, &client, &code).await;
    assert_eq!(location(&done), "/cabinet/profile?done=phone");
    assert!(profile().await.contains("+79165551601 (подтверждён)"));
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM records r JOIN users u ON u.id = r.user_id \
             WHERE r.id = {record} AND u.email = 'maria@example.ru'"
        ))
        .await,
        1
    );

    // A new password: the old one stops working, this session goes on.
    let changed = client
        .post(app.url("/cabinet/profile/password"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("current_password", password),
            ("new_password", "an even newer passphrase"),
            // The box «Завершить остальные сеансы», ticked by default.
            ("end_others", "1"),
        ])
        .send()
        .await
        .expect("password");
    assert_eq!(location(&changed), "/cabinet/profile?done=password");
    let still_in = client
        .get(app.url("/cabinet"))
        .send()
        .await
        .expect("cabinet");
    assert_eq!(still_in.status(), StatusCode::OK, "this session continues");
    let old = browser();
    let refused = app.log_in(&old, "maria@example.ru", password).await;
    assert_eq!(
        refused.status(),
        StatusCode::OK,
        "the old password is refused (the form again)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patient_makes_at_most_the_days_bookings_and_is_warned_of_an_overlap() {
    let (app, _emulators) = verified_app(|config| config.booking_limit_per_patient_day = 2).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let password = "day limit passphrase";
    app.create_user("daily@example.ru", password, Role::Patient)
        .await;
    let token = app.api_token("daily@example.ru", password).await;
    let starts = free_starts(&app, doctor, branch).await;
    let mut ids = Vec::new();
    for start in starts.iter().take(2) {
        let response = browser()
            .post(app.url("/api/v1/records"))
            .bearer_auth(&token)
            .json(&json!({"specialist_id": doctor, "branch_id": branch, "start": start}))
            .send()
            .await
            .expect("book");
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("json");
        ids.push(body["id"].as_i64().expect("id"));
    }
    // Cancelling does not give the day's bookings back.
    let cancelled = browser()
        .post(app.url(&format!("/api/v1/records/{}/cancel", ids[1])))
        .bearer_auth(&token)
        .send()
        .await
        .expect("cancel");
    assert_eq!(cancelled.status(), StatusCode::OK);
    let third = browser()
        .post(app.url("/api/v1/records"))
        .bearer_auth(&token)
        .json(&json!({"specialist_id": doctor, "branch_id": branch, "start": starts[2]}))
        .send()
        .await
        .expect("book");
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(third.headers().contains_key("retry-after"));

    // The confirmation page of a time the patient already has warns, without refusing.
    let client = browser();
    app.log_in(&client, "daily@example.ru", password).await;
    let start = starts[0].replace('+', "%2B");
    let page = client
        .get(app.url(&format!(
            "/doctors/{doctor}/book?branch_id={branch}&start={start}"
        )))
        .send()
        .await
        .expect("confirm")
        .text()
        .await
        .expect("html");
    assert!(page.contains("В это время у вас уже есть запись"), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_form_links_the_current_consent_texts() {
    let app = TestApp::spawn().await;
    for (purpose, title) in [
        ("personal_data", "Согласие на обработку персональных данных"),
        (
            "health_data",
            "Согласие на обработку сведений о состоянии здоровья",
        ),
    ] {
        let page = browser()
            .get(app.url(&format!("/consent/{purpose}")))
            .send()
            .await
            .expect("consent page");
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.expect("html");
        assert!(
            html.contains(title) && html.contains("Редакция 1"),
            "{html}"
        );
    }
    let unknown = browser()
        .get(app.url("/consent/marketing"))
        .send()
        .await
        .expect("unknown");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let texts: Value = browser()
        .get(app.url("/api/v1/consent-texts"))
        .send()
        .await
        .expect("texts")
        .json()
        .await
        .expect("json");
    let items = texts["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{texts}");
    assert!(items.iter().all(|t| t["version"] == 1
        && t["url"].as_str().is_some_and(|u| u.ends_with(&format!(
            "/consent/{}",
            t["purpose"].as_str().unwrap_or_default()
        )))));
    // The registration and booking forms link both.
    let register = browser()
        .get(app.url("/register"))
        .send()
        .await
        .expect("register")
        .text()
        .await
        .expect("html");
    assert!(
        register.contains("/consent/personal_data") && register.contains("/consent/health_data")
    );
}
