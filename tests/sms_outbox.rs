//! SMS exactly once: the outbox against the SMS.ru emulator. A send whose answer is lost is
//! held, never sent twice; a message a dead worker left `sending` is held too, and sent again
//! only when the gateway says it does not have it; delivery reports reach the staff page and
//! the API.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use diesel_async::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::Value;
use sovamed::{
    config::Config,
    db::{
        self,
        models::{
            outbox::{self, NewOutboxMessage, OutboxMessage},
            user::Role,
        },
    },
    domain::{
        booking::{
            Booking,
            limits::ReserveLimits,
            outbox::{OutboxSettings, drain},
            schedule::ScheduleCache,
        },
        clock::Clock,
    },
    emulator::{EmulatorConfig, EmulatorControl, Emulators, SmsFaults},
    integrations::sms::{Accepted, Lookup, OutgoingSms, SmsError, SmsGateway, smsru::SmsRuClient},
    redis::Redis,
};

use crate::support::{
    TestApp, anonymous_booking, browser, doctor_in, eventually, free_starts, fresh_database,
    sync_directories, test_config,
};

async fn sms_emulators() -> Emulators {
    sovamed::emulator::spawn(EmulatorConfig {
        seed: 42,
        scale: 1,
        mis_bind: "127.0.0.1:0".parse().expect("addr"),
        cms_bind: "127.0.0.1:0".parse().expect("addr"),
        sms_bind: Some("127.0.0.1:0".parse().expect("addr")),
        cms_token: "test-cms-token".into(),
    })
    .await
    .expect("emulators start")
}

/// The MIS and SMS.ru emulators and a server pointed at them, with `adjust` applied.
async fn app_with(adjust: impl FnOnce(&mut Config)) -> (TestApp, Emulators) {
    let emulators = sms_emulators().await;
    let emu = emulators.clone();
    let app = TestApp::spawn_with(move |config| {
        config.infoclinica_url = Some(emu.mis_url.clone());
        config.bitrix_url = Some(emu.cms_url.clone());
        config.bitrix_token = Some(emu.cms_token.clone());
        config.infoclinica_timeout = Duration::from_secs(5);
        config.sms_provider = sovamed::config::SmsProvider::SmsRu;
        config.smsru_url = emu.sms_url.clone().expect("SMS emulator");
        config.smsru_api_id = Some(emu.sms_api_id.clone());
        config.sms_retry_base = Duration::from_millis(300);
        config.anonymous_booking_verify = false;
        adjust(config);
    })
    .await;
    (app, emulators)
}

/// Books a free slot anonymously; the record's id.
async fn book(app: &TestApp, phone: &str) -> i64 {
    sync_directories(app).await;
    let (doctor, branch) = doctor_in(app, None).await;
    let start = free_starts(app, doctor, branch)
        .await
        .into_iter()
        .next()
        .expect("a free slot");
    let response = browser()
        .post(app.url("/api/v1/specialist/anonymous-reserve"))
        .json(&anonymous_booking(doctor, branch, &start, phone))
        .send()
        .await
        .expect("reserve");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    body["id"].as_i64().expect("record id")
}

async fn messages(app: &TestApp) -> Vec<OutboxMessage> {
    use diesel::{QueryDsl, SelectableHelper};
    use sovamed::db::schema::sms_outbox;
    let mut conn = app.db().await;
    sms_outbox::table
        .order(sms_outbox::id)
        .select(OutboxMessage::as_select())
        .load(&mut conn)
        .await
        .expect("outbox")
}

