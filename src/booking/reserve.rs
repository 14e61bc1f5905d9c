//! Booking, moving and cancelling records. The MIS owns the slots: the local record and its
//! SMS outbox row are written in one transaction only after the MIS accepted; if that write
//! fails, the MIS booking is cancelled again (compensation) and the caller gets a clear error.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use diesel::QueryDsl;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use fred::{interfaces::KeysInterface, types::Expiration};

use super::{
    grid::Slot,
    notify::{self, Notice, NoticeFacts},
    schedule::{GridTarget, ScheduleError},
    view::record_json,
};
use crate::{
    app::App,
    auth::login::audit,
    db::{
        models::{
            idempotency,
            outbox::{self, NewOutboxMessage},
            record::{self, NewRecord, RecordSource, RecordView},
            user::{self, User},
        },
        schema::branches,
    },
    error::AppError,
    integrations::infoclinica::{MisError, NewMisPatient, PatientQuery, ReserveRequest},
};

/// A doctor in a branch, as booking needs them.
#[derive(Debug, Clone)]
pub struct BookingTarget {
    pub specialist_id: i64,
    pub specialist_mis_id: i64,
    pub specialist_name: String,
    pub branch_id: i64,
    pub branch_mis_id: i64,
    pub branch_name: String,
    pub branch_address: String,
    pub zone: Tz,
}

impl BookingTarget {
    pub fn grid(&self) -> GridTarget {
        GridTarget {
            specialist_id: self.specialist_id,
            specialist_mis_id: self.specialist_mis_id,
            branch_id: self.branch_id,
            branch_mis_id: self.branch_mis_id,
        }
    }
}

/// The doctor, the branch and whether the doctor works there, in one round trip.
#[derive(diesel::QueryableByName)]
struct TargetRow {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    specialist_mis_id: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    specialist_name: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    branch_mis_id: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    branch_name: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    branch_address: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    branch_timezone: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    works_there: bool,
}

/// Loads the doctor and the branch and checks that the doctor works there; 422 naming the
/// field otherwise.
pub async fn resolve_target(
    conn: &mut AsyncPgConnection,
    specialist_id: i64,
    branch_id: i64,
) -> Result<BookingTarget, AppError> {
    // One query (the schedule read path runs it on every request): both sides are looked up
    // on their own, so a missing doctor and a missing branch are told apart.
    let rows: Vec<TargetRow> = diesel::sql_query(
        "SELECT s.mis_id AS specialist_mis_id, s.full_name AS specialist_name, \
                b.mis_id AS branch_mis_id, b.name AS branch_name, b.address AS branch_address, \
                b.timezone AS branch_timezone, \
                EXISTS (SELECT 1 FROM specialist_branches sb WHERE sb.specialist_id = $1 AND sb.branch_id = $2) AS works_there \
         FROM (SELECT 1) AS one \
         LEFT JOIN specialists s ON s.id = $1 AND s.active \
         LEFT JOIN branches b ON b.id = $2 AND b.active",
    )
    .bind::<diesel::sql_types::BigInt, _>(specialist_id)
    .bind::<diesel::sql_types::BigInt, _>(branch_id)
    .load(conn)
    .await?;
    let row = rows.into_iter().next().ok_or(AppError::NotFound)?;
    let (Some(specialist_mis_id), Some(specialist_name)) =
        (row.specialist_mis_id, row.specialist_name)
    else {
        return Err(AppError::field("specialist_id", "Врач не найден"));
    };
    let (Some(branch_mis_id), Some(branch_name), Some(branch_address), Some(zone)) = (
        row.branch_mis_id,
        row.branch_name,
        row.branch_address,
        row.branch_timezone,
    ) else {
        return Err(AppError::field("branch_id", "Филиал не найден"));
    };
    if !row.works_there {
        return Err(AppError::field(
            "branch_id",
            "Врач не принимает в этом филиале",
        ));
    }
    Ok(BookingTarget {
        specialist_id,
        specialist_mis_id,
        specialist_name,
        branch_id,
        branch_mis_id,
        branch_name,
        branch_address,
        zone: zone.parse().unwrap_or(Tz::Europe__Moscow),
    })
}

