//! The `sovamed` binary's account commands against a real database.

use std::{io::Write, process::Stdio};

use reqwest::StatusCode;

use crate::support::{TestApp, browser};

fn sovamed(app: &TestApp, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sovamed"))
        .args(args)
        .env("DATABASE_URL", &app.config.database_url)
        .env("REDIS_PREFIX", &app.config.redis_prefix)
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
        .write_all(stdin.as_bytes())
        .expect("write password");
    child.wait_with_output().expect("sovamed exits")
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_create_reset_and_disable_accounts_from_the_command_line() {
    let app = TestApp::spawn().await;
    let created = sovamed(
        &app,
        &[
            "user",
            "create",
            "--email",
            "Desk@Example.ru",
            "--full-name",
            "Регистратура Первая",
            "--role",
            "staff",
            "--password-stdin",
        ],
        "front desk passphrase\n",
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let client = browser();
    let login = app
        .log_in(&client, "desk@example.ru", "front desk passphrase")
        .await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        client
            .get(app.url("/staff"))
            .send()
            .await
            .expect("staff")
            .status(),
        StatusCode::OK
    );

    let duplicate = sovamed(
        &app,
        &[
            "user",
            "create",
            "--email",
            "desk@example.ru",
            "--full-name",
            "Иванов Иван",
            "--role",
            "staff",
            "--password-stdin",
        ],
        "front desk passphrase\n",
    );
    assert!(!duplicate.status.success());
    let stderr = String::from_utf8_lossy(&duplicate.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("already exists"));

    let weak = sovamed(
        &app,
        &[
            "user",
            "set-password",
            "--email",
            "desk@example.ru",
            "--password-stdin",
        ],
        "password1\n",
    );
    assert!(!weak.status.success(), "a common password is refused");

    let reset = sovamed(
        &app,
        &[
            "user",
            "set-password",
            "--email",
            "desk@example.ru",
            "--password-stdin",
        ],
        "a brand new passphrase\n",
    );
    assert!(
        reset.status.success(),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    assert_eq!(
        client
            .get(app.url("/staff"))
            .send()
            .await
            .expect("staff")
            .status(),
        StatusCode::SEE_OTHER,
        "a password change ends existing sessions"
    );
    let token = app
        .api_token("desk@example.ru", "a brand new passphrase")
        .await;

    let disabled = sovamed(&app, &["user", "disable", "--email", "desk@example.ru"], "");
    assert!(disabled.status.success());
    let me = browser()
        .get(app.url("/api/v1/user/me"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);

    let missing = sovamed(
        &app,
        &["user", "disable", "--email", "ghost@example.ru"],
        "",
    );
    assert!(!missing.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_mode_missing_secrets_and_no_sms_gateway_are_refused_in_production() {
    let app = TestApp::spawn().await;
    let run = |envs: &[(&str, &str)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sovamed"));
        command
            .args(["serve", "--demo", "--bind", "127.0.0.1:0"])
            .env("DATABASE_URL", &app.config.database_url)
            .env_remove("JWT_SECRET")
            .env_remove("SMS_PROVIDER");
        for (k, v) in envs {
            command.env(k, v);
        }
        command.output().expect("run sovamed")
    };
    let no_secret = run(&[("APP_ENV", "production")]);
    assert!(!no_secret.status.success());
    assert!(String::from_utf8_lossy(&no_secret.stderr).contains("JWT_SECRET"));
    let no_gateway = run(&[
        ("APP_ENV", "production"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef-long"),
    ]);
    assert!(!no_gateway.status.success());
    assert!(String::from_utf8_lossy(&no_gateway.stderr).contains("SMS_PROVIDER"));
    let demo = run(&[
        ("APP_ENV", "production"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef-long"),
        ("SMS_PROVIDER", "smsru"),
    ]);
    assert!(!demo.status.success());
    assert!(String::from_utf8_lossy(&demo.stderr).contains("--demo is refused"));
}
