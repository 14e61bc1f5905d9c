//! The booking side of the integrations over real HTTP: the MIS client's booking messages
//! against the MIS emulator (grid, reserve, races, moves, cancels, patient cards, lists,
//! refusals, no retries of mutating messages) and the SMS.ru client against the SMS
//! emulator and hostile fixtures. The emulator clock is fixed, so the grid is the same on
//! every run.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde_json::json;
use sovamed::{
    config::Config,
    emulator::{self, EmulatorConfig, Emulators, MisFaults, SmsFaults},
    integrations::{
        infoclinica::{
            MisBooking, MisError, NewMisPatient, PatientQuery, ReserveRequest,
            client::InfoclinicaClient, messages::Idempotency,
        },
        sms::{OutgoingSms, SmsError, SmsGateway, smsru::SmsRuClient},
    },
};

use crate::support::{
    browser,
    fixtures::{Fixture, Reply},
};

const TIMEOUT: Duration = Duration::from_secs(10);
/// Wednesday 2030-03-13, 10:00 in Moscow (branches 1 and 2), 12:00 in Yekaterinburg (3).
const NOW: &str = "2030-03-13T07:00:00Z";

fn now() -> DateTime<Utc> {
    NOW.parse().expect("instant")
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2030, 3, d).expect("date")
}

fn at(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).expect("time")
}

