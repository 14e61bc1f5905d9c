//! Directory sync against the MIS and CMS emulators over HTTP, and what the pages and the
//! API then show.

use std::collections::BTreeSet;

use diesel::{QueryableByName, sql_types::Text};
use diesel_async::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::Value;
use sovamed::{
    emulator::{CmsFaults, MisFaults},
    integrations::bitrix::ContentKind,
    sync::{self, Quiet, Sources, SyncKind, SyncOptions, SyncReport},
};

use crate::support::{TestApp, browser, with_emulators};

async fn sync_all(app: &TestApp, full: bool) -> Result<Vec<SyncReport>, String> {
    let mut conn = app.db().await;
    let sources = Sources::from_config(&app.config);
    let options = SyncOptions::from_config(&app.config, full);
    sync::run_kinds(
        &mut conn,
        &sources,
        &SyncKind::DIRECTORIES,
        &options,
        &Quiet,
        |_| {},
    )
    .await
    .map_err(|(kind, e)| format!("{}: {e}", kind.as_str()))
}

#[derive(QueryableByName)]
struct Fingerprint {
    #[diesel(sql_type = Text)]
    fp: String,
}

/// Row versions of every directory table: any write changes `xmin` or `ctid`.
async fn fingerprint(app: &TestApp) -> Vec<String> {
    let mut conn = app.db().await;
    let mut out = Vec::new();
    for table in [
        "branches",
        "specialities",
        "specialists",
        "specialist_branches",
        "specialist_specialities",
        "prices",
        "reviews",
        "content_items",
        "sync_watermarks",
    ] {
        let rows: Vec<Fingerprint> = diesel::sql_query(format!(
            "SELECT coalesce(string_agg(xmin::text || '@' || ctid::text, ',' ORDER BY ctid), '') AS fp FROM {table}"
        ))
        .load(&mut conn)
        .await
        .expect("fingerprint");
        out.push(format!(
            "{table}={}",
            rows.into_iter().next().map(|r| r.fp).unwrap_or_default()
        ));
    }
    out
}

