//! SIGKILL of the server in a burst of bookings: after a restart and the reconciler, the MIS
//! and the database agree. The server runs as its own process (`sovamed serve`), the MIS
//! emulator in this one.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use reqwest::StatusCode;
use serde_json::Value;
use sovamed::emulator::{EmulatorConfig, MisFaults};

use crate::support::{
    anonymous_booking, browser, core::sync_mis_directories, count_rows, fresh_database, test_config,
};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Server {
    child: Child,
    base: String,
}

fn start_server(database_url: &str, prefix: &str, mis_url: &str, port: u16) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_sovamed"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("APP_ENV", "development")
        .env("DATABASE_URL", database_url)
        .env("REDIS_PREFIX", prefix)
        .env("INFOCLINICA_URL", mis_url)
        .env("INFOCLINICA_TIMEOUT_SECONDS", "5")
        .env("SMS_PROVIDER", "log")
        .env("ANONYMOUS_BOOKING_VERIFY", "off")
        .env("SYNC_INTERVAL_MINUTES", "0")
        .env("RESERVE_LIMIT_PER_IP_HOUR", "1000")
        .env("RESERVE_LIMIT_PER_PHONE_HOUR", "1000")
        .env("RECONCILE_INTERVAL_SECONDS", "1")
        // Longer than a booking takes even on a loaded machine, so the reconciler never races
        // a live request (the production default is 120 s).
        .env("INTENT_STALE_SECONDS", "8")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sovamed serve starts");
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

