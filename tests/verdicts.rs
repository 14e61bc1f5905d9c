//! One input, one verdict: the same bad and borderline values sent through every face that
//! takes them (the registration form, the admin's account form, the booking page, the JSON
//! API and the command line) are refused or accepted alike, on the field that holds them.

use std::{io::Write, process::Stdio};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use sovamed::db::models::user::Role;

use crate::support::{
    TestApp, browser, csrf_token, doctor_in, sync_directories, with_emulators_and,
};

/// Refused on the field, or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accepted,
    Refused,
}
use Verdict::{Accepted, Refused};

async fn page_token(client: &Client, app: &TestApp, path: &str) -> String {
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

fn html_verdict(body: &str, field: &str) -> Verdict {
    if body.contains(&format!("id=\"{field}-error\"")) {
        Refused
    } else {
        Accepted
    }
}

fn json_verdict(body: &Value, field: &str) -> Verdict {
    if body["error"]["fields"].get(field).is_some() {
        Refused
    } else {
        Accepted
    }
}

struct Faces {
    app: TestApp,
    registration: Client,
    admin: Client,
    patient: Client,
    patient_token: String,
    doctor: i64,
    branch: i64,
    serial: std::sync::atomic::AtomicU32,
}

impl Faces {
    async fn start() -> Self {
        // Many registrations from one address and phone: the limits stay out of the way,
        // so each verdict is the form's own.
        let (app, _emulators) = with_emulators_and(|config| {
            config.registration_limit_per_ip_hour = 10_000;
            config.verify_limit_per_ip_hour = 10_000;
            config.verify_limit_per_phone_hour = 10_000;
            config.sms_limit_per_phone_day = 10_000;
        })
        .await;
        sync_directories(&app).await;
        let (doctor, branch) = doctor_in(&app, None).await;
        app.create_user("admin@example.ru", "admin passphrase 1", Role::Admin)
            .await;
        app.create_user("patient@example.ru", "patient passphrase 1", Role::Patient)
            .await;
        let admin = browser();
        app.log_in(&admin, "admin@example.ru", "admin passphrase 1")
            .await;
        let patient = browser();
        app.log_in(&patient, "patient@example.ru", "patient passphrase 1")
            .await;
        let patient_token = app
            .api_token("patient@example.ru", "patient passphrase 1")
            .await;
        // The emulators live as long as the process; the server keeps talking to them.
        std::mem::forget(_emulators);
        Self {
            app,
            registration: browser(),
            admin,
            patient,
            patient_token,
            doctor,
            branch,
            serial: std::sync::atomic::AtomicU32::new(0),
        }
    }

    fn unique_email(&self) -> String {
        let n = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("verdict{n}@example.ru")
    }

    /// `/register` with every other field valid.
    async fn registration(&self, field: &str, value: &str) -> Verdict {
        let token = page_token(&self.registration, &self.app, "/register").await;
        let email = self.unique_email();
        let mut form = vec![
            ("csrf_token", token),
            ("email", email),
            ("password", "a long enough passphrase".into()),
            ("full_name", "Новикова Ольга Петровна".into()),
            ("phone", "+7 912 345-67-89".into()),
            ("birth_date", "1990-05-17".into()),
            ("consent_personal", "on".into()),
            ("consent_health", "on".into()),
        ];
        for (name, v) in &mut form {
            if *name == field {
                *v = value.to_owned();
            }
        }
        let response = self
            .registration
            .post(self.app.url("/register"))
            .form(&form)
            .send()
            .await
            .expect("register");
        let status = response.status();
        if status == StatusCode::SEE_OTHER {
            // Accepted: the code is on its way; drop the waiting registration.
            self.registration
                .post(self.app.url("/phone-code/cancel"))
                .form(&[(
                    "csrf_token",
                    page_token(&self.registration, &self.app, "/phone-code").await,
                )])
                .send()
                .await
                .expect("cancel");
            return Accepted;
        }
        html_verdict(&response.text().await.expect("body"), field)
    }

    /// The admin's new-account form with every other field valid.
    async fn admin_form(&self, field: &str, value: &str) -> Verdict {
        let token = page_token(&self.admin, &self.app, "/admin/users").await;
        let mut form = vec![
            ("csrf_token", token),
            ("email", self.unique_email()),
            ("full_name", "Регистратура Первая".into()),
            ("phone", "+7 912 345-67-89".into()),
            ("role", "staff".into()),
        ];
        for (name, v) in &mut form {
            if *name == field {
                *v = value.to_owned();
            }
        }
        let response = self
            .admin
            .post(self.app.url("/admin/users"))
            .form(&form)
            .send()
            .await
            .expect("create");
        // Accepted: the account is made by invitation and the link page answers.
        if response.status() == StatusCode::OK {
            return Accepted;
        }
        html_verdict(&response.text().await.expect("body"), field)
    }

    /// An anonymous booking through the API; the doctor does not exist, so valid input is
    /// refused only there (on `specialist_id`), never booked.
    async fn api_patient(&self, field: &str, value: &str) -> Verdict {
        let mut patient = json!({
            "last_name": "Петров", "first_name": "Пётр", "phone": "+79123456789",
            "birth_date": "1980-02-03", "email": "petrov@example.ru"
        });
        patient[field] = json!(value);
        let body = json!({
            "specialist_id": 999_999, "branch_id": self.branch,
            "start": "2030-03-18T09:00:00+05:00", "patient": patient,
            "consent": {"personal_data": true, "health_data": true},
        });
        let response = browser()
            .post(self.app.url("/api/v1/specialist/anonymous-reserve"))
            .json(&body)
            .send()
            .await
            .expect("reserve");
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = response.json().await.expect("json");
        json_verdict(&body, &format!("patient.{field}"))
    }

    /// `sovamed user create` with every other option valid.
    fn command_line(&self, option: &str, value: &str) -> Verdict {
        let email = self.unique_email();
        let mut args = vec![
            ("--email", email.as_str()),
            ("--full-name", "Регистратура Первая"),
            ("--role", "staff"),
            ("--phone", "+79123456789"),
        ];
        for (name, v) in &mut args {
            if *name == option {
                *v = value;
            }
        }
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sovamed"));
        command.args(["user", "create", "--password-stdin"]);
        for (name, v) in args {
            command.arg(name).arg(v);
        }
        let mut child = command
            .env("DATABASE_URL", &self.app.config.database_url)
            .env("REDIS_PREFIX", &self.app.config.redis_prefix)
            .env("APP_ENV", "development")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sovamed");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"a long enough passphrase\n")
            .expect("password");
        let output = child.wait_with_output().expect("exits");
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            Accepted
        } else {
            assert!(stderr.contains(option), "{option}: {stderr}");
            Refused
        }
    }

    /// A comment on the doctor page's booking form; the start has passed, so a valid
    /// comment is refused only there, never booked.
    async fn booking_page_comment(&self, value: &str) -> Verdict {
        let path = format!("/doctors/{}/book", self.doctor);
        let token = page_token(
            &self.patient,
            &self.app,
            &format!(
                "{path}?branch_id={}&start=2020-01-01T09:00:00%2B03:00",
                self.branch
            ),
        )
        .await;
        let response = self
            .patient
            .post(self.app.url(&path))
            .form(&[
                ("csrf_token", token.as_str()),
                ("branch_id", &self.branch.to_string()),
                ("start", "2020-01-01T09:00:00+03:00"),
                ("comment", value),
            ])
            .send()
            .await
            .expect("book");
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = response.text().await.expect("body");
        if body.contains("Не длиннее 500 символов") {
            Refused
        } else {
            assert!(body.contains("Время приёма уже прошло"), "{body}");
            Accepted
        }
    }

    /// A comment through the API, anonymous and as a patient.
    async fn api_comments(&self, value: &str) -> [Verdict; 2] {
        let anonymous = json!({
            "specialist_id": self.doctor, "branch_id": self.branch,
            "start": "2020-01-01T09:00:00+03:00", "comment": value,
            "patient": {"last_name": "Петров", "first_name": "Пётр", "phone": "+79123456789"},
            "consent": {"personal_data": true, "health_data": true},
        });
        let own = json!({
            "specialist_id": self.doctor, "branch_id": self.branch,
            "start": "2020-01-01T09:00:00+03:00", "comment": value,
        });
        let mut verdicts = [Accepted; 2];
        for (i, (path, body, token)) in [
            ("/api/v1/specialist/anonymous-reserve", anonymous, None),
            ("/api/v1/records", own, Some(&self.patient_token)),
        ]
        .into_iter()
        .enumerate()
        {
            let mut request = browser().post(self.app.url(path)).json(&body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.expect("post");
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
            verdicts[i] = json_verdict(&response.json().await.expect("json"), "comment");
        }
        verdicts
    }

    /// A page number on every paged list, pages and API.
    async fn page_numbers(&self, value: &str) -> Vec<(&'static str, Verdict)> {
        let mut verdicts = Vec::new();
        let doctor_page = format!("/doctors/{}", self.doctor);
        let reviews_partial = format!("/doctors/{}/reviews", self.doctor);
        for (name, client, path) in [
            ("cabinet records", &self.patient, "/cabinet/records"),
            ("staff records", &self.admin, "/staff/records"),
            ("admin users", &self.admin, "/admin/users"),
            ("doctor page reviews", &self.patient, doctor_page.as_str()),
            (
                "doctor reviews partial",
                &self.patient,
                reviews_partial.as_str(),
            ),
        ] {
            let response = client
                .get(self.app.url(path))
                .query(&[("page", value)])
                .send()
                .await
                .expect("page");
            let verdict = match response.status() {
                StatusCode::OK => Accepted,
                StatusCode::UNPROCESSABLE_ENTITY => Refused,
                other => panic!("{name}: {other}"),
            };
            verdicts.push((name, verdict));
        }
        let response = browser()
            .get(self.app.url("/api/v1/records"))
            .query(&[("page", value)])
            .bearer_auth(&self.patient_token)
            .send()
            .await
            .expect("records");
        let verdict = if response.status() == StatusCode::OK {
            Accepted
        } else {
            json_verdict(&response.json().await.expect("json"), "page")
        };
        verdicts.push(("api records", verdict));
        let response = browser()
            .get(
                self.app
                    .url(&format!("/api/v1/specialists/{}/reviews", self.doctor)),
            )
            .query(&[("page", value)])
            .send()
            .await
            .expect("reviews");
        let verdict = if response.status() == StatusCode::OK {
            Accepted
        } else {
            json_verdict(&response.json().await.expect("json"), "page")
        };
        verdicts.push(("api reviews", verdict));
        verdicts
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_face_gives_one_input_the_same_verdict() {
    let faces = Faces::start().await;

    let phones = [
        ("8 (912) 345-67-89", Accepted),
        ("+7 912 345 67 89", Accepted),
        ("9123456789", Accepted),
        ("abc", Refused),
        ("123", Refused),
        ("٠١٢٣٤٥٦٧٨٩", Refused),
        (&*"9".repeat(40), Refused),
    ];
    for (phone, expected) in phones {
        assert_eq!(
            faces.registration("phone", phone).await,
            expected,
            "registration {phone:?}"
        );
        assert_eq!(
            faces.admin_form("phone", phone).await,
            expected,
            "admin {phone:?}"
        );
        assert_eq!(
            faces.api_patient("phone", phone).await,
            expected,
            "API {phone:?}"
        );
        assert_eq!(
            faces.command_line("--phone", phone),
            expected,
            "CLI {phone:?}"
        );
    }

    let long_email = format!("{}@example.ru", "a".repeat(250));
    let emails = [
        ("Anna.Verdict@Example.RU", Accepted),
        ("not-an-email", Refused),
        ("a@", Refused),
        (long_email.as_str(), Refused),
    ];
    for (i, (email, expected)) in emails.into_iter().enumerate() {
        // An accepted address is used once per face, so each face gets its own variant.
        let variant = |face: &str| {
            if expected == Accepted {
                email.replacen("Anna", &format!("Anna{face}{i}"), 1)
            } else {
                email.to_owned()
            }
        };
        assert_eq!(
            faces.registration("email", &variant("r")).await,
            expected,
            "registration {email:?}"
        );
        assert_eq!(
            faces.admin_form("email", &variant("a")).await,
            expected,
            "admin {email:?}"
        );
        assert_eq!(
            faces.api_patient("email", &variant("p")).await,
            expected,
            "API {email:?}"
        );
        assert_eq!(
            faces.command_line("--email", &variant("c")),
            expected,
            "CLI {email:?}"
        );
    }

    // A surname (the first word of a full name, or the API's `last_name`).
    let long = "Я".repeat(100);
    let too_long = "Я".repeat(101);
    let surnames = [
        ("О'Нил-Петрова", Accepted),
        (long.as_str(), Accepted),
        (too_long.as_str(), Refused),
        ("12345", Refused),
        ("Ива\u{7}нова", Refused),
    ];
    for (surname, expected) in surnames {
        let full = format!("{surname} Ольга");
        assert_eq!(
            faces.registration("full_name", &full).await,
            expected,
            "registration {surname:?}"
        );
        assert_eq!(
            faces.admin_form("full_name", &full).await,
            expected,
            "admin {surname:?}"
        );
        assert_eq!(
            faces.api_patient("last_name", surname).await,
            expected,
            "API {surname:?}"
        );
        assert_eq!(
            faces.command_line("--full-name", &full),
            expected,
            "CLI {surname:?}"
        );
    }
    // A full name needs a surname and a first name wherever it is one line.
    assert_eq!(faces.registration("full_name", "Кто-то").await, Refused);
    assert_eq!(faces.admin_form("full_name", "Кто-то").await, Refused);
    assert_eq!(faces.command_line("--full-name", "Кто-то"), Refused);
    assert_eq!(faces.api_patient("first_name", " ").await, Refused);

    let birth_dates = [
        ("1990-05-17", Accepted),
        ("17.05.1990", Accepted),
        ("1900-01-01", Accepted),
        ("1899-12-31", Refused),
        ("2999-01-01", Refused),
        ("вчера", Refused),
    ];
    for (date, expected) in birth_dates {
        assert_eq!(
            faces.registration("birth_date", date).await,
            expected,
            "registration {date:?}"
        );
        assert_eq!(
            faces.api_patient("birth_date", date).await,
            expected,
            "API {date:?}"
        );
    }

    let comments = [
        ("Боль в колене", Accepted),
        (&*"я".repeat(500), Accepted),
        (&*"я".repeat(501), Refused),
        ("цвет \u{1b}[31m", Refused),
    ];
    for (comment, expected) in comments {
        let label = comment.chars().take(20).collect::<String>();
        assert_eq!(
            faces.booking_page_comment(comment).await,
            expected,
            "page {label:?}"
        );
        assert_eq!(
            faces.api_comments(comment).await,
            [expected; 2],
            "API {label:?}"
        );
    }

    for (page, expected) in [
        ("1", Accepted),
        ("2", Accepted),
        ("0", Refused),
        ("-1", Refused),
        ("x", Refused),
        ("100001", Refused),
    ] {
        for (face, verdict) in faces.page_numbers(page).await {
            assert_eq!(verdict, expected, "{face} page={page:?}");
        }
    }
}