/// Maps an MIS failure of a booking operation.
pub fn mis_error(e: MisError) -> AppError {
    if e.is_slot_taken() {
        return slot_taken();
    }
    match e {
        MisError::Failed { comment, .. } => AppError::Conflict {
            code: "conflict",
            message: format!("МИС отказала: {comment}"),
        },
        other => {
            tracing::warn!(error = %other, "MIS call failed");
            AppError::Unavailable {
                what: "МИС (медицинская информационная система)",
                code: "mis_unavailable",
            }
        }
    }
}

pub fn slot_taken() -> AppError {
    AppError::Conflict {
        code: "slot_taken",
        message: "К сожалению, выбранное время уже занято. Выберите другое время.".into(),
    }
}

fn schedule_error(e: ScheduleError) -> AppError {
    match e {
        ScheduleError::NoCopy(e) => mis_error(e),
        ScheduleError::Database(e) => {
            tracing::warn!(error = %e, "schedule store");
            AppError::unavailable("database")
        }
    }
}

/// The slot that starts at `start`: it must be in the future and a free slot of the current
/// grid (422 on `start` otherwise; 409 when it exists but is taken).
pub async fn find_slot(
    app: &App,
    target: &BookingTarget,
    start: DateTime<Utc>,
) -> Result<Slot, AppError> {
    let now = Utc::now();
    if start <= now {
        return Err(AppError::field("start", "Время приёма уже прошло"));
    }
    let date: NaiveDate = start.with_timezone(&target.zone).date_naive();
    let window = app
        .booking
        .schedule
        .window(&target.grid(), date, date)
        .await
        .map_err(schedule_error)?;
    let slot = window
        .days
        .iter()
        .flat_map(|day| day.slots(target.zone, now))
        .find(|slot| slot.start.with_timezone(&Utc) == start);
    match slot {
        Some(slot) if slot.free => Ok(slot),
        Some(_) => Err(slot_taken()),
        None => Err(AppError::field(
            "start",
            "В это время врач не ведёт приём: выберите время из расписания",
        )),
    }
}

/// The patient a record is for.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PatientDetails {
    pub last_name: String,
    pub first_name: String,
    pub middle_name: Option<String>,
    /// E.164.
    pub phone: String,
    pub birth_date: Option<NaiveDate>,
    pub email: Option<String>,
}

impl PatientDetails {
    /// From a cabinet account: the full name is "Фамилия Имя Отчество".
    pub fn of_user(user: &User) -> Result<Self, AppError> {
        let mut parts = user.full_name.split_whitespace();
        let last_name = parts.next().unwrap_or_default().to_owned();
        let first_name = parts.next().unwrap_or("-").to_owned();
        let middle: Vec<&str> = parts.collect();
        let phone = user.phone.clone().ok_or_else(|| {
            AppError::field("phone", "Укажите телефон в профиле, чтобы записаться")
        })?;
        Ok(Self {
            last_name,
            first_name,
            middle_name: (!middle.is_empty()).then(|| middle.join(" ")),
            phone,
            birth_date: user.birth_date,
            email: Some(user.email.clone()),
        })
    }

    fn mis_card(&self) -> NewMisPatient {
        NewMisPatient {
            last_name: self.last_name.clone(),
            first_name: self.first_name.clone(),
            middle_name: self.middle_name.clone(),
            birth_date: self.birth_date,
            phone: self.phone.clone(),
            email: self.email.clone(),
        }
    }
}

/// The MIS patient card: the user's known one, one found by e-mail, or a new card.
async fn patient_card(
    app: &App,
    patient: &PatientDetails,
    user: Option<&User>,
) -> Result<i64, AppError> {
    if let Some(pcode) = user.and_then(|u| u.mis_pcode) {
        return Ok(pcode);
    }
    let mis = &app.booking.mis;
    let found = match user {
        Some(user) => mis
            .find_patient(&PatientQuery::Email(user.email.clone()))
            .await
            .map_err(mis_error)?,
        None => None,
    };
    let pcode = match found {
        Some(pcode) => pcode,
        None => mis
            .add_patient(&patient.mis_card())
            .await
            .map_err(mis_error)?,
    };
    if let Some(user) = user {
        let mut conn = app.db().await?;
        user::set_mis_pcode(&mut conn, user.id, pcode).await?;
    }
    Ok(pcode)
}

/// Stores the first answer for an `Idempotency-Key`, in the booking's transaction.
pub struct IdempotencyWrite {
    pub scope: String,
    pub key: String,
    pub request_hash: String,
}

