//! The patient's flows in a real browser: headless Chromium driven by playwright-core
//! (tests/browser/*.mjs) against the real server and the emulators, with the production CSP:
//! booking, moving and cancelling at a laptop's and a phone's width with JavaScript on and
//! off (book_and_cancel.mjs); the doctor search with Back, Forward and reload (search.mjs);
//! and the site map (site_map.mjs): every page at both widths, with JavaScript on and off,
//! checked for width, console errors, CSP violations, Latin words and (axe-core) WCAG 2.2 AA.
//!
//! Needs Chromium at /usr/bin/chromium (or `CHROMIUM_PATH`), Node.js 20 and
//! `npm ci --prefix tests/browser`; `just browser-deps` and `.ci/run` set them up. The test
//! fails (never skips) when one is missing.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use sovamed::db::models::{record, user::Role};

use crate::support::{browser, doctor_in, free_starts, sync_all, sync_directories, with_emulators};

/// The whole browser run, start of Chromium included.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);
/// The site map: some 25 pages × two viewports × JavaScript on and off, and the axe runs.
const SITE_MAP_TIMEOUT: Duration = Duration::from_secs(300);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Panics with how to install what the browser test needs, if something is missing.
fn require_browser_deps() {
    let chromium = chromium_path();
    assert!(
        chromium.is_file(),
        "the browser test needs Chromium at {}: install it with \
         `sudo apt-get install chromium chromium-driver` (Debian/Ubuntu), or set CHROMIUM_PATH; \
         `just browser-deps` checks everything",
        chromium.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "the browser test needs Node.js 20 or newer (`node` on PATH): {node:?}"
    );
    let playwright = repo().join("tests/browser/node_modules/playwright-core/package.json");
    assert!(
        playwright.is_file(),
        "the browser test needs playwright-core in tests/browser/node_modules: run \
         `npm ci --prefix tests/browser` (or `just browser-deps`)"
    );
}

