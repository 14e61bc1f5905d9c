//! Directory sync against the MIS and CMS emulators over HTTP, and what the pages and the
//! API then show.

use std::collections::BTreeSet;

use diesel::{QueryableByName, sql_types::Text};
use diesel_async::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::Value;
use sovamed::{
    db::models::{
        sync_run::{self, SyncRun},
        user::Role,
    },
    emulator::{CmsFaults, MisFaults},
    integrations::{bitrix::ContentKind, infoclinica::MisError},
    sync::{
        self, KindFailed, MassDeactivation, Quiet, Sources, SyncError, SyncKind, SyncOptions,
        SyncReport, guard::Subject,
    },
};

use crate::support::{TestApp, browser, list_json, sync_all, with_emulators};

/// Runs `kinds` through `run_kinds` with the configured limit, allowing mass deactivation
/// when `allow`.
async fn sync_kinds(
    app: &TestApp,
    kinds: &[SyncKind],
    allow: bool,
) -> Result<Vec<SyncReport>, (SyncKind, SyncError)> {
    let mut conn = app.db().await;
    let sources = Sources::from_config(&app.config);
    let options = SyncOptions::from_config(&app.config, false).allow_mass_deactivation(allow);
    sync::run_kinds(&mut conn, &sources, kinds, &options, &Quiet, |_| {}).await
}

/// `sovamed sync ARGS` against the app's database and the emulators.
fn sovamed_sync(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sovamed"))
        .arg("sync")
        .args(args)
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
        .expect("run sovamed")
}

/// Active rows of a directory table.
async fn active(app: &TestApp, table: &str) -> i64 {
    let mut conn = app.db().await;
    let rows: Vec<MisId> =
        diesel::sql_query(format!("SELECT count(*) AS fp FROM {table} WHERE active"))
            .load(&mut conn)
            .await
            .expect("count");
    rows[0].fp
}

/// The newest `sync_runs` row of a kind.
async fn latest_run(app: &TestApp, kind: SyncKind) -> SyncRun {
    let mut conn = app.db().await;
    sync_run::latest_per_kind(&mut conn)
        .await
        .expect("runs")
        .into_iter()
        .find(|r| r.kind == kind.as_str())
        .expect("a run of the kind")
}