/// A booking to make.
pub struct BookRequest<'a> {
    pub target: &'a BookingTarget,
    pub start: DateTime<Utc>,
    pub patient: &'a PatientDetails,
    pub user: Option<&'a User>,
    pub comment: Option<&'a str>,
    pub source: RecordSource,
    pub idempotency: Option<IdempotencyWrite>,
    /// The client's address, for the audit trail.
    pub ip: std::net::IpAddr,
}

/// A short Redis lock per slot: concurrent requests for one slot do not all reach the MIS.
async fn lock_slot(
    app: &App,
    target: &BookingTarget,
    start: DateTime<Utc>,
) -> Result<String, AppError> {
    let key = app.redis.key(&format!(
        "slotlock:{}:{}:{}",
        target.specialist_id,
        target.branch_id,
        start.timestamp()
    ));
    let taken: Option<String> = app
        .redis
        .pool
        .set(
            &key,
            "1",
            Some(Expiration::PX(30_000)),
            Some(fred::types::SetOptions::NX),
            false,
        )
        .await?;
    if taken.is_none() {
        return Err(slot_taken());
    }
    Ok(key)
}

async fn unlock(app: &App, key: &str) {
    let released: Result<i64, _> = app.redis.pool.del(key).await;
    if let Err(e) = released {
        tracing::warn!(error = %e, "slot lock not released; it expires by itself");
    }
}

/// Books a free slot: MIS first, then the record and its SMS in one local transaction.
pub async fn book(app: &App, request: BookRequest<'_>) -> Result<RecordView, AppError> {
    let slot = find_slot(app, request.target, request.start).await?;
    let lock = lock_slot(app, request.target, request.start).await?;
    let result = book_locked(app, &request, &slot).await;
    unlock(app, &lock).await;
    let date = slot.start.date_naive();
    app.booking
        .schedule
        .invalidate(request.target.specialist_id, request.target.branch_id, date)
        .await;
    if let Ok(view) = &result {
        app.booking.outbox_wakeup.notify_one();
        let actor = request.user.map(|u| u.id);
        audit(
            app,
            actor,
            "record_booked",
            &view.record.id.to_string(),
            request.ip,
        )
        .await;
    }
    result
}

async fn book_locked(
    app: &App,
    request: &BookRequest<'_>,
    slot: &Slot,
) -> Result<RecordView, AppError> {
    let target = request.target;
    let pcode = patient_card(app, request.patient, request.user).await?;
    let schedid = app
        .booking
        .mis
        .reserve(&ReserveRequest {
            branch_mis_id: target.branch_mis_id,
            doctor_mis_id: target.specialist_mis_id,
            date: slot.start.date_naive(),
            start: slot.start.time(),
            end: slot.end.time(),
            schedident: slot.schedident,
            pcode,
            move_schedid: None,
        })
        .await
        .map_err(mis_error)?;

    let written = write_record(app, request, slot, pcode, schedid).await;
    match written {
        Ok(view) => Ok(view),
        Err(e) => {
            // The MIS holds a booking nobody here knows about: give the slot back.
            match app
                .booking
                .mis
                .cancel(target.branch_mis_id, schedid, Some(pcode))
                .await
            {
                Ok(()) => tracing::warn!(
                    schedid,
                    "local write failed; the MIS booking was cancelled again"
                ),
                Err(cancel) => {
                    tracing::error!(schedid, error = %cancel, "local write failed and the MIS booking could not be cancelled")
                }
            }
            Err(e)
        }
    }
}