async fn wait_ready(server: &Server) {
    for _ in 0..100 {
        let ready = browser()
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK);
        if ready {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not become ready");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_in_a_burst_of_bookings_leaves_the_mis_and_the_records_agreeing() {
    let emulators = sovamed::emulator::spawn(EmulatorConfig {
        seed: 42,
        scale: 1,
        mis_bind: "127.0.0.1:0".parse().expect("addr"),
        cms_bind: "127.0.0.1:0".parse().expect("addr"),
        sms_bind: None,
        cms_token: "test-cms-token".into(),
    })
    .await
    .expect("emulators");
    let database_url = fresh_database().await;
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let mut config = test_config(&database_url, &prefix);
    config.infoclinica_url = Some(emulators.mis_url.clone());
    config.bitrix_url = Some(emulators.cms_url.clone());
    config.bitrix_token = Some(emulators.cms_token.clone());
    sync_mis_directories(&config).await;

    let port = free_port();
    let mut server = start_server(&database_url, &prefix, &emulators.mis_url, port);
    wait_ready(&server).await;
    let client = browser();
    let (doctor, branch, starts) = {
        let branches: Value = client
            .get(format!("{}/api/v1/branches", server.base))
            .send()
            .await
            .expect("branches")
            .json()
            .await
            .expect("json");
        let branch = branches["items"][0]["id"].as_i64().expect("branch");
        let doctors: Value = client
            .get(format!(
                "{}/api/v1/specialists?branch_id={branch}",
                server.base
            ))
            .send()
            .await
            .expect("doctors")
            .json()
            .await
            .expect("json");
        let doctor = doctors["items"][0]["id"].as_i64().expect("doctor");
        let today = chrono::Utc::now().date_naive();
        let to = today + chrono::Duration::days(27);
        let schedule: Value = client
            .get(format!(
                "{}/api/v1/specialist/schedule?specialist_id={doctor}&branch_id={branch}&date_from={today}&date_to={to}",
                server.base
            ))
            .send()
            .await
            .expect("schedule")
            .json()
            .await
            .expect("json");
        let starts: Vec<String> = schedule["days"]
            .as_array()
            .expect("days")
            .iter()
            .flat_map(|d| d["slots"].as_array().cloned().unwrap_or_default())
            .filter(|s| s["free"] == true)
            .filter_map(|s| s["start"].as_str().map(str::to_owned))
            .take(50)
            .collect();
        (doctor, branch, starts)
    };
    assert_eq!(starts.len(), 50, "fifty free slots");
    let before = emulators.control.appointment_count();
    // Each reserve takes a while in the MIS, so the kill lands while many are in flight:
    // some not yet booked there, some booked there and not yet here.
    emulators.control.set_mis_faults(MisFaults {
        reserve_latency_ms: 300,
        ..MisFaults::default()
    });

    // Watched on one kept connection, made before the burst: a connection made on a machine
    // loaded by other tests (browsers among them) lagged past the whole burst.
    let mut watch = AsyncPgConnection::establish(&database_url)
        .await
        .expect("connect to the test database");
    // A first wave of ten; the other forty leave once eight records are written, so that the
    // kill finds them in flight however slow the machine is.
    const FIRST_WAVE: usize = 10;
    let (go, gate) = tokio::sync::watch::channel(false);
    let mut burst = tokio::task::JoinSet::new();
    for (n, start) in starts.iter().enumerate() {
        let url = format!("{}/api/v1/specialist/anonymous-reserve", server.base);
        let body = anonymous_booking(doctor, branch, start, &format!("+7916777{n:04}"));
        let mut gate = gate.clone();
        burst.spawn(async move {
            if n < FIRST_WAVE {
                tokio::time::sleep(Duration::from_millis(20 * n as u64)).await;
            } else {
                let _ = gate.wait_for(|open| *open).await;
                tokio::time::sleep(Duration::from_millis(10 * (n - FIRST_WAVE) as u64)).await;
            }
            let response = browser().post(url).json(&body).send().await;
            match response {
                Ok(r) if r.status() == StatusCode::CREATED => {
                    let answer: Value = r.json().await.unwrap_or(Value::Null);
                    answer["id"].as_i64()
                }
                // Refused, or cut off by the kill: no confirmation.
                Ok(_) | Err(_) => None,
            }
        });
    }
    for _ in 0..1000 {
        let records: i64 =
            diesel::dsl::sql::<diesel::sql_types::BigInt>("SELECT count(*) FROM records")
                .get_result(&mut watch)
                .await
                .expect("count");
        if records >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let reserves = emulators.control.mis_calls("SCHEDULE_REC_RESERVE");
    let _ = go.send(true);
    // Killed once five of the second wave have reached the MIS's reserve, which answers none
    // of them for 300 ms.
    for _ in 0..1000 {
        if emulators.control.mis_calls("SCHEDULE_REC_RESERVE") >= reserves + 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    drop(watch);
    server.child.kill().expect("SIGKILL");
    let _ = server.child.wait();
    let mut confirmed = Vec::new();
    while let Some(joined) = burst.join_next().await {
        if let Some(id) = joined.expect("join") {
            confirmed.push(id);
        }
    }
    // Let reserves the MIS was still working on land, as they would in a real MIS.
    tokio::time::sleep(Duration::from_millis(500)).await;
    emulators.control.set_mis_faults(MisFaults::default());
    let in_mis_at_kill = emulators.control.appointment_count() - before;
    let local_at_kill = count_rows(
        &database_url,
        "SELECT count(*) AS n FROM records WHERE status = 'booked'",
    )
    .await;
    let failed_at_kill = count_rows(
        &database_url,
        "SELECT count(*) AS n FROM booking_intents WHERE state = 'failed'",
    )
    .await;
    let intents_at_kill =
        count_rows(&database_url, "SELECT count(*) AS n FROM booking_intents").await;
    let pending_at_kill = count_rows(
        &database_url,
        "SELECT count(*) AS n FROM booking_intents WHERE state = 'pending'",
    )
    .await;

    // Restart; the reconciler settles what the kill interrupted.
    let server = start_server(&database_url, &prefix, &emulators.mis_url, port);
    wait_ready(&server).await;
    let mut settled = false;
    for _ in 0..250 {
        if count_rows(
            &database_url,
            "SELECT count(*) AS n FROM booking_intents WHERE state = 'pending'",
        )
        .await
            == 0
        {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut server = server;
    let in_mis = emulators.control.appointment_count() - before;
    let local = count_rows(
        &database_url,
        "SELECT count(*) AS n FROM records WHERE status = 'booked'",
    )
    .await;
    let sms = count_rows(
        &database_url,
        "SELECT count(*) AS n FROM sms_outbox WHERE kind = 'booked'",
    )
    .await;
    let records_without_one_sms = count_rows(
        &database_url,
        "SELECT count(*) AS n FROM records r WHERE (SELECT count(*) FROM sms_outbox o WHERE o.record_id = r.id AND o.kind = 'booked') <> 1",
    )
    .await;
    let missing_confirmed = {
        let ids = confirmed
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        if ids.is_empty() {
            0
        } else {
            confirmed.len() as i64
                - count_rows(
                    &database_url,
                    &format!("SELECT count(*) AS n FROM records WHERE id IN ({ids}) AND status = 'booked'"),
                )
                .await
        }
    };
    let _ = server.child.kill();
    let _ = server.child.wait();
    println!(
        "SIGKILL burst of 50: confirmed {} | at the kill: MIS {in_mis_at_kill}, local {local_at_kill}, intents {intents_at_kill} (pending {pending_at_kill}, failed {failed_at_kill}) | after the reconciler: MIS {in_mis}, local {local}, SMS {sms}",
        confirmed.len()
    );
    assert!(settled, "no intent left pending");
    assert!(
        in_mis_at_kill as i64 > local_at_kill,
        "the kill landed mid-burst: some bookings were in the MIS only"
    );
    assert_eq!(in_mis as i64, local, "the MIS and the records agree");
    assert_eq!(missing_confirmed, 0, "every 201 has its record");
    assert_eq!(records_without_one_sms, 0, "one SMS per record");
    assert_eq!(sms, local);
}