/// `/staff/sync` as a member of staff sees it (creates the account: once per test).
async fn staff_sync_page(app: &TestApp) -> String {
    app.create_user("desk@example.ru", "front desk passphrase", Role::Staff)
        .await;
    let client = browser();
    app.log_in(&client, "desk@example.ru", "front desk passphrase")
        .await;
    client
        .get(app.url("/staff/sync"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body")
}

fn mis_faults(edit: impl FnOnce(&mut MisFaults)) -> MisFaults {
    let mut faults = MisFaults::default();
    edit(&mut faults);
    faults
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
    let (_, list) = list_json(&app, "/api/v1/specialists").await;
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
    let (_, list) = list_json(&app, "/api/v1/specialists").await;
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
    let output = sovamed_sync(&app, &["all"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("sync branches failed"), "{stderr}");
    assert_eq!(fingerprint(&app).await, before);

    // Back up: the rename arrives.
    emulators.control.set_mis_faults(MisFaults::default());
    let output = sovamed_sync(&app, &["all"]);
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
    let (_, list) = list_json(&app, "/api/v1/specialists").await;
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
    let (_, all) = list_json(&app, "/api/v1/specialists").await;
    let all = all.as_array().expect("array").clone();
    let (_, specialities) = list_json(&app, "/api/v1/specialities").await;
    let (_, branches) = list_json(&app, "/api/v1/branches").await;
    assert_eq!(branches.as_array().expect("array").len(), 3);

    let mut covered = BTreeSet::new();
    for speciality in specialities.as_array().expect("array") {
        let id = speciality["id"].as_i64().expect("id");
        let (status, subset) =
            list_json(&app, &format!("/api/v1/specialists?speciality_id={id}")).await;
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
        let (_, subset) = list_json(&app, &format!("/api/v1/specialists?branch_id={id}")).await;
        let subset = subset.as_array().expect("array");
        assert!(!subset.is_empty() && subset.len() < all.len());
        assert!(subset.iter().all(|s| {
            s["branches"]
                .as_array()
                .expect("list")
                .iter()
                .any(|x| x["id"] == id)
        }));
        let (_, prices) = list_json(&app, &format!("/api/v1/prices?branch_id={id}")).await;
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
    let (_, by_name) = list_json(&app, &format!("/api/v1/specialists?q={surname}")).await;
    let by_name = by_name.as_array().expect("array");
    assert!(!by_name.is_empty());
    assert!(by_name.iter().all(|s| {
        s["full_name"]
            .as_str()
            .expect("name")
            .to_lowercase()
            .contains(&surname)
    }));
    let (_, wildcard) = list_json(&app, "/api/v1/specialists?q=%25").await;
    assert!(
        wildcard.as_array().expect("array").is_empty(),
        "% is matched literally"
    );

    for bad in [
        "speciality_id=abc",
        "branch_id=-1",
        "speciality_id=1.5",
        &format!("q={}", "я".repeat(101)),
        "page=0",
        "per_page=0",
        "per_page=201",
        "per_page=x",
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
    let (_, branches) = list_json(&app, "/api/v1/branches").await;
    let ekb = branches
        .as_array()
        .expect("array")
        .iter()
        .find(|b| b["timezone"] == "Asia/Yekaterinburg")
        .expect("a branch at UTC+5")
        .clone();
    let ekb_id = ekb["id"].as_i64().expect("id");
    let (_, doctors) = list_json(&app, &format!("/api/v1/specialists?branch_id={ekb_id}")).await;
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
    assert!(html.contains("время Екатеринбурга"));
    assert!(
        !html.contains("Asia/Yekaterinburg"),
        "no zone id on the page"
    );

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
    assert_eq!(reviews["total"], detail["reviews_count"]);
    assert_eq!(
        reviews["items"].as_array().expect("array").len() as i64,
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
    for (kind, title) in [
        (SyncKind::Branches, "Филиалы"),
        (SyncKind::Specialities, "Специальности"),
        (SyncKind::Specialists, "Врачи"),
        (SyncKind::Prices, "Цены"),
        (SyncKind::Reviews, "Отзывы"),
        (SyncKind::Content, "Материалы сайта"),
    ] {
        assert!(
            html.contains(&format!("<td data-label=\"Данные\">{title}</td>")),
            "{}",
            kind.as_str()
        );
        assert!(!html.contains(&format!(">{}</td>", kind.as_str())));
    }
    assert!(html.contains("успешно"));
}

// ------------------------------------------------------------ sync that refuses to wipe

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_branch_list_is_refused_and_every_branch_kept_until_allowed() {
    let (app, emulators) = with_emulators().await;
    sync_all(&app, false).await.expect("first sync");
    let branches = active(&app, "branches").await;
    assert_eq!(branches, 3);
    let before = fingerprint(&app).await;
    emulators.control.set_mis_faults(mis_faults(|f| {
        f.empty_lists.insert("GET_FILIAL_LIST".into());
    }));

    let (kind, error) = sync_kinds(&app, &[SyncKind::Branches], false)
        .await
        .expect_err("refused");
    assert_eq!(kind, SyncKind::Branches);
    assert_eq!(
        error.refusal(),
        Some(&MassDeactivation {
            subject: Subject::Branches,
            deactivated: 3,
            active_before: 3,
            max_percent: 20,
        })
    );
    assert_eq!(
        fingerprint(&app).await,
        before,
        "rolled back: no row version moved"
    );
    assert_eq!(active(&app, "branches").await, 3);
    let run = latest_run(&app, SyncKind::Branches).await;
    assert!(!run.succeeded);
    assert_eq!((run.deactivated, run.created, run.updated), (0, 0, 0));

    // The command line: non-zero, the summary says so, one line on stderr.
    let output = sovamed_sync(&app, &["branches"]);
    assert!(!output.status.success());
    let refusal = "refused: would deactivate 3 of 3 branches (100 %, limit 20 %); \
                   run with --allow-mass-deactivation if this is real";
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("branches: {refusal}")), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "sync branches failed, previous data kept: {refusal}"
        )),
        "{stderr}"
    );
    assert_eq!(fingerprint(&app).await, before);

    // An operator who knows the branches are really gone says so.
    let output = sovamed_sync(&app, &["branches", "--allow-mass-deactivation"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("branches: 0 new, 0 updated, 0 unchanged, 3 deactivated"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "note: mass deactivation allowed by --allow-mass-deactivation: 3 of 3 branches (100 %, limit 20 %)"
        ),
        "{stdout}"
    );
    assert_eq!(active(&app, "branches").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_doctor_list_is_refused_and_allowed_through_run_kinds() {
    let (app, emulators) = with_emulators().await;
    sync_all(&app, false).await.expect("first sync");
    let doctors = active(&app, "specialists").await;
    assert_eq!(
        doctors,
        emulators.control.world().visible_doctor_count() as i64
    );
    let before = fingerprint(&app).await;
    emulators.control.set_mis_faults(mis_faults(|f| {
        f.empty_lists.insert("GET_DOCTOR_LIST".into());
    }));

    let (kind, error) = sync_kinds(&app, &SyncKind::DIRECTORIES, false)
        .await
        .expect_err("refused");
    assert_eq!(kind, SyncKind::Specialists);
    let mass = error.refusal().expect("a refusal").clone();
    assert_eq!(
        (mass.subject, mass.deactivated, mass.active_before),
        (Subject::Specialists, doctors as u64, doctors as u64)
    );
    assert!(
        error.to_string().starts_with(&format!(
            "refused: would deactivate {doctors} of {doctors} specialists (100 %, limit 20 %)"
        )),
        "{error}"
    );
    assert_eq!(fingerprint(&app).await, before);
    assert_eq!(active(&app, "specialists").await, doctors);

    let reports = sync_kinds(&app, &[SyncKind::Specialists], true)
        .await
        .expect("allowed");
    assert_eq!(reports[0].counts.deactivated, doctors as u64);
    assert!(
        reports[0].notes.iter().any(|n| n
            == &format!(
                "mass deactivation allowed by --allow-mass-deactivation: {doctors} of {doctors} specialists (100 %, limit 20 %)"
            )),
        "{:?}",
        reports[0].notes
    );
    assert_eq!(active(&app, "specialists").await, 0);
    let run = latest_run(&app, SyncKind::Specialists).await;
    assert!(run.succeeded);
    assert_eq!(run.deactivated, doctors as i32);
    assert!(
        run.notes.contains("mass deactivation allowed"),
        "{}",
        run.notes
    );
    // Staff read it in Russian, not as the stored note.
    let html = staff_sync_page(&app).await;
    assert!(
        html.contains(&format!(
            "успешно; по разрешению оператора отключено больше допустимого (20 %) — врачи: {doctors} из {doctors} (100 %)"
        )),
        "{html}"
    );
    assert!(!html.contains("mass deactivation"), "{html}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_short_doctor_page_fails_the_sync_even_with_the_flag() {
    let (app, emulators) = with_emulators().await;
    sync_all(&app, false).await.expect("first sync");
    let rows = emulators.control.world().doctor_rows().len();
    assert!(rows > 10, "{rows} rows");
    let doctors = active(&app, "specialists").await;
    let before = fingerprint(&app).await;
    // 10 rows a page while ITEMSNUMBER counts every row.
    emulators
        .control
        .set_mis_faults(mis_faults(|f| f.short_pages = Some(10)));

    for allow in [false, true] {
        let (kind, error) = sync_kinds(&app, &[SyncKind::Specialists], allow)
            .await
            .expect_err("a short page is an error");
        assert_eq!(kind, SyncKind::Specialists);
        assert!(
            matches!(&error, SyncError::Mis(MisError::Malformed(m))
                if m.contains("short page") && m.contains(&format!("brought 10 of the {} expected (ITEMSNUMBER {rows}", rows.min(100)))),
            "{error}"
        );
        assert_eq!(fingerprint(&app).await, before);
        assert_eq!(active(&app, "specialists").await, doctors);
    }
    let output = sovamed_sync(&app, &["specialists", "--allow-mass-deactivation"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("sync specialists failed, previous data kept: MIS: MIS answer is malformed: GET_DOCTOR_LIST: short page"),
        "{stderr}"
    );
    assert_eq!(fingerprint(&app).await, before);

    // Whole pages again: nothing to change.
    emulators.control.set_mis_faults(MisFaults::default());
    let reports = sync_kinds(&app, &[SyncKind::Specialists], false)
        .await
        .expect("sync");
    assert_eq!(reports[0].counts.deactivated, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_to_another_message_type_fails_the_sync() {
    let (app, emulators) = with_emulators().await;
    sync_all(&app, false).await.expect("first sync");
    let before = fingerprint(&app).await;
    emulators
        .control
        .set_mis_faults(mis_faults(|f| f.wrong_message_type = true));

    for (kind, asked, answered) in [
        (SyncKind::Branches, "GET_FILIAL_LIST", "GET_DEPARTMENT_LIST"),
        (
            SyncKind::Specialities,
            "GET_DEPARTMENT_LIST",
            "GET_FILIAL_LIST",
        ),
        (SyncKind::Specialists, "GET_DOCTOR_LIST", "GET_FILIAL_LIST"),
    ] {
        let (failed, error) = sync_kinds(&app, &[kind], true)
            .await
            .expect_err("another message's answer");
        assert_eq!(failed, kind);
        assert!(
            matches!(&error, SyncError::Mis(MisError::Malformed(m))
                if m == &format!("answer is for message type {answered}, not {asked}")),
            "{error}"
        );
    }
    assert_eq!(fingerprint(&app).await, before);
    for table in ["branches", "specialities", "specialists"] {
        assert!(active(&app, table).await > 0, "{table}");
    }
    let output = sovamed_sync(&app, &["all"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("sync branches failed, previous data kept: MIS: MIS answer is malformed: answer is for message type GET_DEPARTMENT_LIST, not GET_FILIAL_LIST"),
        "{stderr}"
    );
    assert_eq!(fingerprint(&app).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_branch_of_three_is_refused_without_the_flag_and_deactivated_with_it() {
    let (app, emulators) = with_emulators().await;
    sync_all(&app, false).await.expect("first sync");
    let before = fingerprint(&app).await;
    // The clinic really closes a branch: the MIS stops listing it.
    let closed = emulators.control.edit_world(|world| {
        let branch = world.branches.remove(0);
        branch.mis_id
    });

    let (_, error) = sync_kinds(&app, &[SyncKind::Branches], false)
        .await
        .expect_err("33 % is over 20 %");
    assert_eq!(
        error.to_string(),
        "refused: would deactivate 1 of 3 branches (33.3 %, limit 20 %); run with --allow-mass-deactivation if this is real"
    );
    assert_eq!(fingerprint(&app).await, before);

    let reports = sync_kinds(&app, &[SyncKind::Branches], true)
        .await
        .expect("allowed");
    assert_eq!(reports[0].counts.deactivated, 1);
    assert_eq!(reports[0].counts.unchanged, 2);
    assert_eq!(
        reports[0].notes,
        [
            "mass deactivation allowed by --allow-mass-deactivation: 1 of 3 branches (33.3 %, limit 20 %)"
        ]
    );
    let mut conn = app.db().await;
    let still_active: Vec<MisId> = diesel::sql_query(format!(
        "SELECT count(*) AS fp FROM branches WHERE mis_id = {closed} AND active"
    ))
    .load(&mut conn)
    .await
    .expect("query");
    assert_eq!(still_active[0].fp, 0);
    assert_eq!(active(&app, "branches").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn deactivations_within_the_limit_need_no_flag() {
    let (app, emulators) = with_emulators().await;
    sync_all(&app, false).await.expect("first sync");
    let doctors = active(&app, "specialists").await as u64;
    // The most the default 20 % lets through, and one more.
    let within = doctors * 20 / 100;
    assert!(within >= 2, "{doctors} doctors");
    let gone: Vec<_> = emulators.control.edit_world(|world| {
        let visible: Vec<i64> = world
            .doctors
            .iter()
            .filter(|d| d.visible)
            .map(|d| d.mis_id)
            .take(within as usize + 1)
            .collect();
        let (gone, kept): (Vec<_>, Vec<_>) = world
            .doctors
            .drain(..)
            .partition(|d| visible.contains(&d.mis_id));
        world.doctors = kept;
        gone
    });
    let before = fingerprint(&app).await;
    let (_, error) = sync_kinds(&app, &[SyncKind::Specialists], false)
        .await
        .expect_err("one over the limit");
    assert_eq!(
        error.refusal().map(|m| (m.deactivated, m.active_before)),
        Some((within + 1, doctors))
    );
    assert_eq!(fingerprint(&app).await, before);

    // One of them comes back: what is left is within the limit.
    let back = gone[0].clone();
    emulators
        .control
        .edit_world(|world| world.doctors.push(back));
    let reports = sync_kinds(&app, &[SyncKind::Specialists], false)
        .await
        .expect("within the limit");
    assert_eq!(reports[0].counts.deactivated, within);
    assert!(
        !reports[0]
            .notes
            .iter()
            .any(|n| n.contains("mass deactivation")),
        "{:?}",
        reports[0].notes
    );
    assert_eq!(active(&app, "specialists").await as u64, doctors - within);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_periodic_sync_records_a_refusal_and_staff_read_it_in_russian() {
    let (app, emulators) = with_emulators().await;
    sync_all(&app, false).await.expect("first sync");
    let doctors = active(&app, "specialists").await;
    let before = fingerprint(&app).await;
    emulators.control.set_mis_faults(mis_faults(|f| {
        f.empty_lists.insert("GET_DOCTOR_LIST".into());
    }));

    // What the scheduler inside `serve` runs each round: options from the configuration.
    let sources = Sources::from_config(&app.config);
    let options = SyncOptions::from_config(&app.config, false);
    assert!(!options.deactivation.allow_mass);
    let error = sync::scheduler::run_once_locked(&app.config.database_url, &sources, &options)
        .await
        .expect_err("refused");
    let failed = error.downcast_ref::<KindFailed>().expect("a kind failed");
    assert_eq!(failed.kind, SyncKind::Specialists);
    assert!(failed.error.refusal().is_some());
    assert_eq!(fingerprint(&app).await, before);
    assert_eq!(active(&app, "specialists").await, doctors);

    let run = latest_run(&app, SyncKind::Specialists).await;
    assert!(!run.succeeded);
    let stored = run.error.clone().expect("an error");
    assert_eq!(
        stored,
        format!(
            "refused: would deactivate {doctors} of {doctors} specialists (100 %, limit 20 %); run with --allow-mass-deactivation if this is real"
        )
    );
    assert!(MassDeactivation::from_refusal(&stored).is_some());
    // The kinds before it ran and succeeded; none after it ran.
    assert!(latest_run(&app, SyncKind::Specialities).await.succeeded);

    let html = staff_sync_page(&app).await;
    assert!(
        html.contains("<td data-label=\"Данные\">Врачи</td>"),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "<strong>отказ</strong>: синхронизация отключила бы больше допустимого (20 %) — врачи: {doctors} из {doctors} (100 %). Данные не изменены."
        )),
        "{html}"
    );
    assert!(
        html.contains("с разрешением массового отключения"),
        "{html}"
    );
    assert!(
        !html.contains("allow-mass-deactivation") && !html.contains("sovamed sync"),
        "no command line on the page: {html}"
    );
    assert!(!html.contains("refused"), "no English words on the page");
    assert!(!html.contains("would deactivate"));
}
