//! The test harness: the real server on an ephemeral port, its own PostgreSQL database
//! (cloned from a migrated template) and its own Redis key prefix, and a cookie-keeping
//! HTTP client that behaves like a browser without following redirects.

pub mod core;
pub mod cut_proxy;
pub mod fixtures;
pub mod served;

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use reqwest::{Client, Response, redirect::Policy};
use sovamed::{
    app::AppState,
    config::Config,
    db::{
        self,
        models::user::{self, NewUser, Role, User},
    },
    server::{self, RunningServer},
};
use tokio::sync::OnceCell;

const SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432";
const TEMPLATE: &str = "sovamed_test_template";
/// A JWT secret for tests only.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

static TEMPLATE_READY: OnceCell<()> = OnceCell::const_new();

/// Migrates the template database once per test process, and drops test databases left
/// behind by earlier runs.
async fn ensure_template() {
    TEMPLATE_READY
        .get_or_init(|| async {
            let mut conn = AsyncPgConnection::establish(&format!("{SERVER_URL}/postgres"))
                .await
                .expect("PostgreSQL at 127.0.0.1:5432 (start it, see README)");
            diesel::sql_query("SELECT pg_advisory_lock(727001)").execute(&mut conn).await.expect("lock");
            let stale: Vec<DbName> = diesel::sql_query(
                "SELECT datname FROM pg_database WHERE datname LIKE 'sovamed\\_test\\_%' AND datname <> 'sovamed_test_template'",
            )
            .load(&mut conn)
            .await
            .expect("list databases");
            let hour_ago = chrono::Utc::now().timestamp() - 3600;
            let stale = stale.into_iter().filter(|DbName { datname }| {
                datname
                    .strip_prefix("sovamed_test_")
                    .and_then(|rest| rest.split('_').next())
                    .and_then(|secs| secs.parse::<i64>().ok())
                    .is_none_or(|created| created < hour_ago)
            });
            for DbName { datname } in stale {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db::quote_ident(&datname)))
                    .execute(&mut conn)
                    .await;
            }
            let url = format!("{SERVER_URL}/{TEMPLATE}");
            db::create_database_if_missing(&url).await.expect("create template");
            db::run_migrations(&url).await.expect("migrate template");
            diesel::sql_query("SELECT pg_advisory_unlock(727001)").execute(&mut conn).await.expect("unlock");
        })
        .await;
}

#[derive(diesel::QueryableByName)]
struct DbName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    datname: String,
}

/// A fresh database for one test, cloned from the template.
pub async fn fresh_database() -> String {
    ensure_template().await;
    // The creation time in the name lets a later run drop only databases old enough that no
    // concurrent run is still using them.
    let name = format!(
        "sovamed_test_{}_{}",
        chrono::Utc::now().timestamp(),
        uuid::Uuid::new_v4().simple()
    );
    let mut conn = AsyncPgConnection::establish(&format!("{SERVER_URL}/postgres"))
        .await
        .expect("connect");
    // The template's last migration connection may still be closing; retry briefly.
    for attempt in 0.. {
        let created = diesel::sql_query(format!(
            "CREATE DATABASE {} TEMPLATE {TEMPLATE}",
            db::quote_ident(&name)
        ))
        .execute(&mut conn)
        .await;
        match created {
            Ok(_) => break,
            Err(e) if attempt < 50 => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot create test database: {e}"),
        }
    }
    format!("{SERVER_URL}/{name}")
}

/// Test configuration: defaults, plus the given database and Redis prefix.
pub fn test_config(database_url: &str, redis_prefix: &str) -> Config {
    let database_url = database_url.to_owned();
    let redis_prefix = redis_prefix.to_owned();
    Config::from_lookup(move |name| match name {
        "DATABASE_URL" => Some(database_url.clone()),
        "REDIS_PREFIX" => Some(redis_prefix.clone()),
        "BIND_ADDR" => Some("127.0.0.1:0".into()),
        "JWT_SECRET" => Some(JWT_SECRET.into()),
        "DATABASE_POOL_SIZE" => Some("4".into()),
        // Staff and admins log in with a password alone here; `tests/mfa.rs` turns the
        // second factor on for its apps.
        "MFA_REQUIRED_ROLES" => Some(String::new()),
        // Every test client is 127.0.0.1; `tests/holes.rs` tests the limit with its own.
        "SCHEDULE_UNCACHED_READS_PER_IP_MINUTE" => Some("100000".into()),
        // No reminder round behind a test's back (a moved clock could make one due);
        // `tests/reminders.rs` runs its rounds itself, and with the real binary.
        "REMINDER_HOURS_BEFORE" => Some("0".into()),
        _ => None,
    })
    .expect("test configuration")
}

