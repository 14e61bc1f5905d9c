//! The front desk: a staff member finds a caller, books, moves and marks the visit through
//! the pages, against the MIS and SMS emulators; the searches, the refusals and the roles.

use chrono::{DateTime, Duration, Utc};
use reqwest::{Client, StatusCode};
use sovamed::{db::models::user::Role, domain::clock::Clock};

use crate::support::{
    TestApp, browser, doctor_in, eventually, free_starts, location, page, post, sync_directories,
    with_emulators_and,
};

const PASSWORD: &str = "front desk passphrase";
const CALLER_PHONE: &str = "+79035551234";

/// An app on a fixed clock (so a visit's start can be reached), its directories synced.
async fn desk_app() -> (TestApp, sovamed::emulator::Emulators) {
    let (app, emulators) = with_emulators_and(|config| {
        config.clock = Clock::fixed(Utc::now());
    })
    .await;
    sync_directories(&app).await;
    (app, emulators)
}

/// Ольга Смирнова, a patient with a cabinet account and the caller's phone.
async fn olga(app: &TestApp) -> i64 {
    let user = app
        .create_user("olga@example.ru", PASSWORD, Role::Patient)
        .await;
    app.count(&format!(
        "WITH u AS (UPDATE users SET full_name = 'Смирнова Ольга Петровна', phone = '{CALLER_PHONE}', \
         birth_date = '1979-04-05' WHERE id = {} RETURNING 1) SELECT count(*) AS n FROM u",
        user.id
    ))
    .await;
    user.id
}

