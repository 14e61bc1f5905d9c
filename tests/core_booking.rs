//! The booking core without a server: `Booking`'s operations called directly, with the real
//! MIS client against the emulator, real PostgreSQL and Redis, and an injected clock.

use std::net::{IpAddr, Ipv4Addr};

use chrono::Duration;
use sovamed::{
    db::models::user::{self, NewUser, Role, User},
    domain::{
        audit::Actor,
        booking::{
            BookRequest, BookingError, BookingTarget, Change, Patient, TargetError, grid::Slot,
            records::RecordQuery, reserve,
        },
        values::{Comment, FullName, PageNo, Phone, RecordSource, RecordStatus},
    },
    emulator::MisFaults,
};

use crate::support::core::CoreWorld;

const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn actor(user_id: Option<i64>) -> Actor {
    Actor { user_id, ip: IP }
}

fn patient(phone: &str) -> Patient {
    Patient {
        name: FullName::parse("Петров Пётр Петрович").expect("name"),
        phone: Phone::parse(phone).expect("phone"),
        birth_date: None,
        email: None,
        mis_pcode: None,
    }
}

fn anonymous<'a>(
    specialist_id: i64,
    branch_id: i64,
    start: chrono::DateTime<chrono::Utc>,
    patient: &'a Patient,
    comment: Option<&'a Comment>,
) -> BookRequest<'a> {
    BookRequest {
        specialist_id,
        branch_id,
        start,
        patient,
        user: None,
        comment,
        source: RecordSource::Anonymous,
        keep_answer: None,
        actor: actor(None),
    }
}

async fn create_user(world: &CoreWorld, email: &str, role: Role, phone: Option<&str>) -> User {
    let mut conn = world.booking.db.get().await.expect("connection");
    user::insert(
        &mut conn,
        &NewUser {
            email,
            password_hash: "not-a-login-test",
            full_name: "Сидорова Анна",
            phone,
            birth_date: None,
            role,
            phone_verified_at: None,
        },
    )
    .await
    .expect("user")
}

/// What a booking request writes before it asks the MIS: a pending `Book` intent for
/// `slot` with the request's `facts` (and no card while the MIS is adding a new one).
/// Returns the intent's id.
async fn open_book_intent(
    world: &CoreWorld,
    target: &BookingTarget,
    slot: &Slot,
    pcode: Option<i64>,
    facts: &serde_json::Value,
) -> i64 {
    use sovamed::{
        db::models::intent::{self, NewIntent},
        domain::values::IntentKind,
    };
    let conn = world.booking.db.get().await.expect("connection");
    intent::insert(
        &conn,
        &NewIntent {
            kind: IntentKind::Book,
            record_id: None,
            specialist_id: target.specialist_id,
            branch_id: target.branch_id,
            starts_at: slot.start.with_timezone(&chrono::Utc),
            ends_at: slot.end.with_timezone(&chrono::Utc),
            pcode,
            mis_id: None,
            request: facts,
            idempotency_scope: None,
            idempotency_key: None,
            request_hash: None,
        },
    )
    .await
    .expect("intent")
    .id
}

/// A visitor's new MIS card and the facts their booking's intent keeps.
async fn visitor_card(
    world: &CoreWorld,
    (last_name, first_name): (&str, &str),
    phone: &str,
    comment: Option<&str>,
) -> (i64, serde_json::Value) {
    use sovamed::{
        domain::booking::reserve::BookingFacts, integrations::infoclinica::NewMisPatient,
    };
    let pcode = world
        .booking
        .mis
        .add_patient(&NewMisPatient {
            last_name: last_name.into(),
            first_name: first_name.into(),
            middle_name: None,
            birth_date: None,
            phone: phone.into(),
            email: None,
        })
        .await
        .expect("card");
    let facts = serde_json::to_value(BookingFacts {
        last_name: last_name.into(),
        first_name: first_name.into(),
        middle_name: None,
        phone: phone.into(),
        birth_date: None,
        email: None,
        user_id: None,
        comment: comment.map(str::to_owned),
        source: RecordSource::Anonymous,
        actor_user_id: None,
        actor_ip: IP,
    })
    .expect("facts");
    (pcode, facts)
}

/// What the intent of Анна Сидорова's own booking from the cabinet (account `user_id`) holds.
fn cabinet_facts(user_id: i64, phone: &str) -> serde_json::Value {
    serde_json::to_value(sovamed::domain::booking::reserve::BookingFacts {
        last_name: "Сидорова".into(),
        first_name: "Анна".into(),
        middle_name: None,
        phone: phone.into(),
        birth_date: None,
        email: None,
        user_id: Some(user_id),
        comment: None,
        source: RecordSource::Cabinet,
        actor_user_id: Some(user_id),
        actor_ip: IP,
    })
    .expect("facts")
}