/// A running server with its own database and Redis prefix.
pub struct TestApp {
    pub config: Config,
    server: Option<RunningServer>,
    pub base: String,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns with a configuration adjusted by `adjust`.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let database_url = fresh_database().await;
        let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
        let mut config = test_config(&database_url, &prefix);
        adjust(&mut config);
        let server = server::start(config.clone()).await.expect("server starts");
        let base = format!("http://{}", server.addr);
        Self {
            config,
            server: Some(server),
            base,
        }
    }

    pub fn state(&self) -> &AppState {
        &self.server.as_ref().expect("running").state
    }

    /// Stops the process's server and starts a new one on the same database and Redis.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("graceful shutdown");
        }
        let server = server::start(self.config.clone())
            .await
            .expect("server restarts");
        self.base = format!("http://{}", server.addr);
        self.server = Some(server);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A number from this test's database (see [`count_rows`]).
    pub async fn count(&self, sql: &str) -> i64 {
        count_rows(&self.config.database_url, sql).await
    }

    /// Runs `sql` (one or more statements, as text) on this test's database: a change a test
    /// makes behind the server's back.
    pub async fn execute(&self, sql: &str) {
        use diesel_async::SimpleAsyncConnection;
        self.db().await.batch_execute(sql).await.expect(sql);
    }

    /// Builds the server's directory snapshot now (the server builds it in the background).
    pub async fn reload_directory(&self) {
        self.state()
            .booking
            .directory
            .reload()
            .await
            .expect("directory snapshot");
    }

    pub async fn db(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.config.database_url)
            .await
            .expect("connect to the test database")
    }

    /// Creates an account directly in the database.
    pub async fn create_user(&self, email: &str, password: &str, role: Role) -> User {
        let hash = sovamed::auth::password::hash(password.to_owned())
            .await
            .expect("hash");
        let mut conn = self.db().await;
        user::insert(
            &mut conn,
            &NewUser {
                email,
                password_hash: &hash,
                full_name: "Тестов Тест Тестович",
                phone: Some("+79001234567"),
                birth_date: None,
                role,
                phone_verified_at: Some(chrono::Utc::now()),
            },
        )
        .await
        .expect("insert user")
    }

    /// GET /login, then POST the form with the page's CSRF token.
    pub async fn log_in(&self, client: &Client, email: &str, password: &str) -> Response {
        self.log_in_next(client, email, password, "").await
    }

    pub async fn log_in_next(
        &self,
        client: &Client,
        email: &str,
        password: &str,
        next: &str,
    ) -> Response {
        let page = client
            .get(self.url("/login"))
            .send()
            .await
            .expect("GET /login")
            .text()
            .await
            .expect("body");
        let token = csrf_token(&page);
        client
            .post(self.url("/login"))
            .form(&[
                ("csrf_token", token.as_str()),
                ("email", email),
                ("password", password),
                ("next", next),
            ])
            .send()
            .await
            .expect("POST /login")
    }

    /// POST /api/v1/user/login and return the token.
    pub async fn api_token(&self, email: &str, password: &str) -> String {
        let response = browser()
            .post(self.url("/api/v1/user/login"))
            .json(&serde_json::json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("API login");
        assert_eq!(response.status(), 200, "API login should succeed");
        let body: serde_json::Value = response.json().await.expect("json");
        body["token"].as_str().expect("token").to_owned()
    }
}

/// A number from the database at `database_url`: `sql` selects one `BIGINT` named `n`.
pub async fn count_rows(database_url: &str, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = AsyncPgConnection::establish(database_url)
        .await
        .expect("connect to the test database");
    let rows: Vec<N> = diesel::sql_query(sql).load(&mut conn).await.expect("count");
    rows[0].n
}

/// A trigger that makes `operation` (`INSERT`, `UPDATE`) on `table` fail like a full disk.
pub async fn refuse_writes(app: &TestApp, operation: &str, table: &str) {
    refuse_writes_after(app, operation, table, 0).await;
}