async fn logged_in(app: &TestApp, email: &str, role: Role) -> (Client, i64) {
    let user = app.create_user(email, PASSWORD, role).await;
    let client = browser();
    let response = app.log_in(&client, email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{email} logs in");
    (client, user.id)
}

fn record_id_from(location: &str) -> i64 {
    location
        .trim_start_matches("/staff/records/")
        .split('?')
        .next()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("a record address, got {location}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_books_moves_and_marks_visited_for_a_caller_found_by_phone() {
    let (app, emulators) = desk_app().await;
    let olga_id = olga(&app).await;
    let (staff, staff_id) = logged_in(&app, "desk@example.ru", Role::Staff).await;

    let (status, found) = page(&staff, &app, "/staff/callers?q=8+903+555+12+34").await;
    assert_eq!(status, StatusCode::OK);
    assert!(found.contains("Смирнова Ольга Петровна"), "{found}");
    assert!(found.contains(CALLER_PHONE), "staff see the full phone");
    let chosen = post(
        &staff,
        &app,
        "/staff/callers",
        "/staff/caller",
        &[
            ("account_id", &olga_id.to_string()),
            ("next", "/staff/book"),
        ],
    )
    .await;
    assert_eq!(chosen.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&chosen), "/staff/book");

    let (doctor, branch) = doctor_in(&app, None).await;
    let starts = free_starts(&app, doctor, branch).await;
    let book_page = format!("/staff/book?specialist_id={doctor}&branch_id={branch}");
    let (status, html) = page(&staff, &app, &book_page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Записываем: Смирнова Ольга Петровна"),
        "{html}"
    );
    assert!(
        html.contains("Время — время "),
        "times are labelled by the city"
    );
    let booked = post(
        &staff,
        &app,
        &book_page,
        "/staff/book",
        &[
            ("specialist_id", &doctor.to_string()),
            ("branch_id", &branch.to_string()),
            ("start", &starts[0]),
            ("comment", "Звонила в регистратуру"),
        ],
    )
    .await;
    assert_eq!(booked.status(), StatusCode::SEE_OTHER);
    let record = record_id_from(&location(&booked));
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM records WHERE id = {record} AND source = 'desk' \
             AND booked_by = {staff_id} AND user_id = {olga_id}"
        ))
        .await,
        1,
        "the record is Olga's, booked at the desk by the staff member"
    );
    let (_, shown) = page(&staff, &app, &format!("/staff/records/{record}")).await;
    assert!(
        shown.contains("сотрудник Тестов Тест Тестович, на рабочем месте"),
        "{shown}"
    );
    assert!(shown.contains("Звонила в регистратуру"));

    let moved = post(
        &staff,
        &app,
        &format!("/staff/records/{record}"),
        &format!("/staff/records/{record}/move"),
        &[("start", &starts[1])],
    )
    .await;
    assert_eq!(moved.status(), StatusCode::SEE_OTHER, "moved");

    // Too early to say whether she came.
    let early = post(
        &staff,
        &app,
        &format!("/staff/records/{record}"),
        &format!("/staff/records/{record}/outcome"),
        &[("outcome", "visited")],
    )
    .await;
    assert_eq!(early.status(), StatusCode::CONFLICT);
    assert_eq!(emulators.control.mis_calls("SCHEDULE_REC_UPDATE"), 0);

    let new_start: DateTime<Utc> = starts[1].parse().expect("start");
    app.state()
        .booking
        .clock
        .set(new_start + Duration::minutes(5));
    let (_, during) = page(&staff, &app, &format!("/staff/records/{record}")).await;
    assert!(during.contains("Пациент пришёл"));
    let marked = post(
        &staff,
        &app,
        &format!("/staff/records/{record}"),
        &format!("/staff/records/{record}/outcome"),
        &[("outcome", "visited")],
    )
    .await;
    assert_eq!(marked.status(), StatusCode::SEE_OTHER, "marked");
    let again = post(
        &staff,
        &app,
        &format!("/staff/records/{record}"),
        &format!("/staff/records/{record}/outcome"),
        &[("outcome", "no_show")],
    )
    .await;
    assert_eq!(
        again.status(),
        StatusCode::CONFLICT,
        "an outcome is marked once"
    );

    // The MIS has the booking, the move and the visit.
    let schedid: i64 = {
        let n = app
            .count(&format!(
                "SELECT mis_id AS n FROM records WHERE id = {record} AND status = 'visited'"
            ))
            .await;
        assert!(n > 0, "the record is visited");
        n
    };
    assert_eq!(
        emulators.control.mis_calls("SCHEDULE_REC_RESERVE"),
        2,
        "book and move"
    );
    assert_eq!(emulators.control.mis_calls("SCHEDULE_REC_UPDATE"), 1);
    let appointment = emulators
        .control
        .appointments()
        .into_iter()
        .find(|a| a.schedid == schedid)
        .expect("the appointment is in the MIS");
    assert!(
        emulators
            .control
            .with_world(|w| w.booking.visited.contains(&appointment.schedid)),
        "CLVISIT 1 in the MIS"
    );

    // Olga got the booking and the move SMS.
    let sms = emulators.control.clone();
    assert!(
        eventually(10, || {
            let texts: Vec<String> = sms
                .sms_messages()
                .into_iter()
                .filter(|m| m.to.contains("79035551234"))
                .map(|m| m.text)
                .collect();
            texts.iter().any(|t| t.contains("записаны"))
                && texts.iter().any(|t| t.contains("перенес"))
        })
        .await,
        "booking and move SMS: {:?}",
        emulators.control.sms_messages()
    );

    // The admin's audit screen lists all three with the staff member as the actor.
    let (admin, _) = logged_in(&app, "admin@example.ru", Role::Admin).await;
    let (status, audit) = page(&admin, &app, "/admin/audit?actor=desk%40example.ru").await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    for label in ["запись создана", "запись перенесена", "отмечен приход"]
    {
        assert!(audit.contains(label), "{label} in the audit screen");
    }
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM audit_events WHERE actor_user_id = {staff_id} AND subject = '{record}' \
             AND action IN ('record_booked', 'record_moved', 'record_marked_visited')"
        ))
        .await,
        3
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_is_found_by_name_and_by_any_form_of_the_phone() {
    let (app, _emulators) = desk_app().await;
    let olga_id = olga(&app).await;
    let (staff, _) = logged_in(&app, "desk@example.ru", Role::Staff).await;
    for q in [
        "смирнова+ольга",
        "СМИРНОВА",
        "%2B7+(903)+555-12-34",
        "8+903+555-12-34",
        "9035551234",
        "555-12",
    ] {
        let (status, html) = page(&staff, &app, &format!("/staff/callers?q={q}")).await;
        assert_eq!(status, StatusCode::OK, "{q}");
        assert!(
            html.contains(&format!("name=\"account_id\" value=\"{olga_id}\"")),
            "{q} finds Olga"
        );
    }
    let (_, none) = page(&staff, &app, "/staff/callers?q=Иванова").await;
    assert!(none.contains("Найдено: 0"));
    let (status, bad) = page(&staff, &app, "/staff/callers?q=90").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.contains("хотя бы три цифры"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_caller_gets_an_mis_card_and_a_visit_link() {
    let (app, emulators) = desk_app().await;
    let (staff, _) = logged_in(&app, "desk@example.ru", Role::Staff).await;
    let refused = post(
        &staff,
        &app,
        "/staff/callers",
        "/staff/caller/new",
        &[
            ("last_name", "Семёнова"),
            ("first_name", ""),
            ("phone", "12"),
            ("birth_date", "1990-01-01"),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.expect("body");
    assert!(html.contains("Проверьте поля"));
    let added = post(
        &staff,
        &app,
        "/staff/callers",
        "/staff/caller/new",
        &[
            ("last_name", "Семёнова"),
            ("first_name", "Анна"),
            ("middle_name", ""),
            ("phone", "8 912 000-11-22"),
            ("birth_date", "1990-01-01"),
        ],
    )
    .await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    let (doctor, branch) = doctor_in(&app, None).await;
    let starts = free_starts(&app, doctor, branch).await;
    let booked = post(
        &staff,
        &app,
        "/staff/book",
        "/staff/book",
        &[
            ("specialist_id", &doctor.to_string()),
            ("branch_id", &branch.to_string()),
            ("start", &starts[0]),
        ],
    )
    .await;
    assert_eq!(booked.status(), StatusCode::SEE_OTHER);
    let record = record_id_from(&location(&booked));
    assert_eq!(
        emulators.control.mis_calls("CLIENT_ADD"),
        1,
        "a card for her"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM records WHERE id = {record} AND user_id IS NULL \
             AND manage_token_hash IS NOT NULL AND patient_phone = '+79120001122'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM sms_outbox WHERE record_id = {record} AND body LIKE '%/v/%'"
        ))
        .await,
        1,
        "the SMS carries the visit link"
    );
    // A message the gateway refused for good is sent again from the record page, as a new
    // message; one that is on its way is not.
    let message = app
        .count(&format!(
            "SELECT id AS n FROM sms_outbox WHERE record_id = {record}"
        ))
        .await;
    let record_page = format!("/staff/records/{record}");
    let not_failed = post(
        &staff,
        &app,
        &record_page,
        &format!("/staff/records/{record}/sms/{message}/resend"),
        &[],
    )
    .await;
    assert_eq!(not_failed.status(), StatusCode::CONFLICT);
    app.count(&format!(
        "WITH u AS (UPDATE sms_outbox SET status = 'failed', last_error = 'отклонено шлюзом' \
         WHERE id = {message} RETURNING 1) SELECT count(*) AS n FROM u"
    ))
    .await;
    let (_, shown) = page(&staff, &app, &record_page).await;
    assert!(shown.contains("Отправить ещё раз"));
    let resent = post(
        &staff,
        &app,
        &record_page,
        &format!("/staff/records/{record}/sms/{message}/resend"),
        &[],
    )
    .await;
    assert_eq!(resent.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM sms_outbox WHERE record_id = {record}"
        ))
        .await,
        2
    );
    let gateway = emulators.control.clone();
    assert!(
        eventually(10, || gateway
            .sms_messages()
            .iter()
            .filter(|m| m.to == "79120001122")
            .count()
            >= 2)
        .await,
        "the copy went out"
    );
    let other = post(
        &staff,
        &app,
        &record_page,
        &format!("/staff/records/{}/sms/{message}/resend", record + 1000),
        &[],
    )
    .await;
    assert_eq!(
        other.status(),
        StatusCode::NOT_FOUND,
        "a message of another record"
    );
    // Next time she is found by "семенова" (ё/е) from her record.
    let (_, found) = page(&staff, &app, "/staff/callers?q=семенова+анна").await;
    assert!(found.contains("Семёнова Анна"), "{found}");
    assert!(found.contains("name=\"record_id\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_desk_refuses_what_it_cannot_do() {
    let (app, _emulators) = desk_app().await;
    let (staff, _) = logged_in(&app, "desk@example.ru", Role::Staff).await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let starts = free_starts(&app, doctor, branch).await;
    // No caller chosen.
    let no_caller = post(
        &staff,
        &app,
        "/staff/book",
        "/staff/book",
        &[
            ("specialist_id", &doctor.to_string()),
            ("branch_id", &branch.to_string()),
            ("start", &starts[0]),
        ],
    )
    .await;
    assert_eq!(no_caller.status(), StatusCode::CONFLICT);
    assert!(
        no_caller
            .text()
            .await
            .expect("body")
            .contains("Сначала выберите пациента")
    );
    // A record that is not a caller's, a branch that does not exist.
    let chosen = post(
        &staff,
        &app,
        "/staff/callers",
        "/staff/caller",
        &[("record_id", "999999")],
    )
    .await;
    assert_eq!(chosen.status(), StatusCode::NOT_FOUND);
    let branch_set = post(
        &staff,
        &app,
        "/staff",
        "/staff/branch",
        &[("branch_id", "999999")],
    )
    .await;
    assert_eq!(branch_set.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let outcome = post(
        &staff,
        &app,
        "/staff",
        "/staff/records/1/outcome",
        &[("outcome", "maybe")],
    )
    .await;
    assert_eq!(outcome.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The operator's branch is remembered.
    let set = post(
        &staff,
        &app,
        "/staff",
        "/staff/branch",
        &[("branch_id", &branch.to_string())],
    )
    .await;
    assert_eq!(set.status(), StatusCode::SEE_OTHER);
    let (_, desk) = page(&staff, &app, "/staff").await;
    assert!(
        !desk.contains("Открывать рабочее место на этом филиале"),
        "already the operator's"
    );
    let (status, day) = page(
        &staff,
        &app,
        &format!(
            "/staff/day?specialist_id={doctor}&branch_id={branch}&date={}",
            &starts[0][..10]
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(day.contains("свободно"));
    assert!(day.contains("Выбрать пациента"));
}

#[tokio::test(flavor = "multi_thread")]
async fn patients_cannot_reach_the_desk() {
    let (app, _emulators) = desk_app().await;
    let olga_id = olga(&app).await;
    let patient = browser();
    app.log_in(&patient, "olga@example.ru", PASSWORD).await;
    for path in [
        "/staff",
        "/staff/callers?q=смирнова",
        "/staff/book",
        "/staff/day?specialist_id=1&branch_id=1",
        "/staff/records",
        "/staff/records.csv",
    ] {
        let (status, _) = page(&patient, &app, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "GET {path}");
    }
    for path in [
        "/staff/caller",
        "/staff/caller/new",
        "/staff/book",
        "/staff/branch",
        "/staff/records/1/outcome",
        "/staff/records/1/move",
    ] {
        let response = post(
            &patient,
            &app,
            "/cabinet",
            path,
            &[("account_id", &olga_id.to_string())],
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "POST {path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_records_stream_as_a_csv_excel_reads_with_cyrillic_intact() {
    let (app, _emulators) = desk_app().await;
    let (doctor, branch) = doctor_in(&app, None).await;
    let inserted = app
        .count(&format!(
            "WITH ins AS (INSERT INTO records (mis_id, specialist_id, branch_id, starts_at, ends_at, \
             patient_pcode, patient_last_name, patient_first_name, patient_phone, comment, source) \
             SELECT 500000 + i, {doctor}, {branch}, now() + i * interval '30 minutes', \
             now() + i * interval '30 minutes' + interval '20 minutes', 990000000 + i, \
             CASE WHEN i = 7 THEN 'Ёлкина' ELSE 'Пациентова' END, 'Дарья', '+7900' || lpad(i::text, 7, '0'), \
             CASE WHEN i = 9 THEN '=HYPERLINK(\"http://evil\")' END, 'desk' \
             FROM generate_series(1, 10000) AS i RETURNING 1) SELECT count(*) AS n FROM ins"
        ))
        .await;
    assert_eq!(inserted, 10_000);
    let (staff, _) = logged_in(&app, "desk@example.ru", Role::Staff).await;
    let mut response = staff
        .get(app.url(&format!("/staff/records.csv?branch_id={branch}")))
        .send()
        .await
        .expect("export");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers().get("content-length").is_none(),
        "streamed, not built whole"
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/csv")
    );
    let mut body = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        chunks += 1;
        body.extend_from_slice(&chunk);
    }
    assert!(chunks > 1, "arrives in pieces");
    assert_eq!(&body[..3], b"\xEF\xBB\xBF", "starts with the BOM");
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(&body[3..]);
    let headers = reader.headers().expect("header").clone();
    assert_eq!(&headers[8], "Пациент");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 10_000);
    assert!(
        rows.iter().any(|r| &r[8] == "Ёлкина Дарья"),
        "Cyrillic intact"
    );
    assert!(
        rows.iter().all(|r| r[9].starts_with("'+7900")),
        "phones kept as text"
    );
    assert!(
        rows.iter()
            .any(|r| &r[13] == "'=HYPERLINK(\"http://evil\")"),
        "a formula is defused"
    );
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM audit_events WHERE action = 'records_exported' \
             AND details -> 'filter' ->> 'branch_id' IS NOT NULL"
        )
        .await,
        1,
        "the export is audited with its filter"
    );

    // The same list as a workbook: one sheet, a header and 10,000 rows, Cyrillic intact.
    let xlsx = staff
        .get(app.url(&format!("/staff/records.xlsx?branch_id={branch}")))
        .send()
        .await
        .expect("xlsx");
    assert_eq!(xlsx.status(), StatusCode::OK);
    assert_eq!(
        xlsx.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let bytes = xlsx.bytes().await.expect("body");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a zip");
    let mut sheet = String::new();
    std::io::Read::read_to_string(
        &mut archive.by_name("xl/worksheets/sheet1.xml").expect("sheet"),
        &mut sheet,
    )
    .expect("xml");
    assert_eq!(sheet.matches("<row ").count(), 10_001, "header and rows");
    assert!(sheet.contains("Ёлкина Дарья"));
    assert!(
        sheet.contains("+79000000001"),
        "a phone is plain text in a workbook"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM audit_events WHERE action = 'records_exported' AND subject = 'xlsx'")
            .await,
        1
    );

    let patient = browser();
    app.create_user("p@example.ru", PASSWORD, Role::Patient)
        .await;
    app.log_in(&patient, "p@example.ru", PASSWORD).await;
    for path in ["/staff/records.csv", "/staff/records.xlsx"] {
        let denied = patient.get(app.url(path)).send().await.expect("export");
        assert_eq!(denied.status(), StatusCode::FORBIDDEN, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_syncs_now_and_a_second_run_is_refused_while_one_holds_the_lock() {
    let (app, _emulators) = with_emulators_and(|_| {}).await;
    let (admin, _) = logged_in(&app, "admin@example.ru", Role::Admin).await;
    let (staff, _) = logged_in(&app, "desk@example.ru", Role::Staff).await;
    let (_, staff_view) = page(&staff, &app, "/staff/sync").await;
    assert!(
        !staff_view.contains("Синхронизировать сейчас"),
        "staff only watch"
    );
    let denied = post(
        &staff,
        &app,
        "/staff/sync",
        "/admin/sync",
        &[("kind", "branches")],
    )
    .await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);

    // Another replica is syncing: the page says so and a second run is refused.
    let held = sovamed::sync::scheduler::SyncLock::try_acquire(&app.config.database_url)
        .await
        .expect("connect")
        .expect("the lock is free");
    let (_, busy) = page(&admin, &app, "/staff/sync").await;
    assert!(busy.contains("Идёт синхронизация"), "{busy}");
    let refused = post(
        &admin,
        &app,
        "/staff/sync",
        "/admin/sync",
        &[("kind", "branches")],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert!(
        refused
            .text()
            .await
            .expect("body")
            .contains("Синхронизация уже идёт")
    );
    drop(held);

    let bad = post(
        &admin,
        &app,
        "/staff/sync",
        "/admin/sync",
        &[("kind", "everything")],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let mut started = None;
    for _ in 0..50 {
        // The dropped connection's lock goes when PostgreSQL notices the closed socket.
        let response = post(
            &admin,
            &app,
            "/staff/sync",
            "/admin/sync",
            &[("kind", "branches")],
        )
        .await;
        if response.status() == StatusCode::SEE_OTHER {
            started = Some(response);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let started = started.expect("the run starts once the lock is free");
    assert_eq!(location(&started), "/staff/sync?started=1");
    let mut done = false;
    for _ in 0..100 {
        if app
            .count("SELECT count(*) AS n FROM sync_runs WHERE kind = 'branches' AND succeeded")
            .await
            == 1
        {
            done = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(done, "the branches were synced");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM audit_events WHERE action = 'sync_started' AND subject = 'branches'")
            .await,
        1
    );
    let (_, after) = page(&admin, &app, "/staff/sync").await;
    assert!(after.contains("Синхронизировать сейчас"));
    assert!(after.contains("Филиалы"));
}