/// The MIS books `slot` for card `pcode`, as the request's `SCHEDULE_REC_RESERVE` would;
/// returns its `SCHEDID`.
async fn reserve_in_mis(world: &CoreWorld, target: &BookingTarget, slot: &Slot, pcode: i64) -> i64 {
    world
        .booking
        .mis
        .reserve(&reserve::reserve_request(target, slot, pcode, None))
        .await
        .expect("reserved in the MIS")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_core_books_moves_and_cancels_without_a_server() {
    let world = CoreWorld::start().await;
    let (doctor, branch) = world.doctor_and_branch().await;
    let starts = world.free_starts(doctor, branch).await;
    assert!(starts.len() >= 2, "two free slots");
    let before = world.emulators.control.appointment_count();
    let someone = patient("8 916 555-00-01");
    let comment = Comment::parse("Первичный приём").expect("comment");

    let booked = world
        .booking
        .book(anonymous(
            doctor,
            branch,
            starts[0],
            &someone,
            comment.as_ref(),
        ))
        .await
        .expect("booked");
    assert_eq!(booked.record.status, RecordStatus::Booked);
    assert_eq!(booked.record.starts_at, starts[0]);
    assert_eq!(booked.record.patient_phone, "+79165550001");
    assert_eq!(booked.record.comment.as_deref(), Some("Первичный приём"));
    assert_eq!(world.emulators.control.appointment_count(), before + 1);

    let again = world
        .booking
        .book(anonymous(
            doctor,
            branch,
            starts[0],
            &patient("+79165550002"),
            None,
        ))
        .await;
    assert!(matches!(again, Err(BookingError::SlotTaken)), "{again:?}");

    let same = world
        .booking
        .reschedule(&booked, starts[0], actor(None))
        .await;
    assert!(matches!(same, Err(BookingError::SameTime)), "{same:?}");
    let moved = world
        .booking
        .reschedule(&booked, starts[1], actor(None))
        .await
        .expect("moved");
    assert_eq!(moved.record.starts_at, starts[1]);
    assert_eq!(moved.record.id, booked.record.id);
    assert_eq!(world.emulators.control.appointment_count(), before + 1);

    let cancelled = world
        .booking
        .cancel(&moved, actor(None))
        .await
        .expect("cancelled");
    assert_eq!(cancelled.record.status, RecordStatus::Cancelled);
    assert_eq!(world.emulators.control.appointment_count(), before);
    let twice = world.booking.cancel(&cancelled, actor(None)).await;
    assert!(
        matches!(twice, Err(BookingError::AlreadyCancelled(Change::Cancel))),
        "{twice:?}"
    );
    let move_cancelled = world
        .booking
        .reschedule(&cancelled, starts[0], actor(None))
        .await;
    assert!(
        matches!(
            move_cancelled,
            Err(BookingError::AlreadyCancelled(Change::Move))
        ),
        "{move_cancelled:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_come_before_the_mis_is_asked_to_book() {
    let world = CoreWorld::start().await;
    let (doctor, branch) = world.doctor_and_branch().await;
    let starts = world.free_starts(doctor, branch).await;
    let someone = patient("+79165550003");
    world.emulators.control.reset_mis_calls();

    let past = world
        .booking
        .book(anonymous(
            doctor,
            branch,
            world.clock.now() - Duration::hours(1),
            &someone,
            None,
        ))
        .await;
    assert!(matches!(past, Err(BookingError::StartInPast)), "{past:?}");

    let off_grid = world
        .booking
        .book(anonymous(
            doctor,
            branch,
            starts[0] + Duration::minutes(7),
            &someone,
            None,
        ))
        .await;
    assert!(
        matches!(off_grid, Err(BookingError::NotASlot)),
        "{off_grid:?}"
    );

    let no_doctor = world
        .booking
        .book(anonymous(999_999, branch, starts[0], &someone, None))
        .await;
    assert!(
        matches!(
            no_doctor,
            Err(BookingError::Target(TargetError::NoSuchDoctor))
        ),
        "{no_doctor:?}"
    );
    let no_branch = world
        .booking
        .book(anonymous(doctor, 999_999, starts[0], &someone, None))
        .await;
    assert!(
        matches!(
            no_branch,
            Err(BookingError::Target(TargetError::NoSuchBranch))
        ),
        "{no_branch:?}"
    );
    let other_branch = {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Id {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            id: i64,
        }
        let mut conn = world.booking.db.get().await.expect("connection");
        let ids: Vec<Id> = diesel::sql_query(
            "SELECT id FROM branches WHERE id NOT IN \
             (SELECT branch_id FROM specialist_branches WHERE specialist_id = $1) LIMIT 1",
        )
        .bind::<diesel::sql_types::BigInt, _>(doctor)
        .load(&mut conn)
        .await
        .expect("branches");
        ids[0].id
    };
    let not_there = world
        .booking
        .book(anonymous(doctor, other_branch, starts[0], &someone, None))
        .await;
    assert!(
        matches!(
            not_there,
            Err(BookingError::Target(TargetError::DoctorNotInBranch))
        ),
        "{not_there:?}"
    );
    assert_eq!(
        world.emulators.control.mis_calls("SCHEDULE_REC_RESERVE"),
        0,
        "no refusal reached the MIS"
    );
    assert_eq!(world.emulators.control.mis_calls("CLIENT_ADD"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_injected_clock_decides_what_is_past() {
    let world = CoreWorld::start().await;
    let (doctor, branch) = world.doctor_and_branch().await;
    let starts = world.free_starts(doctor, branch).await;
    let booked = world
        .booking
        .book(anonymous(
            doctor,
            branch,
            starts[0],
            &patient("+79165550004"),
            None,
        ))
        .await
        .expect("booked");

    world.clock.set(starts[0] + Duration::minutes(1));
    let cancel = world.booking.cancel(&booked, actor(None)).await;
    assert!(
        matches!(
            cancel,
            Err(BookingError::NoLongerChangeable(Change::Cancel))
        ),
        "{cancel:?}"
    );
    let reschedule = world
        .booking
        .reschedule(&booked, starts[1], actor(None))
        .await;
    assert!(
        matches!(
            reschedule,
            Err(BookingError::NoLongerChangeable(Change::Move))
        ),
        "{reschedule:?}"
    );
    let late = world
        .booking
        .book(anonymous(
            doctor,
            branch,
            starts[0],
            &patient("+79165550005"),
            None,
        ))
        .await;
    assert!(matches!(late, Err(BookingError::StartInPast)), "{late:?}");
    assert!(!booked.record.is_changeable_at(world.clock.now()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_is_seen_by_its_patient_and_staff_only() {
    let world = CoreWorld::start().await;
    let (doctor, branch) = world.doctor_and_branch().await;
    let starts = world.free_starts(doctor, branch).await;
    let owner = create_user(
        &world,
        "owner@example.ru",
        Role::Patient,
        Some("+79165550006"),
    )
    .await;
    let other = create_user(
        &world,
        "other@example.ru",
        Role::Patient,
        Some("+79165550007"),
    )
    .await;
    let staff = create_user(&world, "desk@example.ru", Role::Staff, None).await;
    let no_phone = create_user(&world, "nophone@example.ru", Role::Patient, None).await;

    let request = |start| sovamed::domain::booking::reserve::UserBooking {
        specialist_id: doctor,
        branch_id: branch,
        start,
        comment: None,
        source: RecordSource::Cabinet,
        keep_answer: None,
        ip: IP,
    };
    let booked = world
        .booking
        .book_for_user(&owner, request(starts[0]))
        .await
        .expect("booked");
    assert_eq!(booked.record.user_id, Some(owner.id));
    let refused = world
        .booking
        .book_for_user(&no_phone, request(starts[1]))
        .await;
    assert!(
        matches!(refused, Err(BookingError::PatientHasNoPhone)),
        "{refused:?}"
    );

    let id = booked.record.id;
    assert!(world.booking.visible_record(&owner, id).await.is_ok());
    assert!(world.booking.visible_record(&staff, id).await.is_ok());
    let hidden = world.booking.visible_record(&other, id).await;
    assert!(
        matches!(hidden, Err(BookingError::RecordNotFound)),
        "{hidden:?}"
    );

    let all = RecordQuery::default();
    let mine = world
        .booking
        .list_records(&owner, &all, PageNo::FIRST)
        .await
        .expect("list");
    assert_eq!(mine.total, 1);
    let theirs = world
        .booking
        .list_records(&other, &all, PageNo::FIRST)
        .await
        .expect("list");
    assert_eq!(theirs.total, 0);
    let desk = world
        .booking
        .list_records(&staff, &all, PageNo::FIRST)
        .await
        .expect("list");
    assert_eq!(desk.total, 1);
    // The branch's calendar day of the visit finds it; the day after does not.
    let day = booked.local_start().date_naive();
    let that_day = RecordQuery {
        date_from: Some(day),
        date_to: Some(day),
        ..RecordQuery::default()
    };
    let next_day = RecordQuery {
        date_from: day.succ_opt(),
        ..RecordQuery::default()
    };
    for (query, expected) in [(that_day, 1), (next_day, 0)] {
        let page = world
            .booking
            .list_records(&staff, &query, PageNo::FIRST)
            .await
            .expect("list");
        assert_eq!(page.total, expected, "{query:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mis_that_fails_leaves_no_record() {
    let world = CoreWorld::start().await;
    let (doctor, branch) = world.doctor_and_branch().await;
    // The grid is cached first, so the slot check passes and the reserve meets the fault.
    let starts = world.free_starts(doctor, branch).await;
    world.emulators.control.set_mis_faults(MisFaults {
        http_500: true,
        ..MisFaults::default()
    });
    let failed = world
        .booking
        .book(anonymous(
            doctor,
            branch,
            starts[0],
            &patient("+79165550008"),
            None,
        ))
        .await;
    assert!(
        matches!(failed, Err(BookingError::MisUnavailable(_))),
        "{failed:?}"
    );
    let staff = create_user(&world, "desk2@example.ru", Role::Staff, None).await;
    let records = world
        .booking
        .list_records(&staff, &RecordQuery::default(), PageNo::FIRST)
        .await
        .expect("list");
    assert_eq!(records.total, 0, "nothing written locally");
    // The intent, written while the MIS was asked for the patient's new card, is settled as
    // failed at once: no appointment was asked for, so nothing is left for the reconciler.
    let mut conn = world.booking.db.get().await.expect("connection");
    let pending = sovamed::db::models::intent::stale_pending(
        &mut conn,
        chrono::Utc::now() + Duration::days(1),
        10,
    )
    .await
    .expect("intents");
    assert!(pending.is_empty(), "{pending:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reconciler_makes_the_local_side_agree_with_the_mis() {
    use sovamed::{
        db::models::{
            intent::{self, NewIntent},
            record,
        },
        domain::values::{IntentKind, IntentState},
    };

    let world = CoreWorld::start().await;
    let (doctor, branch) = world.doctor_and_branch().await;
    let target = world.booking.target(doctor, branch).await.expect("target");
    let starts = world.free_starts(doctor, branch).await;
    let slot = |i: usize| {
        let (booking, target, start) = (world.booking.clone(), target.clone(), starts[i]);
        async move { booking.find_slot(&target, start).await.expect("slot") }
    };
    let (first, second, third) = (slot(0).await, slot(1).await, slot(2).await);
    let (pcode, facts) = visitor_card(
        &world,
        ("Петров", "Пётр"),
        "+79165550051",
        Some("Первичный приём"),
    )
    .await;
    // A crash after the MIS booked the first slot: nothing was written here.
    let schedid = reserve_in_mis(&world, &target, &first, pcode).await;
    let booked_in_mis = open_book_intent(&world, &target, &first, Some(pcode), &facts).await;
    // A crash before the MIS was asked about the second slot.
    let never_booked = open_book_intent(&world, &target, &second, Some(pcode), &facts).await;
    // A crash while the MIS added a new card, the intent written without it: the MIS was
    // never asked for the appointment (the card is written into the intent first), so the
    // reconciler fails the intent without looking, although the MIS does hold an
    // appointment of this patient at that slot.
    reserve_in_mis(&world, &target, &third, pcode).await;
    let card_never_noted = open_book_intent(&world, &target, &third, None, &facts).await;

    // Intents of requests that may still be running are left alone.
    let untouched = world
        .booking
        .reconcile(std::time::Duration::from_secs(3600))
        .await
        .expect("round");
    assert_eq!(untouched, Default::default());

    world.clock.set(chrono::Utc::now() + Duration::seconds(5));
    let settled = world
        .booking
        .reconcile(std::time::Duration::ZERO)
        .await
        .expect("round");
    assert_eq!(
        (settled.completed, settled.failed, settled.deferred),
        (1, 2, 0)
    );

    let mut conn = world.booking.db.get().await.expect("connection");
    let done = intent::find(&mut conn, booked_in_mis)
        .await
        .expect("query")
        .expect("intent");
    assert_eq!(done.state, IntentState::Done);
    let view = record::find_view(&conn, done.record_id.expect("record"))
        .await
        .expect("query")
        .expect("record");
    assert_eq!(view.record.mis_id, schedid);
    assert_eq!(view.record.starts_at, starts[0]);
    assert_eq!(view.record.comment.as_deref(), Some("Первичный приём"));
    let messages = sovamed::db::models::outbox::for_record(&mut conn, view.record.id)
        .await
        .expect("outbox");
    assert_eq!(messages.len(), 1, "the patient gets the booking SMS");
    let failed = intent::find(&mut conn, never_booked)
        .await
        .expect("query")
        .expect("intent");
    assert_eq!(failed.state, IntentState::Failed);
    let without_card = intent::find(&mut conn, card_never_noted)
        .await
        .expect("query")
        .expect("intent");
    assert_eq!(without_card.state, IntentState::Failed);
    assert_eq!(without_card.record_id, None);
    assert_eq!(
        sovamed::db::models::audit_event::count(
            &mut conn,
            "intent_failed",
            &card_never_noted.to_string()
        )
        .await
        .expect("audit"),
        1
    );
    assert_eq!(
        sovamed::db::models::audit_event::count(
            &mut conn,
            "intent_completed",
            &booked_in_mis.to_string()
        )
        .await
        .expect("audit"),
        1
    );

    // A cancel the MIS made before a crash is completed here, with its SMS.
    world
        .booking
        .mis
        .cancel(target.branch_mis_id, schedid, Some(pcode))
        .await
        .expect("cancelled in the MIS");
    let cancel = intent::insert(
        &conn,
        &NewIntent {
            kind: IntentKind::Cancel,
            record_id: Some(view.record.id),
            specialist_id: doctor,
            branch_id: branch,
            starts_at: view.record.starts_at,
            ends_at: view.record.ends_at,
            pcode: Some(pcode),
            mis_id: Some(schedid),
            request: &serde_json::json!({}),
            idempotency_scope: None,
            idempotency_key: None,
            request_hash: None,
        },
    )
    .await
    .expect("intent")
    .id;
    world.clock.set(chrono::Utc::now() + Duration::seconds(5));
    let settled = world
        .booking
        .reconcile(std::time::Duration::ZERO)
        .await
        .expect("round");
    assert_eq!((settled.completed, settled.failed), (1, 0));
    let cancelled = record::find_view(&conn, view.record.id)
        .await
        .expect("query")
        .expect("record");
    assert_eq!(cancelled.record.status, RecordStatus::Cancelled);
    assert_eq!(
        intent::find(&mut conn, cancel)
            .await
            .expect("query")
            .expect("intent")
            .state,
        IntentState::Done
    );
    // Nothing is left to settle.
    world.clock.set(chrono::Utc::now() + Duration::seconds(5));
    assert_eq!(
        world
            .booking
            .reconcile(std::time::Duration::ZERO)
            .await
            .expect("round"),
        Default::default()
    );
}

/// Two writers of one intent at once (two reconciler rounds here; a request and the
/// reconciler in production): the second meets the first's record at the slot and takes it
/// for this booking's own, instead of reading "slot taken" and cancelling the MIS booking
/// both sides hold.
#[tokio::test(flavor = "multi_thread")]
async fn two_writers_of_one_intent_write_one_record_and_keep_the_mis_booking() {
    use sovamed::{db::models::intent, domain::values::IntentState};

    let world = CoreWorld::start().await;
    let (doctor, branch) = world.doctor_and_branch().await;
    let target = world.booking.target(doctor, branch).await.expect("target");
    let starts = world.free_starts(doctor, branch).await;
    let slot = world
        .booking
        .find_slot(&target, starts[0])
        .await
        .expect("slot");
    let (pcode, facts) = visitor_card(&world, ("Орлова", "Анна"), "+79165550061", None).await;
    // The request died after the MIS booked: its intent is pending, the MIS holds the visit.
    let schedid = reserve_in_mis(&world, &target, &slot, pcode).await;
    let pending = open_book_intent(&world, &target, &slot, Some(pcode), &facts).await;
    world.clock.set(chrono::Utc::now() + Duration::seconds(5));

    // The intent's row is held here until both rounds wait for it (the second waits behind
    // the first), so both have read it as pending before either writes (on a loaded machine one round could otherwise finish
    // before the other starts).
    use diesel_async::RunQueryDsl;
    let mut holder = world.booking.db.get().await.expect("connection");
    diesel::sql_query("BEGIN")
        .execute(&mut holder)
        .await
        .expect("begin");
    let holder_pid: i32 = diesel::dsl::sql::<diesel::sql_types::Integer>("SELECT pg_backend_pid()")
        .get_result(&mut holder)
        .await
        .expect("pid");
    diesel::sql_query(format!(
        "SELECT 1 FROM booking_intents WHERE id = {pending} FOR UPDATE"
    ))
    .execute(&mut holder)
    .await
    .expect("held");
    let release = async {
        let mut watch = world.booking.db.get().await.expect("connection");
        for _ in 0..500 {
            let waiting: i64 = diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> {holder_pid} AND cardinality(pg_blocking_pids(pid)) > 0"
            ))
            .get_result(&mut watch)
            .await
            .expect("waiters");
            if waiting >= 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        drop(watch);
        diesel::sql_query("COMMIT")
            .execute(&mut holder)
            .await
            .expect("commit");
    };
    let ((first, second), ()) = tokio::join!(
        async {
            tokio::join!(
                world.booking.reconcile(std::time::Duration::ZERO),
                world.booking.reconcile(std::time::Duration::ZERO),
            )
        },
        release,
    );
    drop(holder);
    let (first, second) = (first.expect("round"), second.expect("round"));
    assert_eq!(
        (
            first.completed + second.completed,
            first.failed + second.failed
        ),
        (2, 0),
        "both find the booking made: {first:?} {second:?}"
    );
    assert!(
        world
            .emulators
            .control
            .appointments()
            .iter()
            .any(|a| a.schedid == schedid),
        "the MIS booking is kept"
    );
    let mut conn = world.booking.db.get().await.expect("connection");
    let done = intent::find(&mut conn, pending)
        .await
        .expect("query")
        .expect("intent");
    assert_eq!(done.state, IntentState::Done);
    let record_id = done.record_id.expect("record");
    let booked: i64 = {
        diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
            "SELECT count(*) FROM records WHERE mis_id = {schedid} AND status = 'booked'"
        ))
        .get_result(&mut conn)
        .await
        .expect("count")
    };
    assert_eq!(booked, 1, "one record");
    let messages = sovamed::db::models::outbox::for_record(&mut conn, record_id)
        .await
        .expect("outbox");
    assert_eq!(messages.len(), 1, "one booking SMS");
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_front_desk_does_in_the_mis_reaches_the_records() {
    use sovamed::{db::models::outbox, emulator::FrontDeskAction};

    let world = CoreWorld::start().await;
    let (doctor, branch) = world.doctor_and_branch().await;
    let starts = world.free_starts(doctor, branch).await;
    let mut views = Vec::new();
    for (i, start) in starts.iter().take(3).enumerate() {
        let someone = patient(&format!("+791655500{:02}", 70 + i));
        views.push(
            world
                .booking
                .book(anonymous(doctor, branch, *start, &someone, None))
                .await
                .expect("booked"),
        );
    }
    // The web's own bookings are in the feed too, and change nothing here.
    let quiet = world.booking.follow_changes().await.expect("poll");
    assert_eq!((quiet.cancelled, quiet.moved, quiet.visited), (0, 0, 0));
    assert_eq!(quiet.unchanged, 3);

    let target = world.booking.target(doctor, branch).await.expect("target");
    let later = starts[5].with_timezone(&target.zone.tz());
    let control = &world.emulators.control;
    assert!(control.front_desk(&FrontDeskAction::Cancel {
        schedid: views[0].record.mis_id
    }));
    assert!(control.front_desk(&FrontDeskAction::Move {
        schedid: views[1].record.mis_id,
        date: later.date_naive(),
        start: later.time(),
    }));
    assert!(control.front_desk(&FrontDeskAction::MarkVisited {
        schedid: views[2].record.mis_id
    }));

    let applied = world.booking.follow_changes().await.expect("poll");
    assert_eq!(
        (
            applied.cancelled,
            applied.moved,
            applied.visited,
            applied.deferred
        ),
        (1, 1, 1, 0)
    );
    let mut conn = world.booking.db.get().await.expect("connection");
    let find = async |conn: &mut diesel_async::AsyncPgConnection, id: i64| {
        sovamed::db::models::record::find_view(conn, id)
            .await
            .expect("query")
            .expect("record")
    };
    let cancelled = find(&mut conn, views[0].record.id).await;
    assert_eq!(cancelled.record.status, RecordStatus::Cancelled);
    let moved = find(&mut conn, views[1].record.id).await;
    assert_eq!(moved.record.starts_at, starts[5]);
    let visited = find(&mut conn, views[2].record.id).await;
    assert_eq!(visited.record.status, RecordStatus::Visited);
    let texts = async |conn: &mut diesel_async::AsyncPgConnection, id: i64| {
        outbox::for_record(conn, id)
            .await
            .expect("outbox")
            .into_iter()
            .map(|m| (m.kind, m.body))
            .collect::<Vec<_>>()
    };
    let to_cancelled = texts(&mut conn, views[0].record.id).await;
    assert!(
        to_cancelled
            .iter()
            .any(|(kind, body)| kind == "cancelled" && body.contains("клиника отменила")),
        "{to_cancelled:?}"
    );
    let to_moved = texts(&mut conn, views[1].record.id).await;
    assert!(
        to_moved
            .iter()
            .any(|(kind, body)| kind == "moved" && body.contains("клиника перенесла")),
        "{to_moved:?}"
    );
    assert_eq!(
        texts(&mut conn, views[2].record.id).await.len(),
        1,
        "no SMS for a visit mark"
    );
    // Every change was confirmed once, after it was applied.
    assert_eq!(control.unaccepted_changes(), 0);
    assert!(control.change_accepts().values().all(|n| *n == 1));
    let again = world.booking.follow_changes().await.expect("poll");
    assert_eq!(again, Default::default());
}

/// A world with one visit booked anonymously on `phone` at the first free start of a
/// doctor, and the doctor's free starts.
async fn booked_visit(
    phone: &str,
) -> (
    CoreWorld,
    Vec<chrono::DateTime<chrono::Utc>>,
    sovamed::db::models::record::RecordView,
) {
    let world = CoreWorld::start().await;
    let (doctor, branch) = world.doctor_and_branch().await;
    let starts = world.free_starts(doctor, branch).await;
    let booked = world
        .booking
        .book(anonymous(doctor, branch, starts[0], &patient(phone), None))
        .await
        .expect("booked");
    (world, starts, booked)
}

/// The SMS bodies the record got, and how many `record_*_by_clinic` audit rows it has.
async fn clinic_traces(world: &CoreWorld, record_id: i64) -> (Vec<String>, i64) {
    use diesel_async::RunQueryDsl;

    let mut conn = world.booking.db.get().await.expect("connection");
    let bodies = sovamed::db::models::outbox::for_record(&mut conn, record_id)
        .await
        .expect("outbox")
        .into_iter()
        .map(|m| m.body)
        .collect();
    let audited: i64 = diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
        "SELECT count(*) FROM audit_events \
          WHERE action LIKE '%by_clinic' AND subject = '{record_id}'"
    ))
    .get_result(&mut conn)
    .await
    .expect("count");
    (bodies, audited)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_patients_own_booking_and_moves_between_two_polls_are_not_the_clinics() {
    let (world, starts, booked) = booked_visit("+79165550081").await;
    let moved = world
        .booking
        .reschedule(&booked, starts[1], actor(None))
        .await
        .expect("moved");
    world
        .booking
        .reschedule(&moved, starts[2], actor(None))
        .await
        .expect("moved again");

    // The feed lists the appointment as it was after each of the three: at the first time,
    // the second, the third. Only the last is how the MIS holds it now.
    let polled = world.booking.follow_changes().await.expect("poll");
    assert_eq!(
        (
            polled.moved,
            polled.cancelled,
            polled.deferred,
            polled.unchanged
        ),
        (0, 0, 0, 3),
        "{polled:?}"
    );
    let conn = world.booking.db.get().await.expect("connection");
    let record = sovamed::db::models::record::find_view(&conn, booked.record.id)
        .await
        .expect("query")
        .expect("record");
    drop(conn);
    assert_eq!(record.record.starts_at, starts[2]);
    let (bodies, audited) = clinic_traces(&world, booked.record.id).await;
    assert_eq!(bodies.len(), 3, "booked, moved, moved: {bodies:?}");
    assert!(
        bodies.iter().all(|b| !b.contains("клиника")),
        "no SMS says the clinic did it: {bodies:?}"
    );
    assert_eq!(audited, 0);
    assert_eq!(world.emulators.control.unaccepted_changes(), 0);
    assert_eq!(
        world.booking.follow_changes().await.expect("poll"),
        Default::default()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feed_list_older_than_the_record_is_not_applied_over_it() {
    let (world, starts, booked) = booked_visit("+79165550082").await;
    // The poll's list (the booking at its first time) is built, then held on its way back
    // while the patient moves the visit: the list is older than the record it meets.
    let control = &world.emulators.control;
    control.set_mis_faults(MisFaults {
        change_list_late_ms: 3_000,
        ..Default::default()
    });
    let lists = control.mis_calls("SCHEDULE_CHANGE_LIST");
    let poll = tokio::spawn({
        let booking = world.booking.clone();
        async move { booking.follow_changes().await }
    });
    for _ in 0..500 {
        if control.mis_calls("SCHEDULE_CHANGE_LIST") > lists {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        control.mis_calls("SCHEDULE_CHANGE_LIST") > lists,
        "the poll asked"
    );
    world
        .booking
        .reschedule(&booked, starts[1], actor(None))
        .await
        .expect("moved");
    assert!(
        !poll.is_finished(),
        "the move was written while the list was held"
    );
    let stale = poll.await.expect("task").expect("poll");
    control.set_mis_faults(MisFaults::default());
    assert_eq!(
        (stale.moved, stale.deferred),
        (0, 1),
        "left for the next poll: {stale:?}"
    );
    let next = world.booking.follow_changes().await.expect("poll");
    assert_eq!(
        (next.moved, next.deferred, next.unchanged),
        (0, 0, 2),
        "{next:?}"
    );
    let conn = world.booking.db.get().await.expect("connection");
    let record = sovamed::db::models::record::find_view(&conn, booked.record.id)
        .await
        .expect("query")
        .expect("record");
    drop(conn);
    assert_eq!(
        record.record.starts_at, starts[1],
        "the patient's move stands"
    );
    let (bodies, audited) = clinic_traces(&world, booked.record.id).await;
    assert_eq!(bodies.len(), 2, "booked, moved: {bodies:?}");
    assert_eq!(audited, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clinic_change_is_written_only_to_the_record_as_the_poll_read_it() {
    use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
    use sovamed::emulator::FrontDeskAction;

    let (world, starts, booked) = booked_visit("+79165550083").await;
    world.booking.follow_changes().await.expect("poll");
    let target = world
        .booking
        .target(booked.record.specialist_id, booked.record.branch_id)
        .await
        .expect("target");
    let later = starts[3].with_timezone(&target.zone.tz());
    assert!(world.emulators.control.front_desk(&FrontDeskAction::Move {
        schedid: booked.record.mis_id,
        date: later.date_naive(),
        start: later.time(),
    }));
    // Another writer holds the record (a change of ours about to commit) while the poll reads
    // it and comes to write the clinic's move; it then commits a new version of the record.
    let mut holder = world.booking.db.get().await.expect("connection");
    let id = booked.record.id;
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT id FROM records WHERE id = {id} FOR UPDATE"
        ))
        .await
        .expect("lock");
    let poll = tokio::spawn({
        let booking = world.booking.clone();
        async move { booking.follow_changes().await }
    });
    let mut watch = world.booking.db.get().await.expect("connection");
    let mut waiting = 0;
    for _ in 0..500 {
        waiting = diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "SELECT count(*) FROM pg_stat_activity \
              WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .get_result(&mut watch)
        .await
        .expect("count");
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    drop(watch);
    assert!(waiting > 0, "the poll waits for the record");
    holder
        .batch_execute(&format!(
            "UPDATE records SET updated_at = now() WHERE id = {id}; COMMIT"
        ))
        .await
        .expect("commit");
    let waited = poll.await.expect("task").expect("poll");
    assert_eq!(
        (waited.moved, waited.deferred),
        (0, 1),
        "decided again next poll: {waited:?}"
    );
    let next = world.booking.follow_changes().await.expect("poll");
    assert_eq!((next.moved, next.deferred), (1, 0), "{next:?}");
    let (bodies, audited) = clinic_traces(&world, id).await;
    assert_eq!(
        bodies
            .iter()
            .filter(|b| b.contains("клиника перенесла"))
            .count(),
        1,
        "{bodies:?}"
    );
    assert_eq!(audited, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_comparison_reports_and_repairs_what_the_feed_missed() {
    use sovamed::emulator::FrontDeskAction;

    let world = CoreWorld::start().await;
    let (doctor, branch) = world.doctor_and_branch().await;
    let starts = world.free_starts(doctor, branch).await;
    let mut views = Vec::new();
    for (i, start) in starts.iter().take(3).enumerate() {
        let someone = patient(&format!("+791655500{:02}", 80 + i));
        views.push(
            world
                .booking
                .book(anonymous(doctor, branch, *start, &someone, None))
                .await
                .expect("booked"),
        );
    }
    let target = world.booking.target(doctor, branch).await.expect("target");
    let later = starts[6].with_timezone(&target.zone.tz());
    let control = &world.emulators.control;
    assert!(control.front_desk(&FrontDeskAction::Cancel {
        schedid: views[0].record.mis_id
    }));
    assert!(control.front_desk(&FrontDeskAction::Move {
        schedid: views[1].record.mis_id,
        date: later.date_naive(),
        start: later.time(),
    }));

    let report = world
        .booking
        .compare_with_mis(14, false)
        .await
        .expect("dry run");
    assert_eq!(
        (report.checked, report.agree, report.cancelled, report.moved),
        (3, 1, 1, 1)
    );
    let untouched = world
        .booking
        .visible_record(
            &create_user(&world, "audit@example.ru", Role::Staff, None).await,
            views[0].record.id,
        )
        .await
        .expect("record");
    assert_eq!(
        untouched.record.status,
        RecordStatus::Booked,
        "a dry run changes nothing"
    );

    let repaired = world
        .booking
        .compare_with_mis(14, true)
        .await
        .expect("repair");
    assert_eq!((repaired.cancelled, repaired.moved), (1, 1));
    let again = world
        .booking
        .compare_with_mis(14, true)
        .await
        .expect("again");
    assert_eq!(
        (again.checked, again.agree, again.cancelled, again.moved),
        (2, 2, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_visit_the_front_desk_books_for_a_cabinet_patient_appears_in_the_cabinet() {
    use sovamed::{emulator::FrontDeskAction, integrations::infoclinica::NewMisPatient};

    let world = CoreWorld::start().await;
    let (doctor, branch) = world.doctor_and_branch().await;
    let starts = world.free_starts(doctor, branch).await;
    let target = world.booking.target(doctor, branch).await.expect("target");
    let owner = create_user(
        &world,
        "caller@example.ru",
        Role::Patient,
        Some("+79165550091"),
    )
    .await;
    let card = |phone: &str| NewMisPatient {
        last_name: "Сидорова".into(),
        first_name: "Анна".into(),
        middle_name: None,
        birth_date: None,
        phone: phone.into(),
        email: None,
    };
    let pcode = world
        .booking
        .mis
        .add_patient(&card("+79165550091"))
        .await
        .expect("card");
    let stranger = world
        .booking
        .mis
        .add_patient(&NewMisPatient {
            last_name: "Другая".into(),
            ..card("+79165550092")
        })
        .await
        .expect("card");
    {
        let mut conn = world.booking.db.get().await.expect("connection");
        sovamed::db::models::user::set_mis_pcode(&mut conn, owner.id, pcode)
            .await
            .expect("card on the account");
    }
    let control = &world.emulators.control;
    for (i, card) in [(3usize, pcode), (4, stranger)] {
        let at = starts[i].with_timezone(&target.zone.tz());
        assert!(control.front_desk(&FrontDeskAction::Create {
            branch_mis_id: target.branch_mis_id,
            doctor_mis_id: target.specialist_mis_id,
            date: at.date_naive(),
            start: at.time(),
            pcode: card,
        }));
    }
    let applied = world.booking.follow_changes().await.expect("poll");
    assert_eq!(
        (applied.booked, applied.unchanged),
        (1, 1),
        "only the cabinet patient's"
    );
    let owners_records = async || {
        world
            .booking
            .list_records(&owner, &RecordQuery::default(), PageNo::FIRST)
            .await
            .expect("list")
    };
    let mine = owners_records().await;
    assert_eq!(mine.total, 1);
    let record = &mine.items[0].record;
    assert_eq!(record.source, RecordSource::Clinic);
    assert_eq!(record.starts_at, starts[3]);
    let mut conn = world.booking.db.get().await.expect("connection");
    let messages = sovamed::db::models::outbox::for_record(&mut conn, record.id)
        .await
        .expect("outbox");
    assert_eq!(messages.len(), 1, "the patient is told of the visit");
    assert_eq!(
        world.booking.follow_changes().await.expect("poll"),
        Default::default()
    );
    drop(conn);

    // The patient's own booking between the MIS's answer and its local write: its intent is
    // pending and the appointment already in the feed. It is not the front desk's booking.
    let slot = world
        .booking
        .find_slot(&target, starts[5])
        .await
        .expect("slot");
    let facts = cabinet_facts(owner.id, "+79165550091");
    open_book_intent(&world, &target, &slot, Some(pcode), &facts).await;
    reserve_in_mis(&world, &target, &slot, pcode).await;
    let in_flight = world.booking.follow_changes().await.expect("poll");
    assert_eq!(
        (in_flight.booked, in_flight.deferred),
        (0, 1),
        "left to the booking that is writing it"
    );
    let mine = owners_records().await;
    assert_eq!(
        mine.total, 1,
        "no second record, and no SMS, for the patient's own booking"
    );
    // The request died there: the reconciler writes its record, and the feed then agrees.
    world.clock.set(chrono::Utc::now() + Duration::seconds(5));
    let settled = world
        .booking
        .reconcile(std::time::Duration::ZERO)
        .await
        .expect("round");
    assert_eq!(settled.completed, 1, "{settled:?}");
    let after = world.booking.follow_changes().await.expect("poll");
    assert_eq!((after.booked, after.unchanged, after.deferred), (0, 1, 0));
    let mine = owners_records().await;
    assert_eq!(mine.total, 2);
    assert!(
        mine.items
            .iter()
            .any(|v| v.record.starts_at == starts[5] && v.record.source == RecordSource::Cabinet)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_booking_of_ours_the_desk_moves_before_its_write_is_not_brought_in_twice() {
    use sovamed::{emulator::FrontDeskAction, integrations::infoclinica::NewMisPatient};

    let world = CoreWorld::start().await;
    let (doctor, branch) = world.doctor_and_branch().await;
    let starts = world.free_starts(doctor, branch).await;
    let target = world.booking.target(doctor, branch).await.expect("target");
    let owner = create_user(
        &world,
        "moved-by-desk@example.ru",
        Role::Patient,
        Some("+79165550093"),
    )
    .await;
    let pcode = world
        .booking
        .mis
        .add_patient(&NewMisPatient {
            last_name: "Сидорова".into(),
            first_name: "Анна".into(),
            middle_name: None,
            birth_date: None,
            phone: "+79165550093".into(),
            email: None,
        })
        .await
        .expect("card");
    {
        let mut conn = world.booking.db.get().await.expect("connection");
        user::set_mis_pcode(&mut conn, owner.id, pcode)
            .await
            .expect("card on the account");
    }
    // The patient's booking has its appointment in the MIS, not yet its record here; the
    // front desk moves the appointment meanwhile. The list holds both items.
    let slot = world
        .booking
        .find_slot(&target, starts[2])
        .await
        .expect("slot");
    let facts = cabinet_facts(owner.id, "+79165550093");
    open_book_intent(&world, &target, &slot, Some(pcode), &facts).await;
    let schedid = reserve_in_mis(&world, &target, &slot, pcode).await;
    let later = starts[4].with_timezone(&target.zone.tz());
    let control = &world.emulators.control;
    assert!(control.front_desk(&FrontDeskAction::Move {
        schedid,
        date: later.date_naive(),
        start: later.time(),
    }));
    let in_flight = world.booking.follow_changes().await.expect("poll");
    assert_eq!(
        (in_flight.booked, in_flight.deferred),
        (0, 2),
        "left to the booking, both items: {in_flight:?}"
    );
    assert_eq!(control.unaccepted_changes(), 2, "the creation comes again");

    // The request died there: the reconciler settles the intent; the feed then agrees.
    world.clock.set(chrono::Utc::now() + Duration::seconds(5));
    world
        .booking
        .reconcile(std::time::Duration::ZERO)
        .await
        .expect("round");
    let after = world.booking.follow_changes().await.expect("poll");
    assert_eq!(after.deferred, 0, "{after:?}");
    assert_eq!(control.unaccepted_changes(), 0);
    let records = world
        .booking
        .list_records(&owner, &RecordQuery::default(), PageNo::FIRST)
        .await
        .expect("list");
    assert_eq!(records.total, 1, "one record of the appointment");
    let record = &records.items[0].record;
    assert_eq!(record.mis_id, schedid);
    assert_eq!(record.starts_at, starts[4], "where the desk moved it");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mis_card_gets_the_name_parts_as_given() {
    use sovamed::domain::values::NamePart;

    let world = CoreWorld::start().await;
    let (doctor, branch) = world.doctor_and_branch().await;
    let starts = world.free_starts(doctor, branch).await;
    let someone = Patient {
        name: FullName::from_parts(
            NamePart::parse("Де ла Круз").expect("surname"),
            NamePart::parse("Мария Луиза").expect("first name"),
            None,
        ),
        ..patient("+79165550099")
    };
    world
        .booking
        .book(anonymous(doctor, branch, starts[0], &someone, None))
        .await
        .expect("booked");
    let card = world
        .emulators
        .control
        .patients()
        .into_iter()
        .find(|p| p.last_name == "Де ла Круз")
        .expect("a card under the whole surname");
    assert_eq!(card.first_name, "Мария Луиза");
    assert_eq!(card.middle_name, "");
}

/// The code queued for the SMS worker (nothing sends in the core world).
async fn queued_code(world: &CoreWorld) -> String {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use sovamed::db::schema::sms_outbox;
    let mut conn = world.booking.db.get().await.expect("connection");
    let body: String = sms_outbox::table
        .filter(sms_outbox::kind.eq("code"))
        .order(sms_outbox::id.desc())
        .select(sms_outbox::body)
        .first(&mut conn)
        .await
        .expect("a code message");
    body.split_whitespace()
        .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
        .expect("six digits")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_lives_ten_minutes_and_its_proof_fifteen_by_the_injected_clock() {
    use sovamed::domain::{
        phones::{ProofProblem, VerifyError},
        values::VerificationPurpose,
    };
    let world = CoreWorld::start().await;
    let phones = &world.booking.phones;
    let phone = Phone::parse("+79165552001").expect("phone");

    let started = phones
        .start(&phone, VerificationPurpose::Booking, IP)
        .await
        .expect("started");
    let code = queued_code(&world).await;
    world
        .clock
        .set(world.clock.now() + Duration::minutes(10) + Duration::seconds(1));
    assert!(matches!(
        phones.confirm(&started.id, &code).await,
        Err(VerifyError::Expired)
    ));

    // Another phone (the 60 s gap between codes is a Redis key on the wall clock), confirmed
    // in time: its proof serves once, and not after 15 minutes.
    let other = Phone::parse("+79165552002").expect("phone");
    let started = phones
        .start(&other, VerificationPurpose::Booking, IP)
        .await
        .expect("started");
    let code = queued_code(&world).await;
    let proof = phones.confirm(&started.id, &code).await.expect("proof");
    assert!(matches!(
        phones.confirm(&started.id, &code).await,
        Err(VerifyError::AlreadyConfirmed)
    ));
    world
        .clock
        .set(world.clock.now() + Duration::minutes(15) + Duration::seconds(1));
    assert!(matches!(
        phones
            .take(
                Some(&proof.token),
                VerificationPurpose::Booking,
                Some(&other)
            )
            .await,
        Err(VerifyError::Proof(ProofProblem::Expired))
    ));
}