/// What the script printed and how it ended.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs `node script args…` from the repository root, killing it after `timeout`.
fn run_node(script: &Path, args: &[String], timeout: Duration) -> Run {
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(repo())
        .env("CHROMIUM_PATH", chromium_path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = stderr.join().unwrap_or_default();
    if status.is_none() {
        stderr.push_str(&format!(
            "\nkilled after {}s without finishing",
            timeout.as_secs()
        ));
    }
    Run {
        success: status.is_some_and(|s| s.success()),
        stdout: stdout.join().unwrap_or_default(),
        stderr,
        elapsed: started.elapsed(),
    }
}

/// The patient's whole flow four times (two viewports, JavaScript on and off), start of
/// Chromium included.
const PATIENT_FLOW_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread")]
async fn a_patient_books_moves_and_cancels_in_headless_chromium() {
    require_browser_deps();
    // One patient books, moves and cancels four times, three SMS a round, within the phone's
    // SMS day (10 before the fourth booking). The MIS's change feed is followed every second
    // meanwhile: it lists each of the patient's own changes, and none of them may come back
    // as the clinic's (a CI run once found the day full: a poll had applied the booking's
    // older feed item over the move, with an SMS each).
    let (app, emulators) = crate::support::with_emulators_and(|config| {
        config.change_feed_interval = Duration::from_secs(1);
    })
    .await;
    // Every directory, prices too: the confirmation page shows the price.
    crate::support::sync_all(&app, true)
        .await
        .expect("directories sync");
    let (doctor, branch) = doctor_in(&app, None).await;
    let (email, password) = ("browser@example.ru", "browser passphrase 1");
    let patient = app.create_user(email, password, Role::Patient).await;
    assert!(
        patient.phone.is_some(),
        "the patient has a phone for the SMS"
    );
    let appointments_before = emulators.control.appointments();

    let script = repo().join("tests/browser/book_and_cancel.mjs");
    let args = vec![
        app.base.clone(),
        email.to_owned(),
        password.to_owned(),
        doctor.to_string(),
        branch.to_string(),
    ];
    // The server runs on this runtime's workers; the browser waits on a blocking thread.
    let run = tokio::task::spawn_blocking(move || run_node(&script, &args, PATIENT_FLOW_TIMEOUT))
        .await
        .expect("the browser run");
    eprintln!(
        "browser run took {:.1}s\n{}{}",
        run.elapsed.as_secs_f64(),
        run.stdout,
        run.stderr
    );
    assert!(
        run.success,
        "the browser flow failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    assert!(run.stdout.contains("RUNS=4"), "{}", run.stdout);

    let record_ids: Vec<i64> = run
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("RECORD_ID="))
        .map(|id| id.trim().parse().expect("a record id"))
        .collect();
    assert_eq!(record_ids.len(), 4, "one record per run: {record_ids:?}");
    let token = app.api_token(email, password).await;
    let appointments = emulators.control.appointments();
    for record_id in record_ids {
        let conn = app.db().await;
        let view = record::find_view(&conn, record_id)
            .await
            .expect("query the record")
            .expect("the booked record is in the database");
        let booked = view.record;
        assert_eq!(booked.status, record::RecordStatus::Cancelled);
        assert_eq!(booked.user_id, Some(patient.id), "booked by the patient");
        assert_eq!(booked.specialist_id, doctor);
        assert_eq!(booked.branch_id, branch);
        assert_eq!(booked.source, record::RecordSource::Cabinet);
        assert_eq!(
            booked.comment.as_deref(),
            Some("Запись из браузерного теста")
        );
        assert_eq!(booked.cancel_reason.as_deref(), Some("Не смогу прийти"));
        assert!(booked.cancelled_at.is_some(), "the cancel time is kept");
        assert_eq!(
            booked.cancelled_by,
            Some(patient.id),
            "cancelled by the patient"
        );
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) AS n FROM audit_events WHERE action = 'record_moved' \
                 AND subject = '{record_id}'"
            ))
            .await,
            1,
            "record {record_id} was moved once"
        );
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) AS n FROM sms_outbox WHERE record_id = {record_id}"
            ))
            .await,
            3,
            "booked, moved, cancelled: record {record_id}'s SMS"
        );
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) AS n FROM audit_events WHERE action LIKE '%by_clinic' \
                 AND subject = '{record_id}'"
            ))
            .await,
            0,
            "nothing the patient did came back as the clinic's"
        );
        let api: serde_json::Value = browser()
            .get(app.url(&format!("/api/v1/records/{record_id}")))
            .bearer_auth(&token)
            .send()
            .await
            .expect("GET the record")
            .json()
            .await
            .expect("json");
        assert_eq!(api["status"], "cancelled", "{api}");
        assert!(
            appointments.iter().all(|a| a.schedid != booked.mis_id),
            "the MIS still has appointment {} active",
            booked.mis_id
        );
    }
    assert_eq!(
        appointments, appointments_before,
        "the MIS has the same active appointments as before the browser run"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_visitor_books_with_an_sms_code_and_cancels_by_the_link_in_headless_chromium() {
    require_browser_deps();
    let (app, emulators) = crate::support::with_emulators_and(|config| {
        config.anonymous_booking_verify = true;
    })
    .await;
    sync_directories(&app).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let script = repo().join("tests/browser/anonymous_booking.mjs");
    let args = vec![
        app.base.clone(),
        emulators.sms_url.clone().expect("SMS emulator"),
        doctor.to_string(),
        branch.to_string(),
    ];
    let run = tokio::task::spawn_blocking(move || run_node(&script, &args, BROWSER_TIMEOUT))
        .await
        .expect("the browser run");
    eprintln!(
        "browser run took {:.1}s\n{}{}",
        run.elapsed.as_secs_f64(),
        run.stdout,
        run.stderr
    );
    assert!(
        run.success,
        "the anonymous flow failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    assert!(run.stdout.contains("VISITS=4"), "{}", run.stdout);
    // Four visits, each booked with a proof, each cancelled through its link, all without an
    // account; each left both consents against its phone.
    assert_eq!(
        app.count("SELECT count(*) AS n FROM records WHERE user_id IS NULL AND source = 'anonymous' AND status = 'cancelled'")
            .await,
        4
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM phone_verifications WHERE token_used_at IS NOT NULL")
            .await,
        4
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM consents WHERE user_id IS NULL")
            .await,
        8
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patient_searches_doctors_and_back_and_reload_keep_the_filters_in_headless_chromium() {
    require_browser_deps();
    let (app, emulators) = with_emulators().await;
    sync_directories(&app).await;
    emulators.control.reset_mis_calls();
    let script = repo().join("tests/browser/search.mjs");
    let args = vec![app.base.clone()];
    let run = tokio::task::spawn_blocking(move || run_node(&script, &args, BROWSER_TIMEOUT))
        .await
        .expect("the browser run");
    eprintln!(
        "browser run took {:.1}s\n{}{}",
        run.elapsed.as_secs_f64(),
        run.stdout,
        run.stderr
    );
    assert!(
        run.success && run.stdout.contains("SEARCH_OK"),
        "the search flow failed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(
        emulators.control.mis_calls("SCHEDULE"),
        0,
        "searching and paging the doctor list never asks the MIS for a schedule"
    );
}

/// A static "website" on a port of its own: one empty page, the origin a browser reports.
async fn static_site() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let site = axum::Router::new().route(
        "/",
        axum::routing::get(|| async {
            axum::response::Html(
                "<!doctype html><html lang=\"ru\"><title>Сайт клиники</title></html>",
            )
        }),
    );
    tokio::spawn(async move {
        axum::serve(listener, site).await.ok();
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_website_on_its_own_origin_signs_in_and_books_and_another_origin_is_blocked() {
    require_browser_deps();
    let (site, other) = (static_site().await, static_site().await);
    let allowed = site.clone();
    let (app, emulators) = crate::support::with_emulators_and(move |config| {
        config.anonymous_booking_verify = true;
        config.cors_allowed_origins = vec![allowed];
    })
    .await;
    sync_directories(&app).await;
    app.create_user("site@example.ru", "site passphrase 1", Role::Patient)
        .await;
    let script = repo().join("tests/browser/second_origin.mjs");
    let args = vec![
        app.base.clone(),
        site,
        other,
        format!(
            "{}/_emulator/messages",
            emulators.sms_url.clone().expect("SMS emulator")
        ),
        "site@example.ru".to_owned(),
        "site passphrase 1".to_owned(),
    ];
    let run = tokio::task::spawn_blocking(move || run_node(&script, &args, BROWSER_TIMEOUT))
        .await
        .expect("the browser run");
    eprintln!("{}{}", run.stdout, run.stderr);
    assert!(
        run.success && run.stdout.contains("CORS_OK"),
        "the second-origin flow failed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM records WHERE source = 'anonymous'")
            .await,
        1
    );
}

/// The accounts of the site map: (role in the script, e-mail, password, role).
const SITE_MAP_ACCOUNTS: [(&str, &str, &str, Role); 3] = [
    (
        "patient",
        "site-map-patient@example.ru",
        "site map patient passphrase",
        Role::Patient,
    ),
    (
        "staff",
        "site-map-staff@example.ru",
        "site map staff passphrase",
        Role::Staff,
    ),
    (
        "admin",
        "site-map-admin@example.ru",
        "site map admin passphrase",
        Role::Admin,
    ),
];

#[tokio::test(flavor = "multi_thread")]
async fn every_page_fits_a_phone_speaks_russian_and_passes_axe_in_headless_chromium() {
    require_browser_deps();
    let axe = repo().join("tests/browser/node_modules/axe-core/axe.min.js");
    assert!(
        axe.is_file(),
        "the site map needs axe-core in tests/browser/node_modules: run \
         `npm ci --prefix tests/browser` (or `just browser-deps`)"
    );
    let (app, _emulators) = with_emulators().await;
    // Every directory kind, so the doctor's page has its photo, prices and reviews, and the
    // sync page has a run of each kind.
    sync_all(&app, false).await.expect("sync the directories");
    let (doctor, branch) = doctor_in(&app, None).await;
    for (_, email, password, role) in SITE_MAP_ACCOUNTS {
        app.create_user(email, password, role).await;
    }
    let (_, patient_email, patient_password, _) = SITE_MAP_ACCOUNTS[0];

    // A visit of the patient's, booked as the website would, through the API; the next free
    // slot is left for the booking form without an account. Both an hour ahead at least: a
    // visit that starts during the run has no cancel page by the time the wide viewport
    // comes to it (a run at 05:28 UTC booked 10:30 Yekaterinburg, two minutes ahead).
    let soon = chrono::Utc::now() + chrono::Duration::hours(1);
    let starts: Vec<String> = free_starts(&app, doctor, branch)
        .await
        .into_iter()
        .filter(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok_and(|t| t > soon))
        .collect();
    assert!(
        starts.len() >= 2,
        "two free slots of doctor {doctor} in branch {branch}: {starts:?}"
    );
    let token = app.api_token(patient_email, patient_password).await;
    let booked = browser()
        .post(app.url("/api/v1/records"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "specialist_id": doctor,
            "branch_id": branch,
            "start": starts[0],
            "comment": "Запись для проверки карты сайта",
        }))
        .send()
        .await
        .expect("book");
    assert_eq!(booked.status(), 201, "the booking through the API");
    let booked: serde_json::Value = booked.json().await.expect("json");
    let record_id = booked["id"].as_i64().expect("the record's id");
    let conn = app.db().await;
    let view = record::find_view(&conn, record_id)
        .await
        .expect("query the record")
        .expect("the booked record is in the database");
    drop(conn);
    let surname = view
        .specialist_name
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_lowercase();

    let mut facts = serde_json::json!({
        "doctorId": doctor,
        "branchId": branch,
        "recordId": record_id,
        "freeStart": starts[1],
        "dayDate": view.local_start().date_naive().to_string(),
        "search": surname,
    });
    for (key, email, password, _) in SITE_MAP_ACCOUNTS {
        facts[key] = serde_json::json!({ "email": email, "password": password });
    }
    let script = repo().join("tests/browser/site_map.mjs");
    let args = vec![app.base.clone(), facts.to_string()];
    // The server runs on this runtime's workers; the browser waits on a blocking thread.
    let run = tokio::task::spawn_blocking(move || run_node(&script, &args, SITE_MAP_TIMEOUT))
        .await
        .expect("the browser run");
    eprintln!(
        "site map run took {:.1}s\n{}{}",
        run.elapsed.as_secs_f64(),
        run.stdout,
        run.stderr
    );
    assert!(
        run.success && run.stdout.contains("SITE_MAP_OK"),
        "the site map failed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
}