/// As [`refuse_writes`], each write failing only after `millis` (a slow, then full, disk).
pub async fn refuse_writes_after(app: &TestApp, operation: &str, table: &str, millis: u32) {
    let mut conn = app.db().await;
    diesel::sql_query(format!(
        "CREATE OR REPLACE FUNCTION refuse_writes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep({millis} / 1000.0); RAISE EXCEPTION 'disk full'; END; $$"
    ))
    .execute(&mut conn)
    .await
    .expect("function");
    diesel::sql_query(format!(
        "CREATE TRIGGER refuse BEFORE {operation} ON {table} FOR EACH ROW EXECUTE FUNCTION refuse_writes()"
    ))
    .execute(&mut conn)
    .await
    .expect("trigger");
}

/// A client with a cookie store that does not follow redirects.
pub fn browser() -> Client {
    sovamed::integrations::http::install_crypto_provider();
    Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The value of the hidden `csrf_token` field on a page.
pub fn csrf_token(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html
        .find(marker)
        .map(|i| i + marker.len())
        .expect("page has a CSRF field");
    html[start..].split('"').next().expect("token").to_owned()
}

/// The session cookie a response sets, if any.
pub fn session_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("sovamed_session="))
        .map(|c| {
            c.trim_start_matches("sovamed_session=")
                .split(';')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
}

pub fn location(response: &Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The MIS and CMS emulators (seed 42, demo size) and an app pointed at them.
pub async fn with_emulators() -> (TestApp, sovamed::emulator::Emulators) {
    with_emulators_and(|_| {}).await
}

/// [`with_emulators`] with the configuration adjusted further by `adjust`.
pub async fn with_emulators_and(
    adjust: impl FnOnce(&mut Config) + Send + 'static,
) -> (TestApp, sovamed::emulator::Emulators) {
    let emulators = sovamed::emulator::spawn(sovamed::emulator::EmulatorConfig {
        seed: 42,
        scale: 1,
        mis_bind: "127.0.0.1:0".parse().expect("addr"),
        cms_bind: "127.0.0.1:0".parse().expect("addr"),
        sms_bind: Some("127.0.0.1:0".parse().expect("addr")),
        cms_token: "test-cms-token".into(),
    })
    .await
    .expect("emulators start");
    let (mis_url, cms_url, token) = (
        emulators.mis_url.clone(),
        emulators.cms_url.clone(),
        emulators.cms_token.clone(),
    );
    let (sms_url, sms_key) = (emulators.sms_url.clone(), emulators.sms_api_id.clone());
    let app = TestApp::spawn_with(move |config| {
        config.infoclinica_url = Some(mis_url);
        config.bitrix_url = Some(cms_url);
        config.bitrix_token = Some(token);
        config.infoclinica_timeout = std::time::Duration::from_secs(5);
        config.sms_provider = sovamed::config::SmsProvider::SmsRu;
        config.smsru_url = sms_url.expect("SMS emulator");
        config.smsru_api_id = Some(sms_key);
        config.sms_retry_base = std::time::Duration::from_millis(300);
        // The booking mechanics tests book without a phone code (the call-centre mode);
        // `verified_phones` runs the default, with codes.
        config.anonymous_booking_verify = false;
        adjust(config);
    })
    .await;
    (app, emulators)
}

/// Runs the MIS directory syncs (branches, specialities, specialists) against the emulators.
pub async fn sync_directories(app: &TestApp) {
    core::sync_mis_directories(&app.config).await;
}

/// `GET /api/v1/branches`.
pub async fn branches(app: &TestApp) -> serde_json::Value {
    browser()
        .get(app.url("/api/v1/branches"))
        .send()
        .await
        .expect("branches")
        .json()
        .await
        .expect("json")
}

/// A doctor who works in the branch with `timezone` (any when `None`): (specialist, branch).
pub async fn doctor_in(app: &TestApp, timezone: Option<&str>) -> (i64, i64) {
    let branches = branches(app).await;
    let branch = branches["items"]
        .as_array()
        .expect("array")
        .iter()
        .find(|b| timezone.is_none_or(|tz| b["timezone"] == tz))
        .expect("a branch")
        .clone();
    let branch_id = branch["id"].as_i64().expect("id");
    let doctors: serde_json::Value = browser()
        .get(app.url(&format!("/api/v1/specialists?branch_id={branch_id}")))
        .send()
        .await
        .expect("specialists")
        .json()
        .await
        .expect("json");
    (
        doctors["items"][0]["id"].as_i64().expect("doctor"),
        branch_id,
    )
}

/// The schedule of the next `days` days from the API.
pub async fn schedule(
    app: &TestApp,
    specialist_id: i64,
    branch_id: i64,
    days: i64,
) -> serde_json::Value {
    let zone: chrono_tz::Tz = chrono_tz::Tz::Asia__Yekaterinburg;
    let today = chrono::Utc::now().with_timezone(&zone).date_naive();
    let to = today + chrono::Duration::days(days - 1);
    browser()
        .get(app.url(&format!(
            "/api/v1/specialist/schedule?specialist_id={specialist_id}&branch_id={branch_id}&date_from={today}&date_to={to}"
        )))
        .send()
        .await
        .expect("schedule")
        .json()
        .await
        .expect("json")
}

/// The starts of free slots in the next two weeks.
pub async fn free_starts(app: &TestApp, specialist_id: i64, branch_id: i64) -> Vec<String> {
    let window = schedule(app, specialist_id, branch_id, 14).await;
    window["days"]
        .as_array()
        .expect("days")
        .iter()
        .flat_map(|d| d["slots"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["free"] == true)
        .map(|s| s["start"].as_str().expect("start").to_owned())
        .collect()
}

/// The first free start of the doctor in the branch.
pub async fn first_free_start(app: &TestApp, specialist_id: i64, branch_id: i64) -> String {
    free_starts(app, specialist_id, branch_id)
        .await
        .into_iter()
        .next()
        .expect("a free slot")
}

/// An anonymous booking body.
pub fn anonymous_booking(
    specialist_id: i64,
    branch_id: i64,
    start: &str,
    phone: &str,
) -> serde_json::Value {
    serde_json::json!({
        "specialist_id": specialist_id,
        "branch_id": branch_id,
        "start": start,
        "patient": {"last_name": "Петров", "first_name": "Пётр", "middle_name": "Петрович", "phone": phone, "birth_date": "1980-02-03"},
        "comment": "Первичный приём",
        "consent": {"personal_data": true, "health_data": true}
    })
}

/// Waits until `check` holds, for at most `secs` seconds.
pub async fn eventually(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    check()
}

/// A directory list of the API, every entry (`per_page=200`), after checking the list shape
/// `{items,total,page,per_page}`: the status and the `items` array.
pub async fn list_json(app: &TestApp, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
    let separator = if path.contains('?') { '&' } else { '?' };
    let response = browser()
        .get(app.url(&format!("{path}{separator}per_page=200")))
        .send()
        .await
        .expect("request");
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let items = body["items"].clone();
    assert!(items.is_array(), "{path}: {body}");
    assert_eq!(
        body["total"].as_u64().map(|n| n as usize),
        items.as_array().map(Vec::len),
        "{path}: every entry on one page"
    );
    assert_eq!(body["page"], 1);
    assert_eq!(body["per_page"], 200);
    (status, items)
}

/// Every directory kind (the MIS's and the CMS's) synced from the emulators once, as the
/// scheduler would; `full` ignores the CMS watermarks.
pub async fn sync_all(app: &TestApp, full: bool) -> Result<Vec<sovamed::sync::SyncReport>, String> {
    use sovamed::sync::{self, Quiet, Sources, SyncKind, SyncOptions};
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

/// A page as `client` sees it: its status and body.
pub async fn page(client: &Client, app: &TestApp, path: &str) -> (reqwest::StatusCode, String) {
    let response = client.get(app.url(path)).send().await.expect("GET");
    let status = response.status();
    (status, response.text().await.expect("body"))
}

/// POSTs a form with the CSRF token of the page `from`, as a browser would after opening it.
pub async fn post(
    client: &Client,
    app: &TestApp,
    from: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> Response {
    let (_, html) = page(client, app, from).await;
    let token = csrf_token(&html);
    let mut form: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
    form.extend_from_slice(fields);
    client
        .post(app.url(path))
        .form(&form)
        .send()
        .await
        .expect("POST")
}