async fn write_record(
    app: &App,
    request: &BookRequest<'_>,
    slot: &Slot,
    pcode: i64,
    schedid: i64,
) -> Result<RecordView, AppError> {
    let target = request.target;
    let patient = request.patient;
    let body = notify::text(
        Notice::Booked,
        &NoticeFacts {
            doctor: &target.specialist_name,
            branch: &target.branch_name,
            address: &target.branch_address,
            start: slot.start,
        },
    );
    let new = NewRecord {
        mis_id: schedid,
        specialist_id: target.specialist_id,
        branch_id: target.branch_id,
        starts_at: slot.start.with_timezone(&Utc),
        ends_at: slot.end.with_timezone(&Utc),
        user_id: request.user.map(|u| u.id),
        patient_pcode: pcode,
        patient_last_name: &patient.last_name,
        patient_first_name: &patient.first_name,
        patient_middle_name: patient.middle_name.as_deref(),
        patient_phone: &patient.phone,
        patient_email: patient.email.as_deref(),
        patient_birth_date: patient.birth_date,
        comment: request.comment,
        source: request.source.as_str(),
    };
    let mut conn = app.db().await?;
    let view = conn
        .transaction(async |conn| {
            let record = record::insert(conn, &new).await?;
            outbox::insert(
                conn,
                &NewOutboxMessage {
                    record_id: Some(record.id),
                    kind: Notice::Booked.kind(),
                    phone: &patient.phone,
                    body: &body,
                },
            )
            .await?;
            let view = RecordView {
                record,
                specialist_name: target.specialist_name.clone(),
                branch_name: target.branch_name.clone(),
                branch_address: target.branch_address.clone(),
                branch_timezone: target.zone.name().to_owned(),
            };
            if let Some(idem) = &request.idempotency {
                let answer = serde_json::json!({ "record": record_json(&view) });
                idempotency::insert(
                    conn,
                    &idem.scope,
                    &idem.key,
                    &idem.request_hash,
                    201,
                    &answer,
                )
                .await?;
            }
            Ok::<_, diesel::result::Error>(view)
        })
        .await;
    match view {
        Ok(view) => Ok(view),
        Err(e) if record::is_slot_conflict(&e) => Err(slot_taken()),
        Err(e) => {
            tracing::error!(error = %e, "record not written");
            Err(AppError::Unavailable {
                what: "база данных: запись не сохранена, бронь в МИС снята",
                code: "service_unavailable",
            })
        }
    }
}

fn facts(view: &RecordView) -> (String, String, String, DateTime<Tz>) {
    (
        view.specialist_name.clone(),
        view.branch_name.clone(),
        view.branch_address.clone(),
        view.local_start(),
    )
}

/// Cancels a booked, future record in the MIS and locally, and queues the SMS.
pub async fn cancel(
    app: &App,
    view: &RecordView,
    by: Option<i64>,
    ip: std::net::IpAddr,
) -> Result<RecordView, AppError> {
    let record = &view.record;
    if !record.is_active() {
        return Err(AppError::Conflict {
            code: "conflict",
            message: "Запись уже отменена".into(),
        });
    }
    if record.starts_at <= Utc::now() {
        return Err(AppError::Conflict {
            code: "conflict",
            message: "Приём уже прошёл: отменить его нельзя".into(),
        });
    }
    match app
        .booking
        .mis
        .cancel(
            branch_mis_id(app, record.branch_id).await?,
            record.mis_id,
            Some(record.patient_pcode),
        )
        .await
    {
        Ok(()) => {}
        // "Not found" in the MIS: it is already gone there, so the local record follows.
        Err(MisError::Failed { comment, .. }) => {
            tracing::warn!(record = record.id, comment, "MIS had no such booking")
        }
        Err(e) => return Err(mis_error(e)),
    }
    let (doctor, branch, address, start) = facts(view);
    let body = notify::text(
        Notice::Cancelled,
        &NoticeFacts {
            doctor: &doctor,
            branch: &branch,
            address: &address,
            start,
        },
    );
    let mut conn = app.db().await?;
    let id = record.id;
    let phone = record.patient_phone.clone();
    let updated = conn
        .transaction(async |conn| {
            let updated = record::mark_cancelled(conn, id, by).await?;
            if updated.is_some() {
                outbox::insert(
                    conn,
                    &NewOutboxMessage {
                        record_id: Some(id),
                        kind: Notice::Cancelled.kind(),
                        phone: &phone,
                        body: &body,
                    },
                )
                .await?;
            }
            Ok::<_, diesel::result::Error>(updated)
        })
        .await?
        .ok_or(AppError::Conflict {
            code: "conflict",
            message: "Запись уже отменена".into(),
        })?;
    app.booking
        .schedule
        .invalidate(record.specialist_id, record.branch_id, start.date_naive())
        .await;
    app.booking.outbox_wakeup.notify_one();
    audit(app, by, "record_cancelled", &id.to_string(), ip).await;
    Ok(RecordView {
        record: updated,
        ..view.clone()
    })
}

