//! Booking a free slot. The MIS owns the slots: the local record and its SMS outbox row are
//! written in one transaction only after the MIS accepted; if that write fails, the MIS
//! booking is cancelled again (compensation) and the caller learns the booking was not kept.

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use fred::{interfaces::KeysInterface, types::Expiration};

use super::{
    Booking, BookingError, BookingTarget, Patient,
    grid::Slot,
    notify::{self, Notice, NoticeFacts},
    target,
};
use crate::{
    db::models::{
        idempotency,
        outbox::{self, NewOutboxMessage},
        record::{self, NewRecord, RecordView},
        user::{self, User},
    },
    domain::{
        audit::{self, Actor},
        values::{Comment, RecordSource},
    },
    integrations::infoclinica::{PatientQuery, ReserveRequest},
};

/// An answer a face wants stored with the record, in the booking's transaction, so a retry
/// of the same request gets it back (the API's `Idempotency-Key`). The core stores it
/// without looking inside.
pub struct AnswerToKeep {
    pub scope: String,
    pub key: String,
    pub request_hash: String,
    pub status: u16,
    pub render: fn(&RecordView) -> serde_json::Value,
}

/// A booking to make.
pub struct BookRequest<'a> {
    pub specialist_id: i64,
    pub branch_id: i64,
    pub start: DateTime<Utc>,
    pub patient: &'a Patient,
    /// The account the record belongs to; `None` for an anonymous booking.
    pub user: Option<&'a User>,
    pub comment: Option<&'a Comment>,
    pub source: RecordSource,
    pub keep_answer: Option<AnswerToKeep>,
    pub actor: Actor,
}

impl Booking {
    /// The slot that starts at `start`: in the future and a free slot of the current grid.
    pub async fn find_slot(
        &self,
        target: &BookingTarget,
        start: DateTime<Utc>,
    ) -> Result<Slot, BookingError> {
        let now = self.clock.now();
        if start <= now {
            return Err(BookingError::StartInPast);
        }
        let date = target.zone.local(&start).date_naive();
        let window = self.schedule.window(&target.grid(), date, date).await?;
        let slot = window
            .days
            .iter()
            .flat_map(|day| day.slots(target.zone.tz(), now))
            .find(|slot| slot.start.with_timezone(&Utc) == start);
        match slot {
            Some(slot) if slot.free => Ok(slot),
            Some(_) => Err(BookingError::SlotTaken),
            None => Err(BookingError::NotASlot),
        }
    }

    /// The doctor in the branch, checked.
    pub async fn target(
        &self,
        specialist_id: i64,
        branch_id: i64,
    ) -> Result<BookingTarget, BookingError> {
        let mut conn = self.conn().await?;
        target::resolve(&mut conn, specialist_id, branch_id).await
    }

    /// Books for a logged-in patient: their name, phone and MIS card.
    pub async fn book_for_user(
        &self,
        user: &User,
        request: UserBooking<'_>,
    ) -> Result<RecordView, BookingError> {
        let patient = Patient::of_user(user)?;
        self.book(BookRequest {
            specialist_id: request.specialist_id,
            branch_id: request.branch_id,
            start: request.start,
            patient: &patient,
            user: Some(user),
            comment: request.comment,
            source: request.source,
            keep_answer: request.keep_answer,
            actor: Actor {
                user_id: Some(user.id),
                ip: request.ip,
            },
        })
        .await
    }

    /// Books for a visitor without an account. Input that is wrong anyway (no such doctor,
    /// not a free slot) is refused before it counts against the limits; what counts is
    /// every attempt that would reach the MIS and the SMS gateway.
    pub async fn book_anonymous(
        &self,
        request: BookRequest<'_>,
    ) -> Result<RecordView, BookingError> {
        let target = self
            .target(request.specialist_id, request.branch_id)
            .await?;
        self.find_slot(&target, request.start).await?;
        self.limits
            .check(request.actor.ip, request.patient.phone.as_str())
            .await?;
        self.book(request).await
    }

    /// Books a free slot: MIS first, then the record and its SMS in one local transaction.
    pub async fn book(&self, request: BookRequest<'_>) -> Result<RecordView, BookingError> {
        let target = self
            .target(request.specialist_id, request.branch_id)
            .await?;
        let slot = self.find_slot(&target, request.start).await?;
        let lock = self.lock_slot(&target, request.start).await?;
        let result = self.book_locked(&target, &request, &slot).await;
        self.unlock(&lock).await;
        self.schedule
            .invalidate(
                target.specialist_id,
                target.branch_id,
                slot.start.date_naive(),
            )
            .await;
        if let Ok(view) = &result {
            self.outbox_wakeup.notify_one();
            audit::append(
                &self.db,
                request.actor,
                "record_booked",
                &view.record.id.to_string(),
            )
            .await;
        }
        result
    }