async fn get_json(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let response = browser().get(app.url(path)).send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_sync_fills_the_directories_and_a_second_run_writes_nothing() {
    let (app, emulators) = with_emulators().await;
    let world = emulators.control.world();
    let first = sync_all(&app, false).await.expect("first sync");
    let by_kind = |reports: &[SyncReport], kind: SyncKind| {
        reports
            .iter()
            .find(|r| r.kind == kind)
            .map(|r| r.counts.clone())
            .expect("report")
    };
    let branches = by_kind(&first, SyncKind::Branches);
    assert_eq!(
        branches.created,
        world.branches.iter().filter(|b| b.visible).count() as u64
    );
    assert_eq!(
        by_kind(&first, SyncKind::Specialists).created,
        world.visible_doctor_count() as u64
    );
    assert!(by_kind(&first, SyncKind::Prices).created >= 200);
    assert!(by_kind(&first, SyncKind::Reviews).created >= 300);

    let before = fingerprint(&app).await;
    let second = sync_all(&app, false).await.expect("second sync");
    for report in &second {
        assert_eq!(
            (
                report.counts.created,
                report.counts.updated,
                report.counts.deactivated
            ),
            (0, 0, 0),
            "{report}"
        );
        assert!(report.counts.unchanged > 0, "{report}");
    }
    assert_eq!(
        fingerprint(&app).await,
        before,
        "the second run wrote nothing"
    );

    // A full run (no watermarks) also finds nothing to change.
    let full = sync_all(&app, true).await.expect("full sync");
    for report in &full {
        assert_eq!(
            (report.counts.created, report.counts.updated),
            (0, 0),
            "{report}"
        );
    }
    // Only the watermarks move (the full run saw every item again).
    let after_full = fingerprint(&app).await;
    assert_eq!(
        after_full[..after_full.len() - 1],
        before[..before.len() - 1]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_doctor_removed_at_the_source_is_deactivated_and_leaves_the_lists() {
    let (app, emulators) = with_emulators().await;
    sync_all(&app, false).await.expect("sync");
    let (_, list) = get_json(&app, "/api/v1/specialists").await;
    let victim = &list.as_array().expect("array")[0];
    let victim_id = victim["id"].as_i64().expect("id");
    let victim_name = victim["full_name"].as_str().expect("name").to_owned();
    let mut conn = app.db().await;
    let mis_id: i64 = diesel::sql_query(format!(
        "SELECT mis_id AS fp FROM specialists WHERE id = {victim_id}"
    ))
    .load::<MisId>(&mut conn)
    .await
    .expect("mis id")
    .into_iter()
    .next()
    .map(|r| r.fp)
    .expect("row");
    assert!(emulators.control.remove_mis_doctor(mis_id));

    let reports = sync_all(&app, false).await.expect("sync");
    let specialists = reports
        .iter()
        .find(|r| r.kind == SyncKind::Specialists)
        .expect("report");
    assert_eq!(specialists.counts.deactivated, 1);
    let (_, list) = get_json(&app, "/api/v1/specialists").await;
    assert!(
        !list
            .as_array()
            .expect("array")
            .iter()
            .any(|s| s["id"] == victim_id)
    );
    assert_eq!(
        get_json(&app, &format!("/api/v1/specialists/{victim_id}"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let page = browser()
        .get(app.url("/doctors"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    assert!(!page.contains(&victim_name));
    // The row stays for whatever refers to it.
    let still_there: Vec<MisId> = diesel::sql_query(format!(
        "SELECT id AS fp FROM specialists WHERE id = {victim_id} AND NOT active"
    ))
    .load(&mut conn)
    .await
    .expect("query");
    assert_eq!(still_there.len(), 1);
}

#[derive(QueryableByName)]
struct MisId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    fp: i64,
}

#[tokio::test(flavor = "multi_thread")]
async fn items_edited_between_page_requests_are_still_synced() {
    let (app, emulators) = with_emulators().await;
    emulators.control.set_cms_faults(CmsFaults {
        mutate_between_pages: true,
        ..CmsFaults::default()
    });
    sync_all(&app, true).await.expect("sync");
    let world = emulators.control.world();
    let mut conn = app.db().await;
    let synced: Vec<MisId> = diesel::sql_query("SELECT count(*) AS fp FROM reviews WHERE active")
        .load(&mut conn)
        .await
        .expect("count");
    assert_eq!(
        synced[0].fp as usize,
        world.cms_items(ContentKind::Reviews).len(),
        "no review was skipped"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_source_fails_the_command_and_leaves_the_database_as_it_was() {
    let (app, emulators) = with_emulators().await;
    sync_all(&app, false).await.expect("first sync");
    emulators.control.rename_mis_doctor(
        emulators.control.world().doctors[0].mis_id,
        "Новое Имя Врача",
    );
    let before = fingerprint(&app).await;

    emulators.control.set_mis_faults(MisFaults {
        http_500: true,
        ..MisFaults::default()
    });
    let error = sync_all(&app, false).await.expect_err("sync fails");
    assert!(error.starts_with("branches"), "{error}");
    assert_eq!(fingerprint(&app).await, before);

    emulators.control.set_mis_faults(MisFaults {
        malformed: true,
        ..MisFaults::default()
    });
    assert!(sync_all(&app, false).await.is_err());
    assert_eq!(fingerprint(&app).await, before);

    // The command line says why in one line and exits non-zero.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sovamed"))
        .args(["sync", "all"])
        .env("REDIS_PREFIX", &app.config.redis_prefix)
        .env("DATABASE_URL", &app.config.database_url)
        .env(
            "INFOCLINICA_URL",
            app.config.infoclinica_url.as_deref().expect("url"),
        )
        .env("BITRIX_URL", app.config.bitrix_url.as_deref().expect("url"))
        .env(
            "BITRIX_TOKEN",
            app.config.bitrix_token.as_deref().expect("token"),
        )
        .output()
        .expect("run sovamed");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("sync branches failed"), "{stderr}");
    assert_eq!(fingerprint(&app).await, before);

    // Back up: the rename arrives.
    emulators.control.set_mis_faults(MisFaults::default());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sovamed"))
        .args(["sync", "all"])
        .env("REDIS_PREFIX", &app.config.redis_prefix)
        .env("DATABASE_URL", &app.config.database_url)
        .env(
            "INFOCLINICA_URL",
            app.config.infoclinica_url.as_deref().expect("url"),
        )
        .env("BITRIX_URL", app.config.bitrix_url.as_deref().expect("url"))
        .env(
            "BITRIX_TOKEN",
            app.config.bitrix_token.as_deref().expect("token"),
        )
        .output()
        .expect("run sovamed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("specialists: 0 new, 1 updated"), "{stdout}");
    assert!(stdout.contains("unchanged"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_script_handler_or_javascript_url_survives_in_any_bio() {
    let (app, _emulators) = with_emulators().await;
    sync_all(&app, false).await.expect("sync");
    let (_, list) = get_json(&app, "/api/v1/specialists").await;
    let mut bios = 0;
    for specialist in list.as_array().expect("array") {
        let id = specialist["id"].as_i64().expect("id");
        let (status, detail) = get_json(&app, &format!("/api/v1/specialists/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        let bio = detail["bio_html"].as_str().expect("bio").to_lowercase();
        if !bio.is_empty() {
            bios += 1;
        }
        let page = browser()
            .get(app.url(&format!("/doctors/{id}")))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("body");
        let page = page.to_lowercase();
        // The layout's own <script src="/static/htmx.min.js"> is fine; the bio section is checked.
        let shown_bio = page
            .split("<div class=\"bio\">")
            .nth(1)
            .and_then(|rest| rest.split("</section>").next())
            .unwrap_or_default();
        assert_eq!(bio.is_empty(), shown_bio.is_empty(), "doctor {id}");
        for text in [bio.as_str(), shown_bio] {
            assert!(!text.contains("<script"), "doctor {id}");
            assert!(!text.contains("onerror"), "doctor {id}");
            assert!(!text.contains("javascript:"), "doctor {id}");
        }
    }
    assert!(bios > 20, "most doctors have a bio ({bios})");
}

#[tokio::test(flavor = "multi_thread")]
async fn api_filters_return_proper_subsets() {
    let (app, _emulators) = with_emulators().await;
    sync_all(&app, false).await.expect("sync");
    let (_, all) = get_json(&app, "/api/v1/specialists").await;
    let all = all.as_array().expect("array").clone();
    let (_, specialities) = get_json(&app, "/api/v1/specialities").await;
    let (_, branches) = get_json(&app, "/api/v1/branches").await;
    assert_eq!(branches.as_array().expect("array").len(), 3);

    let mut covered = BTreeSet::new();
    for speciality in specialities.as_array().expect("array") {
        let id = speciality["id"].as_i64().expect("id");
        let (status, subset) =
            get_json(&app, &format!("/api/v1/specialists?speciality_id={id}")).await;
        assert_eq!(status, StatusCode::OK);
        for s in subset.as_array().expect("array") {
            assert!(
                s["specialities"]
                    .as_array()
                    .expect("list")
                    .iter()
                    .any(|x| x["id"] == id)
            );
            covered.insert(s["id"].as_i64().expect("id"));
        }
    }
    assert_eq!(
        covered.len(),
        all.len(),
        "every specialist has a speciality"
    );

    for branch in branches.as_array().expect("array") {
        let id = branch["id"].as_i64().expect("id");
        let (_, subset) = get_json(&app, &format!("/api/v1/specialists?branch_id={id}")).await;
        let subset = subset.as_array().expect("array");
        assert!(!subset.is_empty() && subset.len() < all.len());
        assert!(subset.iter().all(|s| {
            s["branches"]
                .as_array()
                .expect("list")
                .iter()
                .any(|x| x["id"] == id)
        }));
        let (_, prices) = get_json(&app, &format!("/api/v1/prices?branch_id={id}")).await;
        assert!(
            prices
                .as_array()
                .expect("array")
                .iter()
                .all(|p| p["branch_id"] == id)
        );
    }

    let surname = all[0]["full_name"]
        .as_str()
        .expect("name")
        .split(' ')
        .next()
        .expect("surname")
        .to_lowercase();
    let (_, by_name) = get_json(&app, &format!("/api/v1/specialists?q={surname}")).await;
    let by_name = by_name.as_array().expect("array");
    assert!(!by_name.is_empty());
    assert!(by_name.iter().all(|s| {
        s["full_name"]
            .as_str()
            .expect("name")
            .to_lowercase()
            .contains(&surname)
    }));
    let (_, wildcard) = get_json(&app, "/api/v1/specialists?q=%25").await;
    assert!(
        wildcard.as_array().expect("array").is_empty(),
        "% is matched literally"
    );

    for bad in [
        "speciality_id=abc",
        "branch_id=-1",
        "speciality_id=1.5",
        &format!("q={}", "я".repeat(101)),
    ] {
        let (status, body) = get_json(&app, &format!("/api/v1/specialists?{bad}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(body["error"]["code"], "validation_failed");
    }
    assert_eq!(
        get_json(&app, "/api/v1/prices?branch_id=x").await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    for missing in [
        "/api/v1/specialists/999999999",
        "/api/v1/specialists/abc",
        "/api/v1/specialists/999999999/reviews",
    ] {
        let (status, body) = get_json(&app, missing).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
        assert_eq!(body["error"]["code"], "not_found");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_doctor_in_the_yekaterinburg_branch_carries_its_zone_and_pages_render() {
    let (app, _emulators) = with_emulators().await;
    sync_all(&app, false).await.expect("sync");
    let (_, branches) = get_json(&app, "/api/v1/branches").await;
    let ekb = branches
        .as_array()
        .expect("array")
        .iter()
        .find(|b| b["timezone"] == "Asia/Yekaterinburg")
        .expect("a branch at UTC+5")
        .clone();
    let ekb_id = ekb["id"].as_i64().expect("id");
    let (_, doctors) = get_json(&app, &format!("/api/v1/specialists?branch_id={ekb_id}")).await;
    let doctor = &doctors.as_array().expect("array")[0];
    let id = doctor["id"].as_i64().expect("id");
    let (_, detail) = get_json(&app, &format!("/api/v1/specialists/{id}")).await;
    assert!(
        detail["branches_detail"]
            .as_array()
            .expect("list")
            .iter()
            .any(|b| b["timezone"] == "Asia/Yekaterinburg")
    );

    let page = browser()
        .get(app.url(&format!("/doctors/{id}")))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("body");
    assert!(html.contains(doctor["full_name"].as_str().expect("name")));
    assert!(html.contains("Asia/Yekaterinburg"));

    // The list, its filters without JavaScript, and the htmx partial.
    let list = browser()
        .get(app.url(&format!("/doctors?branch_id={ekb_id}")))
        .send()
        .await
        .expect("list");
    let html = list.text().await.expect("body");
    assert!(html.contains("<form") && html.contains(doctor["full_name"].as_str().expect("name")));
    let partial = browser()
        .get(app.url(&format!("/doctors?branch_id={ekb_id}")))
        .header("hx-request", "true")
        .send()
        .await
        .expect("partial")
        .text()
        .await
        .expect("body");
    assert!(
        !partial.contains("<html") && partial.contains(doctor["full_name"].as_str().expect("name"))
    );

    // Reviews are paginated and only published ones show.
    let (_, reviews) = get_json(
        &app,
        &format!("/api/v1/specialists/{id}/reviews?per_page=200"),
    )
    .await;
    assert_eq!(
        reviews.as_array().expect("array").len() as i64,
        detail["reviews_count"].as_i64().expect("count")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_see_the_last_sync_of_each_kind() {
    let (app, _emulators) = with_emulators().await;
    sync_all(&app, false).await.expect("sync");
    app.create_user(
        "desk@example.ru",
        "front desk passphrase",
        sovamed::db::models::user::Role::Staff,
    )
    .await;
    let client = browser();
    app.log_in(&client, "desk@example.ru", "front desk passphrase")
        .await;
    let page = client
        .get(app.url("/staff/sync"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("body");
    for kind in SyncKind::DIRECTORIES {
        assert!(
            html.contains(&format!("<td>{}</td>", kind.as_str())),
            "{}",
            kind.as_str()
        );
    }
    assert!(html.contains("успешно"));
}