/// Waits until the only outbox row satisfies `check`; the row.
async fn wait_for_row(
    app: &TestApp,
    secs: u64,
    check: impl Fn(&OutboxMessage) -> bool,
) -> OutboxMessage {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let rows = messages(app).await;
        assert_eq!(rows.len(), 1, "one outbox row");
        if check(&rows[0]) || std::time::Instant::now() > deadline {
            return rows[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `sovamed sms ...` against the app's database, in-process: (success, output, error).
async fn sovamed_sms(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    use clap::Parser;
    let cli =
        sovamed::cli::Cli::try_parse_from(["sovamed", "sms"].iter().chain(args.iter()).copied())
            .expect("arguments");
    let sovamed::cli::Command::Sms(command) = cli.command else {
        panic!("an sms command");
    };
    match sovamed::cli::sms::execute(app.config.clone(), command).await {
        Ok(out) => (true, out, String::new()),
        Err(e) => (false, String::new(), format!("{e:#}")),
    }
}

async fn execute(app: &TestApp, sql: &str) -> usize {
    let mut conn = app.db().await;
    diesel::sql_query(sql)
        .execute(&mut conn)
        .await
        .expect("statement")
}

/// A staff member's view of a record: the API's `notification` and the staff page.
async fn staff_view(app: &TestApp, record: i64) -> (Value, String) {
    let email = "desk@example.ru";
    let password = "front desk passphrase";
    let mut conn = app.db().await;
    if sovamed::db::models::user::find_by_email(&mut conn, email)
        .await
        .expect("lookup")
        .is_none()
    {
        app.create_user(email, password, Role::Staff).await;
    }
    let token = app.api_token(email, password).await;
    let detail: Value = browser()
        .get(app.url(&format!("/api/v1/records/{record}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("record")
        .json()
        .await
        .expect("json");
    let staff = browser();
    app.log_in(&staff, email, password).await;
    let page = staff
        .get(app.url(&format!("/staff/records/{record}")))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    (
        detail["notification"].clone(),
        page.text().await.expect("body"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_that_takes_the_message_but_answers_late_gets_it_exactly_once() {
    let (mut app, emulators) = app_with(|config| {
        config.smsru_timeout = Duration::from_millis(500);
    })
    .await;
    emulators.control.set_sms_faults(SmsFaults {
        late_answer_ms: 1_500,
        ..SmsFaults::default()
    });
    let record = book(&app, "+79165550101").await;
    assert!(
        eventually(10, || emulators.control.sms_count() == 1).await,
        "the gateway took the message"
    );
    let row = wait_for_row(&app, 10, |m| m.status == "unknown").await;
    assert_eq!(row.status, "unknown", "{row:?}");
    assert!(
        row.last_error
            .as_deref()
            .is_some_and(|e| e.contains("did not answer")),
        "{row:?}"
    );
    assert_eq!(row.attempts, 1);
    assert_eq!(row.provider_id, None);

    // Well past the late answer and several retry periods: still one copy, even across a
    // restart with the gateway answering promptly again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(emulators.control.sms_count(), 1);
    emulators.control.set_sms_faults(SmsFaults::default());
    app.restart().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(emulators.control.sms_count(), 1, "never sent twice");
    assert_eq!(messages(&app).await[0].status, "unknown");

    let (notification, html) = staff_view(&app, record).await;
    assert_eq!(notification["status"], "unknown", "{notification}");
    assert!(
        html.contains("<td data-label=\"Доставка\">ошибка</td>"),
        "{html}"
    );
    assert!(html.contains("неизвестно, принял ли шлюз сообщение"));

    // The operator lists what is held (no phone, no text), finds it in the SMS.ru cabinet
    // and marks it sent (the runbook).
    let (ok, listed, _) = sovamed_sms(&app, &["held"]).await;
    assert!(ok);
    assert!(
        listed.starts_with(&format!(
            "{}\trecord {record}\tbooked\t+7916***0101",
            row.id
        )),
        "{listed}"
    );
    assert!(
        !listed.contains("79165550101") && !listed.contains("записаны"),
        "{listed}"
    );
    let sms_id = emulators.control.sms_messages()[0].sms_id.clone();
    let id = row.id.to_string();
    let (ok, _, err) = sovamed_sms(&app, &["mark-sent", &id, "--sms-id", &sms_id]).await;
    assert!(ok, "{err}");
    assert_eq!(
        app.count(&format!(
                "SELECT count(*) AS n FROM audit_events WHERE action = 'sms_marked_sent' AND subject = '{id}'"
            )
        )
        .await,
        1,
        "audited"
    );
    let (ok, _, err) = sovamed_sms(&app, &["resend", &id]).await;
    assert!(
        !ok && err.contains("not held"),
        "only a held message is moved: {err}"
    );
    let row = wait_for_row(&app, 10, |m| m.delivery.as_deref() == Some("delivered")).await;
    assert_eq!(row.delivery.as_deref(), Some("delivered"), "{row:?}");
    assert_eq!(emulators.control.sms_count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_left_sending_by_a_dead_worker_is_never_sent_twice() {
    let (app, emulators) = app_with(|_| {}).await;
    let record = book(&app, "+79165550102").await;
    assert!(
        eventually(10, || emulators.control.sms_count() == 1).await,
        "sent"
    );
    let sent = wait_for_row(&app, 10, |m| m.status == "sent").await;
    assert_eq!(sent.status, "sent");

    // SIGKILL after the gateway took it, before the answer was recorded.
    execute(
        &app,
        "UPDATE sms_outbox SET status = 'sending', provider_id = NULL, sent_at = NULL, \
         delivery = NULL, next_check_at = NULL, updated_at = now() - interval '10 minutes'",
    )
    .await;
    let held = wait_for_row(&app, 10, |m| m.status == "unknown").await;
    assert_eq!(held.status, "unknown", "{held:?}");
    assert!(
        held.last_error
            .as_deref()
            .is_some_and(|e| e.contains("stopped while sending"))
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        emulators.control.sms_count(),
        1,
        "the gateway already has it: not sent again"
    );

    // SIGKILL before the request went out: SMS.ru cannot be asked, so it is held as well,
    // and sent once when a person asks for it (the runbook).
    execute(
        &app,
        "UPDATE sms_outbox SET status = 'sending', updated_at = now() - interval '10 minutes'",
    )
    .await;
    let before = emulators.control.sms_count();
    wait_for_row(&app, 10, |m| m.status == "unknown").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(emulators.control.sms_count(), before);
    let (ok, _, err) = sovamed_sms(&app, &["resend", &held.id.to_string()]).await;
    assert!(ok, "{err}");
    let resent = wait_for_row(&app, 10, |m| m.status == "sent").await;
    assert_eq!(resent.status, "sent");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(emulators.control.sms_count(), before + 1, "sent once");
    let (notification, _) = staff_view(&app, record).await;
    assert_eq!(notification["status"], "sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn delivery_reports_reach_the_staff_page_and_the_api() {
    let (app, emulators) = app_with(|config| {
        config.sms_status_poll = Some(Duration::from_millis(200));
    })
    .await;
    emulators.control.set_sms_faults(SmsFaults {
        status_step_ms: Some(300),
        ..SmsFaults::default()
    });
    let record = book(&app, "+79165550103").await;
    let sent = wait_for_row(&app, 10, |m| m.status == "sent").await;
    assert_eq!(sent.delivery.as_deref(), Some("pending"), "{sent:?}");
    let (notification, html) = staff_view(&app, record).await;
    assert_eq!(notification["status"], "sent", "{notification}");
    if notification["delivery"] == "pending" {
        // The page is read after the API answer; the report may have come in between.
        assert!(
            html.contains("<td data-label=\"Доставка\">отправлено</td>")
                || html.contains("<td data-label=\"Доставка\">доставлено</td>"),
            "{html}"
        );
    }

    let row = wait_for_row(&app, 10, |m| m.delivery.as_deref() == Some("delivered")).await;
    assert_eq!(row.delivery.as_deref(), Some("delivered"), "{row:?}");
    assert_eq!(row.delivery_code, Some(103));
    assert!(row.delivered_at.is_some());
    assert_eq!(row.next_check_at, None, "no more checks once final");
    let (notification, html) = staff_view(&app, record).await;
    assert_eq!(
        notification["status"], "sent",
        "existing values keep working"
    );
    assert_eq!(notification["delivery"], "delivered");
    assert!(
        html.contains("<td data-label=\"Доставка\">доставлено</td>"),
        "{html}"
    );

    // The emulator's listing agrees.
    let listed: Value = browser()
        .get(format!(
            "{}/_emulator/messages",
            emulators.sms_url.clone().expect("SMS URL")
        ))
        .send()
        .await
        .expect("listing")
        .json()
        .await
        .expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["status_code"], 103);
    assert_eq!(
        listed[0]["sms_id"],
        row.provider_id.clone().expect("id").as_str()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_undelivered_message_shows_as_not_delivered() {
    let (app, emulators) = app_with(|config| {
        config.sms_status_poll = Some(Duration::from_millis(200));
    })
    .await;
    emulators.control.set_sms_faults(SmsFaults {
        status_step_ms: Some(100),
        undelivered_code: Some(104),
        ..SmsFaults::default()
    });
    let record = book(&app, "+79165550104").await;
    let row = wait_for_row(&app, 10, |m| m.delivery.as_deref() == Some("expired")).await;
    assert_eq!(row.delivery.as_deref(), Some("expired"), "{row:?}");
    assert_eq!(row.delivery_code, Some(104));
    let (notification, html) = staff_view(&app, record).await;
    assert_eq!(notification["delivery"], "expired");
    assert!(
        html.contains("<td data-label=\"Доставка\">не доставлено</td>"),
        "{html}"
    );
    assert_eq!(emulators.control.sms_count(), 1);
}

// ------------------------------------------------------------ a gateway that can be asked

/// SMS.ru's wire protocol, plus what SMS.ru lacks: a look-up by our reference (as SMSC's
/// `id` gives). It answers from the emulator's own record of what it received.
struct AskableGateway {
    inner: SmsRuClient,
    control: EmulatorControl,
}

#[async_trait]
impl SmsGateway for AskableGateway {
    fn name(&self) -> &'static str {
        "askable"
    }

    async fn send(&self, sms: &OutgoingSms) -> Result<Accepted, SmsError> {
        self.inner.send(sms).await
    }

    fn can_look_up(&self) -> bool {
        true
    }

    async fn lookup(&self, sms: &OutgoingSms) -> Result<Lookup, SmsError> {
        // Each test message has its own text, so the text stands for our reference here.
        Ok(self
            .control
            .sms_messages()
            .into_iter()
            .find(|m| m.text == sms.text)
            .map_or(Lookup::NotFound, |m| {
                Lookup::Found(Accepted {
                    provider_id: m.sms_id,
                })
            }))
    }
}

async fn askable_booking(emulators: &Emulators, timeout: Duration) -> (Booking, String) {
    let database_url = fresh_database().await;
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let config = test_config(&database_url, &prefix);
    let pool = db::build_pool(&database_url, 2).expect("pool");
    let redis = Redis::connect(&config.redis_url, &prefix).expect("redis");
    let (mis, _) = sovamed::integrations::booking_clients(&config);
    let inner = SmsRuClient::new(
        emulators.sms_url.clone().expect("SMS URL"),
        emulators.sms_api_id.clone(),
        None,
        timeout,
    )
    .expect("client");
    let booking = Booking {
        schedule: ScheduleCache::new(
            redis.clone(),
            pool.clone(),
            mis.clone(),
            config.schedule_cache_ttl,
        ),
        directory: sovamed::domain::directory_snapshot::Directory::new(pool.clone()),
        limits: ReserveLimits::new(redis.clone(), 100, 100),
        phones: crate::support::core::phone_checks(&pool, &redis, &Clock::system()),
        rules: sovamed::domain::booking::BookingRules::default(),
        db: pool,
        redis,
        mis,
        sms: Arc::new(AskableGateway {
            inner,
            control: emulators.control.clone(),
        }),
        clock: Clock::system(),
        outbox_wakeup: Arc::default(),
        sms_retry_base: Duration::from_millis(100),
    };
    (booking, database_url)
}

async fn queue(booking: &Booking, text: &str) -> i64 {
    let mut conn = booking.db.get().await.expect("conn");
    outbox::insert(
        &conn,
        &NewOutboxMessage {
            record_id: None,
            kind: "booked",
            phone: "+79165550199",
            body: text,
        },
    )
    .await
    .expect("insert");
    let rows: Vec<OutboxMessage> = {
        use diesel::{ExpressionMethods, QueryDsl, SelectableHelper};
        use sovamed::db::schema::sms_outbox;
        sms_outbox::table
            .filter(sms_outbox::body.eq(text))
            .select(OutboxMessage::as_select())
            .load(&mut conn)
            .await
            .expect("row")
    };
    rows[0].id
}

async fn row(booking: &Booking, id: i64) -> OutboxMessage {
    let mut conn = booking.db.get().await.expect("conn");
    outbox::find(&mut conn, id)
        .await
        .expect("find")
        .expect("row")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_askable_gateway_settles_unknown_messages_without_a_second_copy() {
    let emulators = sms_emulators().await;
    let (booking, _) = askable_booking(&emulators, Duration::from_millis(300)).await;
    let settings = OutboxSettings {
        retry_base: Duration::from_millis(100),
        lookup_grace: Duration::from_millis(1_500),
        status_poll: None,
        ..OutboxSettings::default()
    };

    // Taken, answered late: unknown, then found at the gateway after the grace period.
    emulators.control.set_sms_faults(SmsFaults {
        late_answer_ms: 800,
        ..SmsFaults::default()
    });
    let late = queue(&booking, "Сообщение 1: ответ опоздал").await;
    assert_eq!(drain(&booking, &settings).await.expect("round"), 0);
    assert_eq!(row(&booking, late).await.status, "unknown");
    assert_eq!(emulators.control.sms_count(), 1);
    emulators.control.set_sms_faults(SmsFaults::default());
    // Within the grace period it is not asked about (a request may still be landing).
    drain(&booking, &settings).await.expect("round");
    assert_eq!(row(&booking, late).await.status, "unknown");
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    drain(&booking, &settings).await.expect("round");
    let settled = row(&booking, late).await;
    assert_eq!(settled.status, "sent", "{settled:?}");
    assert_eq!(
        settled.provider_id.as_deref(),
        Some(emulators.control.sms_messages()[0].sms_id.as_str())
    );
    assert_eq!(emulators.control.sms_count(), 1, "found, not sent again");

    // A worker died before its request went out: the gateway does not have it, so it is
    // sent, once.
    let lost = queue(&booking, "Сообщение 2: не дошло до шлюза").await;
    let mut conn = booking.db.get().await.expect("conn");
    diesel::sql_query(format!(
        "UPDATE sms_outbox SET status = 'sending', attempts = 1, \
         updated_at = now() - interval '10 minutes' WHERE id = {lost}"
    ))
    .execute(&mut conn)
    .await
    .expect("crash");
    drop(conn);
    assert_eq!(drain(&booking, &settings).await.expect("round"), 1);
    let resent = row(&booking, lost).await;
    assert_eq!(resent.status, "sent", "{resent:?}");
    assert_eq!(resent.attempts, 2);
    assert_eq!(emulators.control.sms_count(), 2);

    // A worker died after the gateway took it: found, not sent again.
    let taken = queue(&booking, "Сообщение 3: шлюз принял").await;
    assert_eq!(drain(&booking, &settings).await.expect("round"), 1);
    assert_eq!(emulators.control.sms_count(), 3);
    let mut conn = booking.db.get().await.expect("conn");
    diesel::sql_query(format!(
        "UPDATE sms_outbox SET status = 'sending', provider_id = NULL, sent_at = NULL, \
         updated_at = now() - interval '10 minutes' WHERE id = {taken}"
    ))
    .execute(&mut conn)
    .await
    .expect("crash");
    drop(conn);
    assert_eq!(drain(&booking, &settings).await.expect("round"), 0);
    let found = row(&booking, taken).await;
    assert_eq!(found.status, "sent", "{found:?}");
    assert!(found.provider_id.is_some());
    for _ in 0..3 {
        drain(&booking, &settings).await.expect("round");
    }
    assert_eq!(
        emulators.control.sms_count(),
        3,
        "each message exactly once"
    );
}

// ------------------------------------------------------------ which failures are unknown

#[tokio::test(flavor = "multi_thread")]
async fn only_a_failed_connection_or_an_answer_proves_the_message_was_not_taken() {
    use crate::support::fixtures::{Fixture, Reply};
    let sms = OutgoingSms {
        to: "+79161234567".into(),
        text: "x".into(),
        client_ref: Some("1".into()),
    };
    let timeout = Duration::from_millis(500);
    let client = |url: String| SmsRuClient::new(url, "key", None, timeout).expect("client");

    // Nothing listens: the request never went out.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let err = client(format!("http://127.0.0.1:{port}"))
        .send(&sms)
        .await
        .expect_err("refused");
    assert!(matches!(err, SmsError::Transport(_)), "{err}");
    assert!(!err.outcome_unknown());

    // A proxy in front timed out or lost the upstream: SMS.ru may have taken it.
    for status in [502, 504] {
        let proxy = Fixture::start(Reply::new(status, "text/html", "upstream")).await;
        let err = client(proxy.url("")).send(&sms).await.expect_err("proxy");
        assert!(matches!(err, SmsError::Unanswered(_)), "{status}: {err}");
        assert!(err.outcome_unknown());
    }
    // SMS.ru itself said it failed: definite, retried.
    let down = Fixture::start(Reply::new(503, "text/html", "down")).await;
    let err = client(down.url("")).send(&sms).await.expect_err("down");
    assert_eq!(err, SmsError::Temporary { code: 503 });
    assert!(!err.outcome_unknown());
    // Accepted, but the answer is garbage: unknown.
    let garbled = Fixture::start(Reply::json(200, "{\"status\":\"OK\"")).await;
    let err = client(garbled.url(""))
        .send(&sms)
        .await
        .expect_err("garbled");
    assert!(err.outcome_unknown(), "{err}");
    // No answer in time: unknown.
    let slow = Fixture::start(Reply::json(200, "{}").delay(Duration::from_secs(2))).await;
    let err = client(slow.url("")).send(&sms).await.expect_err("slow");
    assert!(matches!(err, SmsError::Unanswered(_)), "{err}");
}
