//! The MIS and CMS clients over real HTTP: against the emulators (every message, every
//! kind, paging, pictures, fault switches) and against hand-written hostile fixtures
//! (entities, huge bodies, bad encodings, refusals, timeouts, redirects, retries).

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use serde_json::json;
use sovamed::{
    emulator::{self, CmsFaults, EmulatorConfig, Emulators, MisFaults},
    integrations::{
        bitrix::{Cms, CmsError, ContentKind, client::BitrixClient},
        infoclinica::{Mis, MisError, client::InfoclinicaClient},
    },
};

use crate::support::{
    browser,
    fixtures::{Fixture, Reply},
};

const TIMEOUT: Duration = Duration::from_secs(10);

async fn emulators() -> Emulators {
    emulator::spawn(EmulatorConfig::default())
        .await
        .expect("emulators start")
}

fn mis(url: &str) -> InfoclinicaClient {
    InfoclinicaClient::new(url, Some("demo.infoclinica.ru".into()), TIMEOUT).expect("MIS client")
}

fn cms(emulators: &Emulators) -> BitrixClient {
    BitrixClient::new(&emulators.cms_url, &emulators.cms_token, TIMEOUT).expect("CMS client")
}

/// Every page of `kind`, `limit` items at a time, in the order served.
async fn all_pages(client: &BitrixClient, kind: ContentKind, limit: u32) -> (Vec<i64>, u64) {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut total = None;
    for _ in 0..1000 {
        let page = client
            .page(kind, None, cursor.as_deref(), limit)
            .await
            .expect("page");
        assert!(page.items.len() <= limit as usize);
        assert!(page.server_now.is_some(), "time.server_now");
        total = total.or(page.total);
        seen.extend(page.items.iter().map(|i| i.id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return (seen, total.expect("total")),
        }
    }
    panic!("paging of {kind:?} did not end");
}

const ACK_OK_FILIALS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ACK xmlns="http://sdsys.ru/"><MSA><MSA.1>AA</MSA.1></MSA><GET_FILIAL_LIST_OUT>
<GETFILIALLIST><FILIAL>1</FILIAL><FNAME>Клиника</FNAME></GETFILIALLIST>
<SPRESULT>1</SPRESULT><SPCOMMENT>Данные по филиалам получены</SPCOMMENT></GET_FILIAL_LIST_OUT></ACK>"#;

// ---------------------------------------------------------------- against the emulators

#[tokio::test(flavor = "multi_thread")]
async fn mis_client_reads_every_message_from_the_emulator() {
    let emu = emulators().await;
    let world = emu.control.world();
    let client = mis(&emu.mis_url);

    let branches = client.branches().await.expect("branches");
    assert_eq!(branches.len(), 3);
    let ekb = branches.iter().find(|b| b.mis_id == 3).expect("branch 3");
    assert_eq!(ekb.utc_offset_hours, Some(5));
    assert!(ekb.address.contains("Малышева"));
    assert_eq!(ekb.work_hours, "пн–сб 8:00–19:00, вс — выходной");
    assert!(branches.iter().all(|b| b.phone.starts_with("+7(")));

    let departments = client.departments().await.expect("departments");
    assert_eq!(departments.len(), world.departments.len());
    assert!(departments.iter().any(|d| !d.visible));

    // Pages of 7 rows collect every row exactly once.
    let expected = world.doctor_rows();
    let mut rows = Vec::new();
    let mut first = 1;
    loop {
        let page = client
            .doctors_page(first, first + 6)
            .await
            .expect("doctor page");
        assert_eq!(page.total, Some(expected.len() as u32));
        if page.items.is_empty() {
            break;
        }
        rows.extend(page.items);
        first += 7;
    }
    assert_eq!(rows.len(), expected.len());
    let got: Vec<(i64, i64, i64)> = rows
        .iter()
        .map(|r| (r.doctor_mis_id, r.branch_mis_id, r.department_mis_id))
        .collect();
    let want: Vec<(i64, i64, i64)> = expected
        .iter()
        .map(|r| (r.doctor_mis_id, r.branch_mis_id, r.department_mis_id))
        .collect();
    assert_eq!(got, want);
    let distinct: BTreeSet<i64> = rows.iter().map(|r| r.doctor_mis_id).collect();
    assert_eq!(distinct.len(), world.doctors.len());
    assert!(
        rows.len() > distinct.len(),
        "some doctors work in two branches"
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r.visible)
            .map(|r| r.doctor_mis_id)
            .collect::<BTreeSet<_>>()
            .len(),
        world.visible_doctor_count()
    );
    let first_row = &rows[0];
    let doctor = world.doctor(first_row.doctor_mis_id).expect("doctor");
    assert_eq!(first_row.full_name, doctor.full_name);

    // Prices: every department, codes trimmed, kopecks exact.
    let mut prices = Vec::new();
    for department in &world.departments {
        prices.extend(client.prices(department.mis_id).await.expect("prices"));
    }
    assert_eq!(prices.len(), world.prices.len());
    let by_id: BTreeMap<i64, _> = world.prices.iter().map(|p| (p.mis_id, p)).collect();
    for price in &prices {
        let original = by_id.get(&price.mis_id).expect("known price");
        assert_eq!(price.code, original.code.trim());
        assert_eq!(price.price_kopecks, original.price_kopecks);
        assert_eq!(price.bookable, original.bookable);
        assert_eq!(price.department_mis_id, original.department_mis_id);
    }
    assert!(world.prices.iter().any(|p| p.code.starts_with(' ')));
    assert!(prices.iter().any(|p| !p.bookable));
    assert!(prices.iter().any(|p| p.price_kopecks % 100 != 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn mis_emulator_follows_world_edits() {
    let emu = emulators().await;
    let client = mis(&emu.mis_url);
    let world = emu.control.world();
    let doubled = world
        .doctors
        .iter()
        .find(|d| d.placements.len() == 2)
        .expect("a doctor in two branches");
    let renamed = world.doctors[0].mis_id;

    assert!(emu.control.remove_mis_doctor(doubled.mis_id));
    assert!(
        emu.control
            .rename_mis_doctor(renamed, "Новикова Вера Павловна")
    );
    let page = client.doctors_page(1, 500).await.expect("doctors");
    assert_eq!(
        page.items.len(),
        world.doctor_rows().len() - 2,
        "both rows of the removed doctor are gone"
    );
    assert!(page.items.iter().all(|r| r.doctor_mis_id != doubled.mis_id));
    assert!(
        page.items
            .iter()
            .any(|r| r.doctor_mis_id == renamed && r.full_name == "Новикова Вера Павловна")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cms_client_pages_every_kind_exactly_once() {
    let emu = emulators().await;
    let world = emu.control.world();
    let client = cms(&emu);
    for kind in ContentKind::ALL {
        let expected: BTreeSet<i64> = world.cms_items(kind).iter().map(|i| i.id).collect();
        assert!(!expected.is_empty(), "{kind:?} has items");
        let (seen, total) = all_pages(&client, kind, 7).await;
        let unique: BTreeSet<i64> = seen.iter().copied().collect();
        assert_eq!(seen.len(), unique.len(), "{kind:?}: no item twice");
        assert_eq!(unique, expected, "{kind:?}: every item");
        assert_eq!(total, expected.len() as u64);

        let ids = client.ids(kind).await.expect("ids");
        assert_eq!(ids, expected.iter().copied().collect::<Vec<_>>());
    }

    // modified_since keeps items changed at or after the instant.
    let reviews = world.cms_items(ContentKind::Reviews);
    let mut times: Vec<_> = reviews.iter().map(|r| r.modified_at).collect();
    times.sort();
    let since = times[times.len() / 2];
    let page = client
        .page(ContentKind::Reviews, Some(since), None, 200)
        .await
        .expect("page since");
    let want = reviews.iter().filter(|r| r.modified_at >= since).count() as u64;
    assert_eq!(page.total, Some(want));
    assert!(page.items.iter().all(|r| r.modified_at >= since));

    // The content carries what the sync needs.
    let doctors = world.cms_items(ContentKind::Doctors);
    let linked = world.linked_cms_doctors().len();
    assert!(linked * 10 >= world.doctors.len() * 8 && linked < doctors.len());
    assert!(reviews.iter().any(|r| !r.active));
    assert!(doctors.iter().any(|d| d.preview_picture.is_none()));
}

#[tokio::test(flavor = "multi_thread")]
async fn cms_edits_show_up_in_pages_and_ids() {
    let emu = emulators().await;
    let client = cms(&emu);
    let world = emu.control.world();
    let [first, second, third] = [0, 1, 2].map(|i| world.cms_items(ContentKind::Pages)[i].id);

    let before = client
        .page(ContentKind::Pages, None, None, 50)
        .await
        .expect("page");
    let watermark = before.server_now.expect("server_now");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(emu.control.touch_cms_item(ContentKind::Pages, first));
    assert!(emu.control.deactivate_cms_item(ContentKind::Pages, second));
    assert!(emu.control.delete_cms_item(ContentKind::Pages, third));

    let after = client
        .page(ContentKind::Pages, Some(watermark), None, 50)
        .await
        .expect("incremental page");
    let changed: BTreeSet<i64> = after.items.iter().map(|i| i.id).collect();
    assert_eq!(changed, BTreeSet::from([first, second]));
    assert!(after.items.iter().any(|i| i.id == second && !i.active));
    let ids = client.ids(ContentKind::Pages).await.expect("ids");
    assert!(!ids.contains(&third));
    assert_eq!(ids.len(), world.cms_items(ContentKind::Pages).len() - 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn cms_pictures_are_fetchable_by_absolute_url() {
    let emu = emulators().await;
    let client = cms(&emu);
    let page = client
        .page(ContentKind::Doctors, None, None, 200)
        .await
        .expect("doctors");
    let pictures: Vec<_> = page
        .items
        .iter()
        .filter_map(|d| d.preview_picture.clone())
        .collect();
    assert!(pictures.len() >= 10);
    let http = browser();
    for picture in pictures.iter().take(5) {
        let url = client.absolute_url(&picture.src);
        assert!(url.starts_with(&emu.cms_url), "{url}");
        let response = http.get(&url).send().await.expect("picture");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("image/png")
        );
        let bytes = response.bytes().await.expect("bytes");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(Some(bytes.len() as u64), picture.size);
    }
    let missing = http
        .get(client.absolute_url("/upload/iblock/000/nobody.png"))
        .send()
        .await
        .expect("missing picture");
    assert_eq!(missing.status(), 404);
    assert_eq!(
        client.absolute_url("https://cdn.example/a.png"),
        "https://cdn.example/a.png"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn keyset_paging_sees_every_item_while_items_change_between_pages() {
    let emu = emulators().await;
    let client = cms(&emu);
    let expected: BTreeSet<i64> = emu
        .control
        .world()
        .cms_items(ContentKind::Reviews)
        .iter()
        .map(|i| i.id)
        .collect();
    emu.control.set_cms_faults(CmsFaults {
        mutate_between_pages: true,
        ..CmsFaults::default()
    });
    let (seen, _) = all_pages(&client, ContentKind::Reviews, 7).await;
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique, expected, "no item skipped");
    assert!(
        seen.len() > unique.len(),
        "the switch moved served items behind the cursor, so some came twice"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn emulator_fault_switches_work_over_http() {
    let emu = emulators().await;
    let http = browser();
    let mis_faults = emu.mis_url.replace("/api/xml", "/_emulator/faults");
    let cms_faults = format!("{}/_emulator/faults", emu.cms_url);
    let set = |url: String, body: serde_json::Value| {
        let http = http.clone();
        async move {
            let response = http.post(url).json(&body).send().await.expect("faults");
            assert_eq!(response.status(), 200);
        }
    };
    let client = mis(&emu.mis_url).with_backoff(vec![]);
    let cms_client = cms(&emu);

    set(mis_faults.clone(), json!({ "http_500": true })).await;
    assert!(emu.control.mis_faults().http_500);
    assert!(matches!(
        client.branches().await,
        Err(MisError::Http { status: 500, .. })
    ));
    set(mis_faults.clone(), json!({ "malformed": true })).await;
    assert!(matches!(
        client.branches().await,
        Err(MisError::Malformed(_))
    ));
    set(mis_faults.clone(), json!({ "unauthorized": true })).await;
    assert!(matches!(
        client.branches().await,
        Err(MisError::Http { status: 401, .. })
    ));
    set(mis_faults.clone(), json!({ "latency_ms": 1500 })).await;
    let quick = InfoclinicaClient::new(&emu.mis_url, None, Duration::from_secs(1))
        .expect("client")
        .with_backoff(vec![]);
    assert!(matches!(quick.branches().await, Err(MisError::Timeout(_))));
    // Well-formed answers a sync must not trust: an empty list, a short page, an answer to
    // another message type.
    set(
        mis_faults.clone(),
        json!({ "empty_lists": ["GET_FILIAL_LIST", "GET_DOCTOR_LIST"] }),
    )
    .await;
    assert!(client.branches().await.expect("an empty list").is_empty());
    let page = client.doctors_page(1, 100).await.expect("an empty page");
    assert_eq!((page.items.len(), page.total), (0, Some(0)));
    assert!(!client.departments().await.expect("not emptied").is_empty());
    set(mis_faults.clone(), json!({ "short_pages": 10 })).await;
    let page = client.doctors_page(1, 100).await.expect("a short page");
    let rows = emu.control.world().doctor_rows().len();
    assert_eq!((page.items.len(), page.total), (10, Some(rows as u32)));
    set(mis_faults.clone(), json!({ "wrong_message_type": true })).await;
    assert!(matches!(
        client.doctors_page(1, 100).await,
        Err(MisError::Malformed(m)) if m == "answer is for message type GET_FILIAL_LIST, not GET_DOCTOR_LIST"
    ));
    assert!(matches!(
        client.branches().await,
        Err(MisError::Malformed(m)) if m.contains("GET_DEPARTMENT_LIST")
    ));
    set(mis_faults, json!({})).await;
    assert_eq!(emu.control.mis_faults(), MisFaults::default());
    assert_eq!(client.branches().await.expect("healthy again").len(), 3);

    set(cms_faults.clone(), json!({ "unauthorized": true })).await;
    assert!(matches!(
        cms_client.ids(ContentKind::Doctors).await,
        Err(CmsError::Api { status: 401, code, .. }) if code == "INVALID_CREDENTIALS"
    ));
    set(cms_faults.clone(), json!({ "http_500": true })).await;
    assert!(matches!(
        cms_client.page(ContentKind::Doctors, None, None, 5).await,
        Err(CmsError::Api { status: 500, code, description }) if code == "HTTP_500" && description.contains("Fatal error")
    ));
    set(cms_faults.clone(), json!({ "malformed": true })).await;
    assert!(matches!(
        cms_client.page(ContentKind::Doctors, None, None, 5).await,
        Err(CmsError::Malformed(_))
    ));
    set(cms_faults.clone(), json!({ "mutate_between_pages": true })).await;
    assert!(emu.control.cms_faults().mutate_between_pages);
    let refused = http
        .post(&cms_faults)
        .json(&json!({ "no_such_switch": true }))
        .send()
        .await
        .expect("bad faults");
    assert!(refused.status().is_client_error());
    set(cms_faults, json!({})).await;
    assert_eq!(
        cms_client
            .page(ContentKind::Pages, None, None, 50)
            .await
            .expect("healthy again")
            .items
            .len(),
        5
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cms_emulator_answers_bitrix_style_errors() {
    let emu = emulators().await;
    let wrong = BitrixClient::new(&emu.cms_url, "wrong-token", TIMEOUT).expect("client");
    assert!(matches!(
        wrong.page(ContentKind::Doctors, None, None, 5).await,
        Err(CmsError::Api { status: 401, code, .. }) if code == "INVALID_CREDENTIALS"
    ));
    let client = cms(&emu);
    assert!(matches!(
        client.page(ContentKind::Doctors, None, None, 500).await,
        Err(CmsError::Api { status: 400, code, .. }) if code == "ERROR_BAD_FILTER"
    ));
    assert!(matches!(
        client.page(ContentKind::Doctors, None, Some("yesterday"), 5).await,
        Err(CmsError::Api { status: 400, code, .. }) if code == "ERROR_BAD_FILTER"
    ));
    let http = browser();
    let unknown = http
        .get(format!("{}/api/v1/content/news", emu.cms_url))
        .bearer_auth(&emu.cms_token)
        .send()
        .await
        .expect("unknown kind");
    assert_eq!(unknown.status(), 404);
    let body: serde_json::Value = unknown.json().await.expect("json");
    assert_eq!(body["error"], "ERROR_KIND_NOT_FOUND");
    let bad_since = http
        .get(format!(
            "{}/api/v1/content/doctors?modified_since=2025-13-01",
            emu.cms_url
        ))
        .bearer_auth(&emu.cms_token)
        .send()
        .await
        .expect("bad since");
    assert_eq!(bad_since.status(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn mis_emulator_refuses_dtds_and_non_xml_and_unknown_messages() {
    let emu = emulators().await;
    let http = browser();
    let dtd = http
        .post(&emu.mis_url)
        .body(r#"<!DOCTYPE WEB_GET_FILIAL_LIST [<!ENTITY x SYSTEM "file:///etc/passwd">]><WEB_GET_FILIAL_LIST>&x;</WEB_GET_FILIAL_LIST>"#)
        .send()
        .await
        .expect("dtd");
    assert_eq!(dtd.status(), 400);
    assert!(dtd.text().await.expect("text").contains("DTD"));
    let not_xml = http
        .post(&emu.mis_url)
        .body("{\"op\":\"GET_FILIAL_LIST\"}")
        .send()
        .await
        .expect("json body");
    assert_eq!(not_xml.status(), 400);

    let unknown = InfoclinicaClient::new(&emu.mis_url, None, TIMEOUT)
        .expect("client")
        .call(
            "QUEUE_LIST",
            Some(1),
            sovamed::integrations::infoclinica::messages::Idempotency::ReadOnly,
            |_| {},
        )
        .await;
    assert!(matches!(
        unknown,
        Err(MisError::Refused { code, message }) if code == "AE" && message.contains("QUEUE_LIST")
    ));
    let incomplete = InfoclinicaClient::new(&emu.mis_url, None, TIMEOUT)
        .expect("client")
        .call(
            "SCHEDULE_REC_RESERVE",
            Some(1),
            sovamed::integrations::infoclinica::messages::Idempotency::Mutating,
            |_| {},
        )
        .await;
    assert!(matches!(
        incomplete,
        Err(MisError::Refused { code, message }) if code == "AE" && message.contains("SCHEDULE_REC_RESERVE_IN/DCODE")
    ));
    let response = http
        .post(&emu.mis_url)
        .body("<WEB_GET_FILIAL_LIST xmlns=\"http://sdsys.ru/\"><MSH><MSH.9><MSG.2>GET_FILIAL_LIST</MSG.2></MSH.9></MSH></WEB_GET_FILIAL_LIST>")
        .send()
        .await
        .expect("ok");
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/xml; charset=utf-8")
    );
    let text = response.text().await.expect("text");
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    assert!(text.contains("<SPCOMMENT>Данные по филиалам получены</SPCOMMENT>"));
}

// ---------------------------------------------------------------- against fixtures

#[tokio::test(flavor = "multi_thread")]
async fn mis_requests_carry_the_envelope_and_headers() {
    let fixture = Fixture::start(Reply::xml(ACK_OK_FILIALS)).await;
    let branches = mis(&fixture.url("/api/xml"))
        .branches()
        .await
        .expect("branches");
    assert_eq!(branches.len(), 1);
    assert!(branches[0].visible, "absent VIEWINWEB_OUT reads as visible");
    assert_eq!(branches[0].work_hours, "", "absent WORKHOURS reads as none");
    let request = fixture.received().pop().expect("one request");
    let lower = request.to_ascii_lowercase();
    assert!(lower.starts_with("post /api/xml "));
    assert!(lower.contains("content-type: text/xml; charset=utf-8"));
    assert!(lower.contains("x-forwarded-host: demo.infoclinica.ru"));
    let body = &request[request.find("\r\n\r\n").expect("head end") + 4..];
    assert!(body.contains("<WEB_GET_FILIAL_LIST xmlns=\"http://sdsys.ru/\">"));
    assert!(body.contains("<MSG.1>WEB</MSG.1><MSG.2>GET_FILIAL_LIST</MSG.2>"));
    assert!(body.contains("<MSH.18>UTF-8</MSH.18>"));
    assert!(body.contains("<FILLIST>-1</FILLIST><VIEWINWEB>-1</VIEWINWEB>"));
    let control_id = body
        .split("<MSH.10>")
        .nth(1)
        .and_then(|s| s.split("</MSH.10>").next())
        .expect("MSH.10");
    assert_eq!(control_id.len(), 32);
    assert!(control_id.chars().all(|c| c.is_ascii_hexdigit()));
    let ts = body
        .split("<TS.1>")
        .nth(1)
        .and_then(|s| s.split("</TS.1>").next())
        .expect("TS.1");
    assert_eq!(ts.len(), 14);
}

#[tokio::test(flavor = "multi_thread")]
async fn mis_refuses_an_external_entity_without_reading_the_file() {
    let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE ACK [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ACK xmlns="http://sdsys.ru/"><MSA><MSA.1>AA</MSA.1></MSA><GET_FILIAL_LIST_OUT>
<GETFILIALLIST><FILIAL>1</FILIAL><FNAME>&xxe;</FNAME></GETFILIALLIST>
<SPRESULT>1</SPRESULT></GET_FILIAL_LIST_OUT></ACK>"#;
    let fixture = Fixture::start(Reply::xml(body)).await;
    let err = mis(&fixture.url("/api/xml"))
        .branches()
        .await
        .expect_err("DTD refused");
    assert!(
        matches!(&err, MisError::Malformed(m) if m.contains("DTD not allowed")),
        "{err}"
    );
    assert!(!err.to_string().contains("root:"));
    assert!(!format!("{err:?}").contains("root:"));
}

#[tokio::test(flavor = "multi_thread")]
async fn mis_refuses_billion_laughs_quickly() {
    let mut body =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
    body.push_str("<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n");
    for i in 2..=9 {
        let prev = format!("&lol{};", i - 1);
        body.push_str(&format!("<!ENTITY lol{i} \"{}\">\n", prev.repeat(10)));
    }
    body.push_str("]>\n<ACK><MSA><MSA.1>AA</MSA.1></MSA><GET_FILIAL_LIST_OUT><GETFILIALLIST><FILIAL>1</FILIAL><FNAME>&lol9;</FNAME></GETFILIALLIST><SPRESULT>1</SPRESULT></GET_FILIAL_LIST_OUT></ACK>");
    let fixture = Fixture::start(Reply::xml(body)).await;
    let started = Instant::now();
    let err = mis(&fixture.url("/api/xml"))
        .branches()
        .await
        .expect_err("refused");
    assert!(matches!(err, MisError::Malformed(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn mis_stops_reading_a_huge_body_at_the_cap() {
    const FIFTY_MB: usize = 50 * 1024 * 1024;
    let fixture = Fixture::start(Reply::streamed("text/xml", FIFTY_MB)).await;
    let err = mis(&fixture.url("/api/xml"))
        .with_backoff(vec![])
        .branches()
        .await
        .expect_err("too large");
    assert!(
        matches!(err, MisError::TooLarge { limit } if limit == 16 * 1024 * 1024),
        "{err}"
    );
    assert!(fixture.wait_finished(Duration::from_secs(10)).await);
    assert!(
        fixture.sent() < FIFTY_MB,
        "the client hung up before the end ({} bytes sent)",
        fixture.sent()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mis_refuses_invalid_utf8() {
    let mut body = ACK_OK_FILIALS.as_bytes().to_vec();
    let at = ACK_OK_FILIALS.find("Клиника").expect("name");
    body[at] = 0xFF;
    let fixture = Fixture::start(Reply::xml(body)).await;
    let err = mis(&fixture.url("/api/xml"))
        .branches()
        .await
        .expect_err("bad UTF-8");
    assert!(
        matches!(&err, MisError::Malformed(m) if m.contains("UTF-8")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mis_names_a_missing_doctor_field() {
    let body = r#"<ACK xmlns="http://sdsys.ru/"><MSA><MSA.1>AA</MSA.1></MSA><GET_DOCTOR_LIST_OUT>
<GETDOCTORLIST><DNAME>Смирнова Ольга Петровна</DNAME><DEPNUM>40000012</DEPNUM><FILIAL>2</FILIAL></GETDOCTORLIST>
<SPRESULT>1</SPRESULT><SPCOMMENT>Данные по врачам получены</SPCOMMENT></GET_DOCTOR_LIST_OUT></ACK>"#;
    let fixture = Fixture::start(Reply::xml(body)).await;
    let err = mis(&fixture.url("/api/xml"))
        .doctors_page(1, 100)
        .await
        .expect_err("no DCODE");
    assert!(
        matches!(&err, MisError::Malformed(m) if m.contains("DCODE")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mis_business_failure_keeps_the_mis_texts() {
    let body = r#"<ACK xmlns="http://sdsys.ru/"><MSA><MSA.1>AA</MSA.1></MSA><PRICE_LIST_OUT>
<CHECKDATA><CHECKCODE>2</CHECKCODE><CHECKLABEL>Прейскурант</CHECKLABEL><CHECKTEXT>Прейскурант отделения закрыт</CHECKTEXT></CHECKDATA>
<SPRESULT>0</SPRESULT><SPCOMMENT>Данные по ценам не получены</SPCOMMENT></PRICE_LIST_OUT></ACK>"#;
    let fixture = Fixture::start(Reply::xml(body)).await;
    let err = mis(&fixture.url("/api/xml"))
        .prices(40000012)
        .await
        .expect_err("failed");
    match err {
        MisError::Failed {
            spresult,
            comment,
            checks,
        } => {
            assert_eq!(spresult, 0);
            assert_eq!(comment, "Данные по ценам не получены");
            assert_eq!(checks.len(), 1);
            assert_eq!(checks[0].code, 2);
            assert_eq!(checks[0].text, "Прейскурант отделения закрыт");
        }
        other => panic!("expected Failed, got {other}"),
    }
    assert_eq!(fixture.requests(), 1, "a business failure is not retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn mis_envelope_refusal_is_refused() {
    let body = r#"<ACK xmlns="http://sdsys.ru/"><MSA><MSA.1>AE</MSA.1><MSA.3>Неизвестный тип сообщения</MSA.3></MSA></ACK>"#;
    let fixture = Fixture::start(Reply::xml(body)).await;
    let err = mis(&fixture.url("/api/xml"))
        .branches()
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, MisError::Refused { code, message } if code == "AE" && message == "Неизвестный тип сообщения"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mis_gives_up_on_a_slow_server() {
    let fixture = Fixture::start(Reply::xml(ACK_OK_FILIALS).delay(Duration::from_secs(30))).await;
    let client = InfoclinicaClient::new(fixture.url("/api/xml"), None, Duration::from_secs(1))
        .expect("client");
    let started = Instant::now();
    let err = client.branches().await.expect_err("timeout");
    assert!(
        matches!(err, MisError::Timeout(d) if d == Duration::from_secs(1)),
        "{err}"
    );
    // Three attempts of 1 s and two pauses.
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fixture.requests(), 3, "a read-only message is retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn mis_does_not_follow_a_redirect() {
    let elsewhere = Fixture::start(Reply::xml(ACK_OK_FILIALS)).await;
    let redirecting = Fixture::start(
        Reply::new(302, "text/html", "moved").header("Location", &elsewhere.url("/api/xml")),
    )
    .await;
    let err = mis(&redirecting.url("/api/xml"))
        .branches()
        .await
        .expect_err("redirect");
    assert!(
        matches!(&err, MisError::Redirect { location } if *location == elsewhere.url("/api/xml")),
        "{err}"
    );
    assert_eq!(redirecting.requests(), 1);
    assert_eq!(elsewhere.requests(), 0, "the other host saw nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn mis_retries_a_server_error_then_reports_it() {
    let fixture = Fixture::start(Reply::new(
        500,
        "text/html",
        format!(
            "<html><body>{}</body></html>",
            "Internal Server Error ".repeat(50)
        ),
    ))
    .await;
    let err = mis(&fixture.url("/api/xml"))
        .branches()
        .await
        .expect_err("500");
    match &err {
        MisError::Http { status, body } => {
            assert_eq!(*status, 500);
            assert!(body.contains("Internal Server Error"));
            assert!(body.chars().count() <= 200);
        }
        other => panic!("expected Http, got {other}"),
    }
    assert_eq!(fixture.requests(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn mis_mutating_messages_are_never_retried() {
    let fixture = Fixture::start(Reply::new(503, "text/plain", "busy")).await;
    let err = mis(&fixture.url("/api/xml"))
        .call(
            "SCHEDULE_REC_RESERVE",
            Some(1),
            sovamed::integrations::infoclinica::messages::Idempotency::Mutating,
            |w| {
                w.leaf("DCODE", 10000001);
            },
        )
        .await
        .expect_err("503");
    assert!(matches!(err, MisError::Http { status: 503, .. }));
    assert_eq!(fixture.requests(), 1);
    let request = fixture.received().pop().expect("request");
    assert!(request.contains("<MSH.99>1</MSH.99>"));
}

#[tokio::test(flavor = "multi_thread")]
async fn cms_maps_error_envelopes_and_html_pages() {
    let unauthorized = Fixture::start(Reply::json(
        401,
        r#"{"error":"INVALID_CREDENTIALS","error_description":"bad token"}"#,
    ))
    .await;
    let client = BitrixClient::new(unauthorized.url(""), "t", TIMEOUT).expect("client");
    assert!(matches!(
        client.page(ContentKind::Doctors, None, None, 50).await,
        Err(CmsError::Api { status: 401, code, description }) if code == "INVALID_CREDENTIALS" && description == "bad token"
    ));
    let request = unauthorized.received().pop().expect("request");
    assert!(request.starts_with("GET /api/v1/content/doctors?limit=50&include_inactive=1 "));
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: bearer t\r\n")
    );

    let fatal = Fixture::start(Reply::new(
        500,
        "text/html",
        "<br />\n<b>Fatal error</b>: Uncaught Error: Call to undefined method in /home/bitrix/www/local/api.php",
    ))
    .await;
    let client = BitrixClient::new(fatal.url(""), "t", TIMEOUT).expect("client");
    assert!(matches!(
        client.ids(ContentKind::Reviews).await,
        Err(CmsError::Api { status: 500, code, description }) if code == "HTTP_500" && description.contains("Fatal error")
    ));

    let broken = Fixture::start(Reply::json(200, r#"{"result":{"items":[{"id":1,"#)).await;
    let client = BitrixClient::new(broken.url(""), "t", TIMEOUT).expect("client");
    assert!(matches!(
        client.page(ContentKind::Pages, None, None, 50).await,
        Err(CmsError::Malformed(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn cms_transport_rules_match_the_mis_ones() {
    let elsewhere = Fixture::start(Reply::json(200, r#"{"result":{"ids":[]},"total":0}"#)).await;
    let redirecting = Fixture::start(
        Reply::new(301, "text/html", "")
            .header("Location", &elsewhere.url("/api/v1/content/doctors/ids")),
    )
    .await;
    let client = BitrixClient::new(redirecting.url(""), "t", TIMEOUT).expect("client");
    assert!(matches!(
        client.ids(ContentKind::Doctors).await,
        Err(CmsError::Redirect { .. })
    ));
    assert_eq!(elsewhere.requests(), 0);

    let huge = Fixture::start(Reply::streamed("application/json", 50 * 1024 * 1024)).await;
    let client = BitrixClient::new(huge.url(""), "t", TIMEOUT).expect("client");
    assert!(matches!(
        client.page(ContentKind::Doctors, None, None, 50).await,
        Err(CmsError::TooLarge { .. })
    ));

    let slow = Fixture::start(
        Reply::json(200, r#"{"result":{"ids":[]},"total":0}"#).delay(Duration::from_secs(30)),
    )
    .await;
    let client = BitrixClient::new(slow.url(""), "t", Duration::from_secs(1)).expect("client");
    let started = Instant::now();
    assert!(matches!(
        client.ids(ContentKind::Doctors).await,
        Err(CmsError::Timeout(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(3));
}