async fn emulators() -> Emulators {
    let emu = emulator::spawn(EmulatorConfig {
        sms_bind: Some(([127, 0, 0, 1], 0).into()),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulators start");
    emu.control.set_now(Some(now()));
    emu
}

fn mis(emu: &Emulators) -> InfoclinicaClient {
    InfoclinicaClient::new(&emu.mis_url, None, TIMEOUT)
        .expect("MIS client")
        .with_backoff(vec![Duration::from_millis(10), Duration::from_millis(10)])
}

/// A doctor with at least `min_free` free intervals on `date` in their home branch.
fn bookable(emu: &Emulators, date: NaiveDate, min_free: usize) -> Slot {
    let world = emu.control.world();
    world
        .doctors
        .iter()
        .filter(|d| d.visible)
        .find_map(|d| {
            let branch = d.placements[0].branch_mis_id;
            let free = emu.control.free_intervals(branch, d.mis_id, date);
            (free.len() >= min_free).then_some(Slot {
                branch,
                doctor: d.mis_id,
                date,
                free,
            })
        })
        .expect("a doctor with free time")
}

struct Slot {
    branch: i64,
    doctor: i64,
    date: NaiveDate,
    free: Vec<(NaiveTime, NaiveTime, i64)>,
}

impl Slot {
    fn reserve(&self, index: usize, pcode: i64) -> ReserveRequest {
        let (start, end, schedident) = self.free[index];
        ReserveRequest {
            branch_mis_id: self.branch,
            doctor_mis_id: self.doctor,
            date: self.date,
            start,
            end,
            schedident,
            pcode,
            move_schedid: None,
        }
    }
}

fn pcodes(emu: &Emulators) -> Vec<i64> {
    emu.control.patients().iter().map(|p| p.pcode).collect()
}

// ---------------------------------------------------------------- MIS booking

#[tokio::test(flavor = "multi_thread")]
async fn booking_schedule_matches_the_emulator_state() {
    let emu = emulators().await;
    let client = mis(&emu);
    // Someone whose day started before 10:00 today, so it has past intervals.
    let world = emu.control.world();
    let (branch, doctor) = world
        .doctors
        .iter()
        .filter(|d| d.visible)
        .filter(|d| d.placements[0].branch_mis_id < 3)
        .find_map(|d| {
            let branch = d.placements[0].branch_mis_id;
            let periods = emu.control.work_periods(branch, d.mis_id, day(13));
            periods
                .iter()
                .any(|p| p.start < at(9, 30))
                .then_some((branch, d.mis_id))
        })
        .expect("an early Moscow doctor today, where it is 10:00");
    let days = client
        .schedule(branch, doctor, day(13), day(20))
        .await
        .expect("schedule");
    assert!(!days.is_empty());
    assert!(days.iter().all(|d| d.doctor_mis_id == doctor));
    assert!(days.iter().all(|d| (day(13)..=day(20)).contains(&d.date)));
    assert!(days.iter().all(|d| d.date != day(17)), "Sunday is off");
    let mut seen = [0usize; 3];
    for d in &days {
        let free: Vec<_> = d
            .intervals
            .iter()
            .filter(|i| i.is_free())
            .map(|i| (i.start, i.end, i.schedident))
            .collect();
        assert_eq!(
            free,
            emu.control.free_intervals(branch, doctor, d.date),
            "{}",
            d.date
        );
        for i in &d.intervals {
            assert_eq!((i.end - i.start).num_minutes(), 30);
            match i.free_type {
                -6 => {
                    seen[0] += 1;
                    assert!(d.date == day(13) && i.start < at(10, 0), "{i:?}");
                }
                0 => seen[1] += 1,
                1 => {
                    seen[2] += 1;
                    assert!(d.date > day(13) || i.start >= at(10, 0));
                }
                other => panic!("FREETYPE {other}"),
            }
        }
        let idents: std::collections::BTreeSet<i64> =
            d.intervals.iter().map(|i| i.schedident).collect();
        let periods = emu.control.work_periods(branch, doctor, d.date);
        assert_eq!(idents.len(), periods.len());
        assert!(idents.iter().all(|i| i / 1_000_000_000 == branch));
    }
    assert!(
        seen.iter().all(|n| *n > 0),
        "past, taken and free: {seen:?}"
    );
    assert_eq!(emu.control.mis_calls("SCHEDULE"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn booking_reserve_takes_the_interval_once() {
    let emu = emulators().await;
    let client = mis(&emu);
    let slot = bookable(&emu, day(15), 3);
    let pcode = pcodes(&emu)[0];
    let before = emu.control.appointment_count();
    let schedid = client
        .reserve(&slot.reserve(0, pcode))
        .await
        .expect("books");
    assert_eq!(schedid / 10_000_000, slot.branch, "filial-prefixed SCHEDID");
    assert_eq!(emu.control.appointment_count(), before + 1);
    let booked = emu
        .control
        .appointments()
        .into_iter()
        .find(|a| a.schedid == schedid)
        .expect("stored");
    assert_eq!(
        (booked.pcode, booked.doctor_mis_id, booked.start),
        (pcode, slot.doctor, slot.free[0].0)
    );

    let days = client
        .schedule(slot.branch, slot.doctor, slot.date, slot.date)
        .await
        .expect("schedule");
    let interval = days[0]
        .intervals
        .iter()
        .find(|i| i.start == slot.free[0].0)
        .expect("interval");
    assert_eq!(interval.free_type, 0, "taken now");

    let err = client
        .reserve(&slot.reserve(0, pcodes(&emu)[1]))
        .await
        .expect_err("taken");
    assert!(err.is_slot_taken(), "{err}");
    match &err {
        MisError::Failed {
            spresult, checks, ..
        } => {
            assert_eq!(*spresult, 0);
            assert_eq!(checks[0].code, 2);
            assert!(checks[0].text.contains("недавно занято"));
        }
        other => panic!("{other}"),
    }
    assert_eq!(emu.control.appointment_count(), before + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn booking_twenty_concurrent_reserves_of_one_interval_book_it_once() {
    let emu = emulators().await;
    emu.control.set_mis_faults(MisFaults {
        reserve_latency_ms: 50,
        ..MisFaults::default()
    });
    let slot = bookable(&emu, day(16), 1);
    let before = emu.control.appointment_count();
    let patients = pcodes(&emu);
    let mut tasks = Vec::new();
    for pcode in patients.into_iter().take(20) {
        let client = mis(&emu);
        let request = slot.reserve(0, pcode);
        tasks.push(tokio::spawn(async move { client.reserve(&request).await }));
    }
    let mut won = 0;
    let mut taken = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => won += 1,
            Err(e) if e.is_slot_taken() => taken += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!((won, taken), (1, 19));
    assert_eq!(emu.control.appointment_count(), before + 1);
    assert_eq!(emu.control.mis_calls("SCHEDULE_REC_RESERVE"), 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn booking_someone_else_winning_between_grid_and_reserve_is_slot_taken() {
    let emu = emulators().await;
    let client = mis(&emu);
    let slot = bookable(&emu, day(18), 2);
    let (start, _, _) = slot.free[1];
    let theirs = emu
        .control
        .take_interval(slot.branch, slot.doctor, slot.date, start)
        .expect("free interval taken");
    assert!(
        emu.control
            .take_interval(slot.branch, slot.doctor, slot.date, start)
            .is_none(),
        "not free any more"
    );
    let err = client
        .reserve(&slot.reserve(1, pcodes(&emu)[0]))
        .await
        .expect_err("lost the race");
    assert!(err.is_slot_taken());
    let appointment = emu
        .control
        .appointments()
        .into_iter()
        .find(|a| a.schedid == theirs)
        .expect("theirs");
    assert!(pcodes(&emu).contains(&appointment.pcode));
}

#[tokio::test(flavor = "multi_thread")]
async fn booking_move_keeps_the_schedid_and_frees_the_old_interval() {
    let emu = emulators().await;
    let client = mis(&emu);
    let slot = bookable(&emu, day(19), 3);
    let pcode = pcodes(&emu)[2];
    let schedid = client
        .reserve(&slot.reserve(0, pcode))
        .await
        .expect("books");
    let moved = client
        .reserve(&ReserveRequest {
            move_schedid: Some(schedid),
            ..slot.reserve(2, pcode)
        })
        .await
        .expect("moves");
    assert_eq!(moved, schedid);
    assert_eq!(emu.control.appointments().len(), 1);
    let free = emu
        .control
        .free_intervals(slot.branch, slot.doctor, slot.date);
    assert!(
        free.contains(&slot.free[0]),
        "the old interval is free again"
    );
    assert!(!free.contains(&slot.free[2]));

    let stranger = client
        .reserve(&ReserveRequest {
            move_schedid: Some(schedid),
            ..slot.reserve(1, pcodes(&emu)[3])
        })
        .await
        .expect_err("not theirs");
    assert!(
        matches!(&stranger, MisError::Failed { comment, .. } if comment == "Запись пациента не найдена"),
        "{stranger}"
    );
    let unknown = client
        .reserve(&ReserveRequest {
            move_schedid: Some(schedid + 1000),
            ..slot.reserve(1, pcode)
        })
        .await
        .expect_err("no such appointment");
    assert!(matches!(unknown, MisError::Failed { spresult: 0, .. }));
}

#[tokio::test(flavor = "multi_thread")]
async fn booking_cancel_twice_fails_the_second_time() {
    let emu = emulators().await;
    let client = mis(&emu);
    let slot = bookable(&emu, day(20), 1);
    let pcode = pcodes(&emu)[4];
    let schedid = client
        .reserve(&slot.reserve(0, pcode))
        .await
        .expect("books");
    client
        .cancel(slot.branch, schedid, Some(pcode))
        .await
        .expect("cancelled");
    assert_eq!(emu.control.appointment_count(), 0);
    assert!(
        emu.control
            .free_intervals(slot.branch, slot.doctor, slot.date)
            .contains(&slot.free[0])
    );
    let err = client
        .cancel(slot.branch, schedid, Some(pcode))
        .await
        .expect_err("already cancelled");
    match err {
        MisError::Failed {
            spresult,
            comment,
            checks,
        } => {
            assert_eq!(spresult, 0);
            assert_eq!(comment, "Запись пациента не найдена");
            assert_eq!(checks[0].code, 2);
            assert!(checks[0].text.contains("уже отменена"));
        }
        other => panic!("{other}"),
    }
    assert_eq!(emu.control.mis_calls("SCHEDULE_REC_REMOVE"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn booking_patient_cards_are_added_once_and_found_by_phone_and_email() {
    let emu = emulators().await;
    let client = mis(&emu);
    let patient = NewMisPatient {
        last_name: "Кузнецов".into(),
        first_name: "Андрей".into(),
        middle_name: Some("Викторович".into()),
        birth_date: NaiveDate::from_ymd_opt(1987, 6, 5),
        phone: "+79165550102".into(),
        email: Some("a.kuznetsov@example.ru".into()),
    };
    let before = emu.control.patients().len();
    let pcode = client.add_patient(&patient).await.expect("added");
    assert_eq!(pcode / 10_000_000, 99, "web patients start with 99");
    let again = client
        .add_patient(&NewMisPatient {
            phone: "+79990000000".into(),
            email: None,
            ..patient.clone()
        })
        .await
        .expect("the existing card");
    assert_eq!(again, pcode);
    assert_eq!(emu.control.patients().len(), before + 1);
    let stored = emu
        .control
        .patients()
        .into_iter()
        .find(|p| p.pcode == pcode)
        .expect("stored");
    assert_eq!(stored.phone, "+7(916)555-01-02");

    let by_phone = client
        .find_patient(&PatientQuery::Phone("+79165550102".into()))
        .await
        .expect("check");
    assert_eq!(by_phone, Some(pcode));
    let by_email = client
        .find_patient(&PatientQuery::Email("A.Kuznetsov@example.ru".into()))
        .await
        .expect("check");
    assert_eq!(by_email, Some(pcode));
    let nobody = client
        .find_patient(&PatientQuery::Phone("+79160000001".into()))
        .await
        .expect("check");
    assert_eq!(nobody, None);
    assert_eq!(emu.control.mis_calls("CLIENT_CHECK"), 3);
    assert_eq!(emu.control.mis_calls("CLIENT_ADD"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn booking_appointments_are_listed_across_pages() {
    let emu = emulators().await;
    let client = mis(&emu);
    let pcode = client
        .add_patient(&NewMisPatient {
            last_name: "Орлова".into(),
            first_name: "Вера".into(),
            middle_name: None,
            birth_date: NaiveDate::from_ymd_opt(1990, 1, 2),
            phone: "+79161112233".into(),
            email: None,
        })
        .await
        .expect("added");
    // 55 appointments straight into the emulator: more than one page of 50.
    let booked = emu.control.edit_world(|world| {
        let mut booked = 0;
        let doctors: Vec<(i64, i64)> = world
            .doctors
            .iter()
            .filter(|d| d.visible)
            .map(|d| (d.placements[0].branch_mis_id, d.mis_id))
            .collect();
        'outer: for (branch, doctor) in doctors {
            for (start, end, schedident) in world.free_intervals(branch, doctor, day(21)) {
                world
                    .reserve(&sovamed::emulator::booking::Reservation {
                        filial: branch,
                        doctor_mis_id: doctor,
                        date: day(21),
                        start,
                        end,
                        schedident,
                        pcode,
                        move_schedid: None,
                    })
                    .expect("books");
                booked += 1;
                if booked == 55 {
                    break 'outer;
                }
            }
        }
        booked
    });
    assert_eq!(booked, 55);
    let slot = bookable(&emu, day(22), 1);
    client
        .reserve(&slot.reserve(0, pcode))
        .await
        .expect("books");
    emu.control.reset_mis_calls();
    let list = client.appointments(pcode, day(13)).await.expect("list");
    assert_eq!(list.len(), 56);
    assert_eq!(emu.control.mis_calls("SCHEDULE_REC_LIST"), 2);
    let last = list.last().expect("last");
    assert_eq!(
        (last.date, last.doctor_mis_id, last.branch_mis_id),
        (day(22), slot.doctor, slot.branch)
    );
    assert!(
        list.windows(2)
            .all(|w| (w[0].date, w[0].start) <= (w[1].date, w[1].start))
    );
    let later = client.appointments(pcode, day(22)).await.expect("list");
    assert_eq!(later.len(), 1);
    let other = client
        .appointments(pcodes(&emu)[0], day(13))
        .await
        .expect("list");
    assert!(other.is_empty());

    // Pages must add up to ITEMSNUMBER: a short one is an error, not the end of the list.
    emu.control.set_mis_faults(MisFaults {
        short_pages: Some(20),
        ..MisFaults::default()
    });
    let error = client
        .appointments(pcode, day(13))
        .await
        .expect_err("a short page");
    assert!(
        matches!(&error, MisError::Malformed(m) if m.contains("SCHEDULE_REC_LIST: short page")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn booking_reserves_outside_the_rules_are_refused() {
    let emu = emulators().await;
    let client = mis(&emu);
    let pcode = pcodes(&emu)[5];
    let comment = |e: MisError| match e {
        MisError::Failed {
            spresult: 0,
            comment,
            checks,
        } => {
            assert!(checks.is_empty(), "only a taken interval carries CHECKDATA");
            comment
        }
        other => panic!("expected SPRESULT 0, got {other}"),
    };

    // A past interval of today (FREETYPE -6).
    let (branch, doctor, past) = {
        let world = emu.control.world();
        world
            .doctors
            .iter()
            .filter(|d| d.visible)
            .find_map(|d| {
                let branch = d.placements[0].branch_mis_id;
                emu.control
                    .work_periods(branch, d.mis_id, day(13))
                    .into_iter()
                    .find(|p| p.start < at(9, 30))
                    .map(|p| (branch, d.mis_id, p))
            })
            .expect("an early period today")
    };
    let past_request = ReserveRequest {
        branch_mis_id: branch,
        doctor_mis_id: doctor,
        date: day(13),
        start: past.start,
        end: past.start + chrono::Duration::minutes(30),
        schedident: past.schedident,
        pcode,
        move_schedid: None,
    };
    let err = client.reserve(&past_request).await.expect_err("past");
    assert!(!err.is_slot_taken());
    assert!(comment(err).contains("прошло"));

    let slot = bookable(&emu, day(15), 1);
    let wrong_ident = ReserveRequest {
        schedident: slot.free[0].2 + 2,
        ..slot.reserve(0, pcode)
    };
    assert!(comment(client.reserve(&wrong_ident).await.expect_err("ident")).contains("SCHEDIDENT"));
    let wrong_branch = ReserveRequest {
        branch_mis_id: slot.branch % 3 + 1,
        ..slot.reserve(0, pcode)
    };
    assert!(comment(client.reserve(&wrong_branch).await.expect_err("filial")).contains("филиал"));
    let misaligned = ReserveRequest {
        start: slot.free[0].0 + chrono::Duration::minutes(10),
        end: slot.free[0].1 + chrono::Duration::minutes(10),
        ..slot.reserve(0, pcode)
    };
    assert!(!comment(client.reserve(&misaligned).await.expect_err("aligned")).is_empty());
    let outside = ReserveRequest {
        start: at(21, 0),
        end: at(21, 30),
        ..slot.reserve(0, pcode)
    };
    assert!(comment(client.reserve(&outside).await.expect_err("outside")).contains("вне"));
    let stranger = ReserveRequest {
        pcode: 990_999_999,
        ..slot.reserve(0, pcode)
    };
    assert!(comment(client.reserve(&stranger).await.expect_err("pcode")).contains("Пациент"));
    assert_eq!(emu.control.appointment_count(), 0);

    // MSH.99 is required for the grid and for booking.
    let no_filial = client
        .call("SCHEDULE", None, Idempotency::ReadOnly, |w| {
            w.leaf("DCODEIN", slot.doctor)
                .leaf("BDATE", "20300315")
                .leaf("FDATE", "20300315");
        })
        .await
        .expect_err("no MSH.99");
    assert!(
        matches!(&no_filial, MisError::Refused { code, message } if code == "AE" && message.contains("MSH.99")),
        "{no_filial}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn booking_mutating_messages_are_sent_once_on_http_500() {
    let emu = emulators().await;
    let client = mis(&emu);
    let slot = bookable(&emu, day(15), 1);
    emu.control.set_mis_faults(MisFaults {
        http_500: true,
        ..MisFaults::default()
    });
    let err = client
        .reserve(&slot.reserve(0, pcodes(&emu)[0]))
        .await
        .expect_err("500");
    assert!(matches!(err, MisError::Http { status: 500, .. }));
    assert_eq!(emu.control.mis_calls("SCHEDULE_REC_RESERVE"), 1);
    client
        .cancel(slot.branch, 10_001_001, None)
        .await
        .expect_err("500");
    assert_eq!(emu.control.mis_calls("SCHEDULE_REC_REMOVE"), 1);
    client
        .add_patient(&NewMisPatient {
            last_name: "Белов".into(),
            first_name: "Олег".into(),
            middle_name: None,
            birth_date: None,
            phone: "+79160000002".into(),
            email: None,
        })
        .await
        .expect_err("500");
    assert_eq!(emu.control.mis_calls("CLIENT_ADD"), 1);

    // Read-only messages are tried three times.
    client
        .schedule(slot.branch, slot.doctor, slot.date, slot.date)
        .await
        .expect_err("500");
    assert_eq!(emu.control.mis_calls("SCHEDULE"), 3);
    client
        .find_patient(&PatientQuery::Email("x@example.ru".into()))
        .await
        .expect_err("500");
    assert_eq!(emu.control.mis_calls("CLIENT_CHECK"), 3);
    assert_eq!(emu.control.mis_calls_total(), 9);
    assert_eq!(emu.control.appointment_count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn booking_clock_is_per_branch_local_time() {
    let emu = emulators().await;
    // 23:30 in Moscow, already 01:30 tomorrow in Yekaterinburg.
    emu.control
        .set_now(Some("2030-03-13T20:30:00Z".parse().expect("instant")));
    assert_eq!(
        emu.control.branch_now(1).expect("branch 1"),
        day(13).and_time(at(23, 30))
    );
    assert_eq!(
        emu.control.branch_now(3).expect("branch 3"),
        day(14).and_time(at(1, 30))
    );
    // Moving the clock a day on makes the day before past everywhere.
    emu.control.set_now(Some(now()));
    let slot = bookable(&emu, day(14), 1);
    emu.control.set_clock_offset(chrono::Duration::days(1));
    assert_eq!(emu.control.now(), now() + chrono::Duration::days(1));
    let local = emu.control.branch_now(slot.branch).expect("branch");
    assert_eq!(local.date(), day(14));
    let free_then = emu
        .control
        .free_intervals(slot.branch, slot.doctor, slot.date);
    assert!(free_then.iter().all(|(s, _, _)| *s >= local.time()));
    let result = mis(&emu).reserve(&slot.reserve(0, pcodes(&emu)[0])).await;
    assert_eq!(
        result.is_ok(),
        slot.free[0].0 >= local.time(),
        "only what is still ahead can be booked"
    );
    // The window ends 28 days after the branch's today.
    emu.control.set_clock_offset(chrono::Duration::zero());
    assert!(
        emu.control
            .work_periods(
                slot.branch,
                slot.doctor,
                day(13) + chrono::Duration::days(29)
            )
            .is_empty()
    );
}

// ---------------------------------------------------------------- SMS.ru

fn sms_client(emu: &Emulators, timeout: Duration) -> SmsRuClient {
    SmsRuClient::new(
        emu.sms_url.clone().expect("SMS emulator"),
        emu.sms_api_id.clone(),
        Some("Sovamed".into()),
        timeout,
    )
    .expect("SMS client")
}

fn message(text: &str) -> OutgoingSms {
    OutgoingSms {
        to: "+79161234567".into(),
        text: text.into(),
        client_ref: Some("outbox-1".into()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn booking_sms_is_accepted_and_recorded_by_the_emulator() {
    let emu = emulators().await;
    let client = sms_client(&emu, TIMEOUT);
    let balance = emu.control.sms_balance_kopecks();
    let accepted = client
        .send(&message("Вы записаны к врачу 15.03 в 10:30"))
        .await
        .expect("accepted");
    let (date, seq) = accepted
        .provider_id
        .split_once('-')
        .expect("NNNNNN-NNNNNNN");
    assert_eq!(date.len(), 6);
    assert_eq!(seq.len(), 7);
    assert!(
        accepted
            .provider_id
            .chars()
            .all(|c| c.is_ascii_digit() || c == '-')
    );
    let sent = emu.control.sms_messages();
    assert_eq!(emu.control.sms_count(), 1);
    assert_eq!(sent[0].to, "79161234567");
    assert_eq!(sent[0].text, "Вы записаны к врачу 15.03 в 10:30");
    assert_eq!(sent[0].sender.as_deref(), Some("Sovamed"));
    assert_eq!(sent[0].sms_id, accepted.provider_id);
    assert!(!sent[0].test);
    assert_eq!(
        emu.control.sms_balance_kopecks(),
        balance - emulator::sms::PRICE_PER_PART_KOPECKS
    );
    // Two parts cost twice.
    client
        .send(&message(&"я".repeat(100)))
        .await
        .expect("accepted");
    assert_eq!(
        emu.control.sms_balance_kopecks(),
        balance - 3 * emulator::sms::PRICE_PER_PART_KOPECKS
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn booking_sms_emulator_speaks_the_smsru_form_protocol() {
    let emu = emulators().await;
    let url = format!("{}/sms/send", emu.sms_url.clone().expect("SMS URL"));
    let http = browser();
    let api_id = emu.sms_api_id.clone();
    let ask = |form: Vec<(&'static str, String)>| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let response = http.post(url).form(&form).send().await.expect("send");
            assert_eq!(response.status(), 200);
            response.json::<serde_json::Value>().await.expect("json")
        }
    };
    let no_key = ask(vec![
        ("to", "79161234567".into()),
        ("msg", "x".into()),
        ("json", "1".into()),
    ])
    .await;
    assert_eq!(no_key["status"], "ERROR");
    assert_eq!(no_key["status_code"], 200);

    let answer = ask(vec![
        ("api_id", api_id.clone()),
        ("to", "79161234567,123,79031112233".into()),
        ("msg", "Напоминание о приёме".into()),
        ("json", "1".into()),
        ("test", "1".into()),
    ])
    .await;
    assert_eq!(answer["status_code"], 100);
    assert_eq!(answer["sms"]["79161234567"]["status_code"], 100);
    assert_eq!(answer["sms"]["123"]["status_code"], 202);
    assert_eq!(answer["sms"]["79031112233"]["status"], "OK");
    assert_eq!(answer["balance"], json!(1000.0), "test=1 is free");

    let empty = ask(vec![
        ("api_id", api_id.clone()),
        ("to", "79161234567".into()),
        ("msg", " ".into()),
        ("json", "1".into()),
    ])
    .await;
    assert_eq!(empty["sms"]["79161234567"]["status_code"], 203);
    let long = ask(vec![
        ("api_id", api_id.clone()),
        ("to", "79161234567".into()),
        ("msg", "я".repeat(537)),
        ("json", "1".into()),
    ])
    .await;
    assert_eq!(long["sms"]["79161234567"]["status_code"], 205);

    // GET with the query string and the legacy text answer.
    let legacy = http
        .get(&url)
        .query(&[
            ("api_id", api_id.as_str()),
            ("to", "79161234567"),
            ("msg", "hi"),
        ])
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    let lines: Vec<&str> = legacy.lines().collect();
    assert_eq!(lines[0], "100");
    assert!(lines[2].starts_with("balance="));
    assert_eq!(emu.control.sms_count(), 3, "two test messages and one sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn booking_sms_faults_map_to_errors() {
    let emu = emulators().await;
    let client = sms_client(&emu, Duration::from_millis(500));
    let cases: Vec<(SmsFaults, SmsError, bool)> = vec![
        (
            SmsFaults {
                http_500: true,
                ..SmsFaults::default()
            },
            SmsError::Temporary { code: 500 },
            true,
        ),
        (
            SmsFaults {
                down: true,
                ..SmsFaults::default()
            },
            SmsError::Temporary { code: 503 },
            true,
        ),
        (
            SmsFaults {
                error_code: Some(220),
                ..SmsFaults::default()
            },
            SmsError::Temporary { code: 220 },
            true,
        ),
        (
            SmsFaults {
                error_code: Some(201),
                ..SmsFaults::default()
            },
            SmsError::InsufficientFunds { code: 201 },
            false,
        ),
        (
            SmsFaults {
                error_code: Some(207),
                ..SmsFaults::default()
            },
            SmsError::Undeliverable { code: 207 },
            false,
        ),
        (
            SmsFaults {
                error_code: Some(204),
                ..SmsFaults::default()
            },
            SmsError::Rejected { code: 204 },
            false,
        ),
        (
            SmsFaults {
                error_code: Some(206),
                ..SmsFaults::default()
            },
            SmsError::Deferred { code: 206 },
            true,
        ),
    ];
    for (faults, expected, retryable) in cases {
        emu.control.set_sms_faults(faults.clone());
        let err = client.send(&message("x")).await.expect_err("fault");
        assert_eq!(err, expected, "{faults:?}");
        assert_eq!(err.is_retryable(), retryable, "{faults:?}");
    }
    emu.control.set_sms_faults(SmsFaults {
        latency_ms: 2_000,
        ..SmsFaults::default()
    });
    let err = client.send(&message("x")).await.expect_err("slow");
    assert!(
        matches!(&err, SmsError::Unanswered(m) if m.contains("500ms")),
        "{err}"
    );
    assert!(
        err.outcome_unknown(),
        "a request that went out unanswered may have been taken"
    );

    // Over HTTP, as a developer would flip them.
    let response = browser()
        .post(format!(
            "{}/_emulator/faults",
            emu.sms_url.clone().expect("SMS URL")
        ))
        .json(&json!({"error_code": 231}))
        .send()
        .await
        .expect("faults");
    assert_eq!(response.status(), 200);
    assert_eq!(emu.control.sms_faults().error_code, Some(231));
    let err = client.send(&message("x")).await.expect_err("deferred");
    assert_eq!(err, SmsError::Deferred { code: 231 });

    emu.control.set_sms_faults(SmsFaults::default());
    let wrong_key = SmsRuClient::new(
        emu.sms_url.clone().expect("SMS URL"),
        "not-the-key",
        None,
        TIMEOUT,
    )
    .expect("client");
    assert_eq!(
        wrong_key.send(&message("x")).await,
        Err(SmsError::Auth { code: 200 })
    );
    assert_eq!(
        client
            .send(&OutgoingSms {
                to: "12345".into(),
                ..message("x")
            })
            .await,
        Err(SmsError::InvalidPhone { code: 202 })
    );
    assert_eq!(emu.control.sms_count(), 0, "nothing was accepted");
    client.send(&message("x")).await.expect("works again");
}

#[tokio::test(flavor = "multi_thread")]
async fn booking_sms_client_does_not_follow_a_redirect() {
    let elsewhere = Fixture::start(Reply::json(
        200,
        r#"{"status":"OK","status_code":100,"sms":{"79161234567":{"status":"OK","status_code":100,"sms_id":"1-1"}}}"#,
    ))
    .await;
    let redirecting = Fixture::start(
        Reply::new(302, "text/html", "moved").header("Location", &elsewhere.url("/sms/send")),
    )
    .await;
    let client = SmsRuClient::new(redirecting.url(""), "key", None, TIMEOUT).expect("client");
    let err = client.send(&message("x")).await.expect_err("redirect");
    assert!(
        matches!(&err, SmsError::Transport(m) if m.contains("redirect")),
        "{err}"
    );
    assert_eq!(redirecting.requests(), 1);
    assert_eq!(elsewhere.requests(), 0);
    let request = redirecting.received().pop().expect("request");
    assert!(request.to_ascii_lowercase().starts_with("post /sms/send "));
    let body = &request[request.find("\r\n\r\n").expect("head end") + 4..];
    assert!(body.contains("api_id=key"));
    assert!(body.contains("to=79161234567"));
    assert!(body.contains("json=1"));
    assert!(!body.contains("from="));
    assert!(!body.contains("partner_id"));
}

#[tokio::test(flavor = "multi_thread")]
async fn booking_sms_client_needs_an_api_id() {
    let config = Config::from_lookup(|name| match name {
        "SMS_PROVIDER" => Some("smsru".into()),
        _ => None,
    })
    .expect("config");
    let err = SmsRuClient::from_config(&config).expect_err("no api id");
    assert!(matches!(&err, SmsError::NotConfigured(m) if m.contains("SMSRU_API_ID")));
    let err = sovamed::integrations::sms::gateway_from_config(&config)
        .err()
        .expect("no api id");
    assert!(matches!(err, SmsError::NotConfigured(_)));
    let bad_json = Fixture::start(Reply::json(200, "<html>oops</html>")).await;
    let client = SmsRuClient::new(bad_json.url(""), "key", None, TIMEOUT).expect("client");
    assert!(matches!(
        client.send(&message("x")).await,
        Err(SmsError::Parse(_))
    ));
}