/// Moves a booked, future record to another free slot of the same doctor and branch.
pub async fn reschedule(
    app: &App,
    view: &RecordView,
    new_start: DateTime<Utc>,
    by: Option<i64>,
    ip: std::net::IpAddr,
) -> Result<RecordView, AppError> {
    let record = &view.record;
    if !record.is_active() {
        return Err(AppError::Conflict {
            code: "conflict",
            message: "Запись отменена: перенести её нельзя".into(),
        });
    }
    if record.starts_at <= Utc::now() {
        return Err(AppError::Conflict {
            code: "conflict",
            message: "Приём уже прошёл: перенести его нельзя".into(),
        });
    }
    if new_start == record.starts_at {
        return Err(AppError::field("start", "Это то же самое время"));
    }
    let mut conn = app.db().await?;
    let target = resolve_target(&mut conn, record.specialist_id, record.branch_id).await?;
    drop(conn);
    let slot = find_slot(app, &target, new_start).await?;
    let lock = lock_slot(app, &target, new_start).await?;
    let moved = app
        .booking
        .mis
        .reserve(&ReserveRequest {
            branch_mis_id: target.branch_mis_id,
            doctor_mis_id: target.specialist_mis_id,
            date: slot.start.date_naive(),
            start: slot.start.time(),
            end: slot.end.time(),
            schedident: slot.schedident,
            pcode: record.patient_pcode,
            move_schedid: Some(record.mis_id),
        })
        .await
        .map_err(mis_error);
    let result = match moved {
        Ok(schedid) => {
            let body = notify::text(
                Notice::Moved,
                &NoticeFacts {
                    doctor: &target.specialist_name,
                    branch: &target.branch_name,
                    address: &target.branch_address,
                    start: slot.start,
                },
            );
            let mut conn = app.db().await?;
            let (id, phone) = (record.id, record.patient_phone.clone());
            let (starts_at, ends_at) =
                (slot.start.with_timezone(&Utc), slot.end.with_timezone(&Utc));
            let written = conn
                .transaction(async |conn| {
                    let updated = record::mark_moved(conn, id, schedid, starts_at, ends_at).await?;
                    if updated.is_some() {
                        outbox::insert(
                            conn,
                            &NewOutboxMessage {
                                record_id: Some(id),
                                kind: Notice::Moved.kind(),
                                phone: &phone,
                                body: &body,
                            },
                        )
                        .await?;
                    }
                    Ok::<_, diesel::result::Error>(updated)
                })
                .await;
            match written {
                Ok(Some(updated)) => Ok(RecordView {
                    record: updated,
                    ..view.clone()
                }),
                Ok(None) => Err(AppError::Conflict {
                    code: "conflict",
                    message: "Запись изменилась, обновите страницу".into(),
                }),
                Err(e) if record::is_slot_conflict(&e) => Err(slot_taken()),
                Err(e) => {
                    tracing::error!(error = %e, record = record.id, "move not written locally; moving back in the MIS");
                    let back = app
                        .booking
                        .mis
                        .reserve(&ReserveRequest {
                            branch_mis_id: target.branch_mis_id,
                            doctor_mis_id: target.specialist_mis_id,
                            date: view.local_start().date_naive(),
                            start: view.local_start().time(),
                            end: view.local_end().time(),
                            schedident: slot.schedident,
                            pcode: record.patient_pcode,
                            move_schedid: Some(schedid),
                        })
                        .await;
                    if let Err(e) = back {
                        tracing::error!(error = %e, record = record.id, "could not move the MIS booking back");
                    }
                    Err(AppError::unavailable("database"))
                }
            }
        }
        Err(e) => Err(e),
    };
    unlock(app, &lock).await;
    app.booking
        .schedule
        .invalidate(
            record.specialist_id,
            record.branch_id,
            view.local_start().date_naive(),
        )
        .await;
    app.booking
        .schedule
        .invalidate(
            record.specialist_id,
            record.branch_id,
            slot.start.date_naive(),
        )
        .await;
    if result.is_ok() {
        app.booking.outbox_wakeup.notify_one();
        audit(app, by, "record_moved", &record.id.to_string(), ip).await;
    }
    result
}

async fn branch_mis_id(app: &App, branch_id: i64) -> Result<i64, AppError> {
    let mut conn = app.db().await?;
    Ok(branches::table
        .find(branch_id)
        .select(branches::mis_id)
        .first(&mut conn)
        .await?)
}