    /// A short Redis lock per slot: concurrent requests for one slot do not all reach the MIS.
    pub(super) async fn lock_slot(
        &self,
        target: &BookingTarget,
        start: DateTime<Utc>,
    ) -> Result<String, BookingError> {
        let key = self.redis.key(&format!(
            "slotlock:{}:{}:{}",
            target.specialist_id,
            target.branch_id,
            start.timestamp()
        ));
        let taken: Option<String> = self
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
            return Err(BookingError::SlotTaken);
        }
        Ok(key)
    }

    pub(super) async fn unlock(&self, key: &str) {
        let released: Result<i64, _> = self.redis.pool.del(key).await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "slot lock not released; it expires by itself");
        }
    }

    /// The MIS patient card: the user's known one, one found by e-mail, or a new card.
    async fn patient_card(
        &self,
        patient: &Patient,
        user: Option<&User>,
    ) -> Result<i64, BookingError> {
        if let Some(pcode) = user.and_then(|u| u.mis_pcode) {
            return Ok(pcode);
        }
        let found = match user {
            Some(user) => self
                .mis
                .find_patient(&PatientQuery::Email(user.email.clone()))
                .await
                .map_err(BookingError::from_mis)?,
            None => None,
        };
        let pcode = match found {
            Some(pcode) => pcode,
            None => self
                .mis
                .add_patient(&patient.mis_card())
                .await
                .map_err(BookingError::from_mis)?,
        };
        if let Some(user) = user {
            let mut conn = self.conn().await?;
            user::set_mis_pcode(&mut conn, user.id, pcode).await?;
        }
        Ok(pcode)
    }

    async fn book_locked(
        &self,
        target: &BookingTarget,
        request: &BookRequest<'_>,
        slot: &Slot,
    ) -> Result<RecordView, BookingError> {
        let pcode = self.patient_card(request.patient, request.user).await?;
        let schedid = self
            .mis
            .reserve(&reserve_request(target, slot, pcode, None))
            .await
            .map_err(BookingError::from_mis)?;

        match self
            .write_record(target, request, slot, pcode, schedid)
            .await
        {
            Ok(view) => Ok(view),
            Err(e) => {
                // The MIS holds a booking nobody here knows about: give the slot back.
                match self
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
        &self,
        target: &BookingTarget,
        request: &BookRequest<'_>,
        slot: &Slot,
        pcode: i64,
        schedid: i64,
    ) -> Result<RecordView, BookingError> {
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
        let middle = patient.name.middle.as_ref().map(|m| m.as_str());
        let email = patient.email.as_ref().map(|e| e.as_str());
        let new = NewRecord {
            mis_id: schedid,
            specialist_id: target.specialist_id,
            branch_id: target.branch_id,
            starts_at: slot.start.with_timezone(&Utc),
            ends_at: slot.end.with_timezone(&Utc),
            user_id: request.user.map(|u| u.id),
            patient_pcode: pcode,
            patient_last_name: patient.name.last.as_str(),
            patient_first_name: patient.name.first.as_str(),
            patient_middle_name: middle,
            patient_phone: patient.phone.as_str(),
            patient_email: email,
            patient_birth_date: patient.birth_date.map(|d| d.date()),
            comment: request.comment.map(Comment::as_str),
            source: request.source,
        };
        let mut conn = self.conn().await?;
        let view = conn
            .transaction(async |conn| {
                let record = record::insert(conn, &new).await?;
                outbox::insert(
                    conn,
                    &NewOutboxMessage {
                        record_id: Some(record.id),
                        kind: Notice::Booked.kind(),
                        phone: patient.phone.as_str(),
                        body: &body,
                    },
                )
                .await?;
                let view = RecordView {
                    record,
                    specialist_name: target.specialist_name.clone(),
                    branch_name: target.branch_name.clone(),
                    branch_address: target.branch_address.clone(),
                    branch_zone: target.zone,
                };
                if let Some(keep) = &request.keep_answer {
                    idempotency::insert(
                        conn,
                        &keep.scope,
                        &keep.key,
                        &keep.request_hash,
                        i32::from(keep.status),
                        &(keep.render)(&view),
                    )
                    .await?;
                }
                Ok::<_, diesel::result::Error>(view)
            })
            .await;
        match view {
            Ok(view) => Ok(view),
            Err(e) if record::is_slot_conflict(&e) => Err(BookingError::SlotTaken),
            Err(e) => {
                tracing::error!(error = %e, "record not written");
                Err(BookingError::NotKept(e.to_string()))
            }
        }
    }
}

/// The MIS message that books `slot` for card `pcode`, or moves appointment `move_schedid`
/// there.
pub(super) fn reserve_request(
    target: &BookingTarget,
    slot: &Slot,
    pcode: i64,
    move_schedid: Option<i64>,
) -> ReserveRequest {
    ReserveRequest {
        branch_mis_id: target.branch_mis_id,
        doctor_mis_id: target.specialist_mis_id,
        date: slot.start.date_naive(),
        start: slot.start.time(),
        end: slot.end.time(),
        schedident: slot.schedident,
        pcode,
        move_schedid,
    }
}

/// A booking for a logged-in patient (pages and API).
pub struct UserBooking<'a> {
    pub specialist_id: i64,
    pub branch_id: i64,
    pub start: DateTime<Utc>,
    pub comment: Option<&'a Comment>,
    pub source: RecordSource,
    pub keep_answer: Option<AnswerToKeep>,
    pub ip: std::net::IpAddr,
}
