//! Cancelling and moving a record. As with a booking, an intent is written first, the MIS
//! goes next, and the record, its SMS and the intent's `done` follow in one local
//! transaction; a move whose local write fails is moved back in the MIS, and whatever cannot
//! be undone at once is completed by the reconciler from the intent.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use diesel::QueryDsl;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::{
    Booking, BookingError, BookingTarget, Change, grid::Slot, notify::Notice,
    reserve::reserve_request,
};
use crate::{
    db::{
        models::{
            booked,
            intent::{self, NewIntent},
            outbox::{self, NewOutboxMessage},
            record::{self, Record, RecordView},
        },
        schema::branches,
    },
    domain::{
        audit::{self, Actor},
        values::{CancelReason, IntentKind, IntentState, RecordStatus},
    },
    integrations::infoclinica::MisError,
};

/// May `record` still be cancelled or moved at `now`?
pub fn check_changeable(
    record: &Record,
    change: Change,
    now: DateTime<Utc>,
) -> Result<(), BookingError> {
    match record.status {
        RecordStatus::Cancelled => Err(BookingError::AlreadyCancelled(change)),
        RecordStatus::Visited | RecordStatus::NoShow => {
            Err(BookingError::NoLongerChangeable(change))
        }
        RecordStatus::Booked if !record.is_changeable_at(now) => {
            Err(BookingError::NoLongerChangeable(change))
        }
        RecordStatus::Booked => Ok(()),
    }
}

impl Booking {
    /// Cancels a booked, future record in the MIS and locally, and queues the SMS. Like a
    /// booking, it runs to its end in a task of its own, through an intent.
    pub async fn cancel(
        &self,
        view: &RecordView,
        actor: Actor,
    ) -> Result<RecordView, BookingError> {
        self.cancel_giving_reason(view, actor, None).await
    }

    /// [`Booking::cancel`], keeping the patient's reason with the record (and in the intent,
    /// so that a cancel the reconciler completes keeps it too).
    pub async fn cancel_giving_reason(
        &self,
        view: &RecordView,
        actor: Actor,
        reason: Option<&CancelReason>,
    ) -> Result<RecordView, BookingError> {
        check_changeable(&view.record, Change::Cancel, self.clock.now())?;
        let (this, view) = (self.clone(), view.clone());
        let reason = reason.map(|r| r.as_str().to_owned());
        audit::spawn_in_request(async move {
            let result = this.cancel_job(&view, actor, reason.as_deref()).await;
            if let Ok(cancelled) = &result {
                this.schedule
                    .invalidate(
                        view.record.specialist_id,
                        view.record.branch_id,
                        view.local_start().date_naive(),
                    )
                    .await;
                this.outbox_wakeup.notify_one();
                audit::append(
                    &this.db,
                    actor,
                    "record_cancelled",
                    &cancelled.record.id.to_string(),
                )
                .await;
            }
            result
        })
        .await
        .map_err(|e| BookingError::Interrupted(e.to_string()))?
    }

    async fn cancel_job(
        &self,
        view: &RecordView,
        actor: Actor,
        reason: Option<&str>,
    ) -> Result<RecordView, BookingError> {
        let record = &view.record;
        let branch_mis_id = self.branch_mis_id(record.branch_id).await?;
        let intent = self
            .open_intent(&NewIntent {
                kind: IntentKind::Cancel,
                record_id: Some(record.id),
                specialist_id: record.specialist_id,
                branch_id: record.branch_id,
                starts_at: record.starts_at,
                ends_at: record.ends_at,
                pcode: Some(record.patient_pcode),
                mis_id: Some(record.mis_id),
                request: &serde_json::json!({ "actor_user_id": actor.user_id, "reason": reason }),
                idempotency_scope: None,
                idempotency_key: None,
                request_hash: None,
            })
            .await?;
        match self
            .mis
            .cancel(branch_mis_id, record.mis_id, Some(record.patient_pcode))
            .await
        {
            Ok(()) => {}
            // "Not found" in the MIS: it is already gone there, so the local record follows.
            Err(MisError::Failed { comment, .. }) => {
                tracing::warn!(record = record.id, comment, "MIS had no such booking")
            }
            Err(e) => {
                let error = BookingError::from_mis(e);
                self.settle_after_mis_error(intent, &error).await;
                return Err(error);
            }
        }
        match self.write_cancel(intent, view, actor.user_id, reason).await {
            Ok(Some(updated)) => Ok(updated),
            Ok(None) => Err(BookingError::AlreadyCancelled(Change::Cancel)),
            Err(e) => {
                // The MIS has cancelled; only the local side is missing, and the reconciler
                // completes it from the intent.
                tracing::error!(record = record.id, intent, error = %e, "cancel not written locally; the reconciler will complete it");
                self.keep_intent_pending(intent, &e.to_string()).await;
                Err(BookingError::Deferred(e.to_string()))
            }
        }
    }

    /// Marks the record cancelled (with the patient's reason, if any), queues the SMS and
    /// resolves the intent, in one transaction; `None` when the record was cancelled already
    /// (the intent is done all the same: both sides agree).
    pub(super) async fn write_cancel(
        &self,
        intent: i64,
        view: &RecordView,
        by: Option<i64>,
        reason: Option<&str>,
    ) -> Result<Option<RecordView>, BookingError> {
        let body =
            self.rules
                .notice_text(Notice::Cancelled, view.place(), view.local_start(), None);
        let (id, phone) = (view.record.id, view.record.patient_phone.clone());
        let mut conn = self.conn().await?;
        let written = conn
            .transaction(async |conn| {
                if !intent::lock_pending(conn, intent).await? {
                    return Err(diesel::result::Error::RollbackTransaction);
                }
                let updated = record::mark_cancelled(conn, id, by, reason).await?;
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
                intent::resolve(conn, intent, IntentState::Done, Some(id), None).await?;
                Ok::<_, diesel::result::Error>(updated)
            })
            .await;
        match written {
            Ok(updated) => Ok(updated.map(|record| RecordView {
                record,
                ..view.clone()
            })),
            Err(diesel::result::Error::RollbackTransaction) => {
                drop(conn);
                self.resolved_elsewhere(intent).await.map(Some)
            }
            Err(e) if booked::outcome_unknown(&e) => {
                drop(conn);
                self.after_lost_answer(intent, e, BookingError::from)
                    .await
                    .map(Some)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Moves a booked, future record to another free slot of the same doctor and branch,
    /// through an intent and in a task of its own, like a booking.
    pub async fn reschedule(
        &self,
        view: &RecordView,
        new_start: DateTime<Utc>,
        actor: Actor,
    ) -> Result<RecordView, BookingError> {
        let record = &view.record;
        check_changeable(record, Change::Move, self.clock.now())?;
        if new_start == record.starts_at {
            return Err(BookingError::SameTime);
        }
        let target = self.target(record.specialist_id, record.branch_id).await?;
        let slot = self.find_slot(&target, new_start).await?;
        let lock = self.lock_slot(&target, new_start).await?;
        let (this, view) = (self.clone(), view.clone());
        audit::spawn_in_request(async move {
            let result = this.move_job(&view, &target, &slot).await;
            this.unlock(&lock).await;
            for day in [view.local_start().date_naive(), slot.start.date_naive()] {
                this.schedule
                    .invalidate(view.record.specialist_id, view.record.branch_id, day)
                    .await;
            }
            if result.is_ok() {
                this.schedule
                    .forget_free_start(
                        view.record.specialist_id,
                        view.record.branch_id,
                        &slot.start,
                    )
                    .await;
                this.outbox_wakeup.notify_one();
                audit::append(&this.db, actor, "record_moved", &view.record.id.to_string()).await;
            }
            result
        })
        .await
        .map_err(|e| BookingError::Interrupted(e.to_string()))?
    }

    async fn move_job(
        &self,
        view: &RecordView,
        target: &BookingTarget,
        slot: &Slot,
    ) -> Result<RecordView, BookingError> {
        let record = &view.record;
        let intent = self
            .open_intent(&NewIntent {
                kind: IntentKind::Move,
                record_id: Some(record.id),
                specialist_id: record.specialist_id,
                branch_id: record.branch_id,
                starts_at: slot.start.with_timezone(&Utc),
                ends_at: slot.end.with_timezone(&Utc),
                pcode: Some(record.patient_pcode),
                mis_id: Some(record.mis_id),
                request: &serde_json::json!({
                    "from_starts_at": record.starts_at,
                    "from_ends_at": record.ends_at,
                }),
                idempotency_scope: None,
                idempotency_key: None,
                request_hash: None,
            })
            .await?;
        let moved = self
            .mis
            .reserve(&reserve_request(
                target,
                slot,
                record.patient_pcode,
                Some(record.mis_id),
            ))
            .await;
        let schedid = match moved {
            Ok(schedid) => schedid,
            Err(e) => {
                let error = BookingError::from_mis(e);
                self.settle_after_mis_error(intent, &error).await;
                return Err(error);
            }
        };
        self.note_mis_id(intent, schedid).await;
        let written = self
            .write_move(intent, view, target, (slot.start, slot.end), schedid)
            .await;
        match written {
            Ok(Some(updated)) => Ok(updated),
            // The local move may be written: the MIS keeps the new time (see
            // `after_lost_answer`).
            Err(e @ BookingError::Deferred(_)) => Err(e),
            outcome => {
                let error = match outcome {
                    Ok(_) => BookingError::RecordChanged,
                    Err(BookingError::Database(e)) => BookingError::MoveNotKept(e.to_string()),
                    Err(e) => e,
                };
                tracing::error!(error = %error, record = record.id, intent, "move not written locally; moving back in the MIS");
                match self.move_back(view, target, schedid).await {
                    Ok(()) => {
                        self.fail_intent(intent, &error.to_string()).await;
                        Err(error)
                    }
                    Err(back) => {
                        tracing::error!(error = %back, record = record.id, intent, "could not move the MIS booking back; the reconciler will complete the move");
                        self.keep_intent_pending(intent, &format!("{error}; move back: {back}"))
                            .await;
                        Err(BookingError::Deferred(error.to_string()))
                    }
                }
            }
        }
    }

    /// Moves the MIS appointment back to the record's interval, found in the grid of its day.
    async fn move_back(
        &self,
        view: &RecordView,
        target: &BookingTarget,
        schedid: i64,
    ) -> Result<(), BookingError> {
        let day = view.local_start().date_naive();
        let window = self.schedule.window(&target.grid(), day, day).await?;
        let old = window
            .days
            .iter()
            .flat_map(|d| d.slots(target.zone.tz(), self.clock.now()))
            .find(|s| s.start.with_timezone(&Utc) == view.record.starts_at)
            .ok_or(BookingError::NotASlot)?;
        self.mis
            .reserve(&reserve_request(
                target,
                &old,
                view.record.patient_pcode,
                Some(schedid),
            ))
            .await
            .map(|_| ())
            .map_err(BookingError::from_mis)
    }

    /// Moves the record, queues the SMS and resolves the intent, in one transaction; `None`
    /// when the record is no longer booked.
    pub(super) async fn write_move(
        &self,
        intent: i64,
        view: &RecordView,
        target: &BookingTarget,
        (start, end): (DateTime<Tz>, DateTime<Tz>),
        schedid: i64,
    ) -> Result<Option<RecordView>, BookingError> {
        let link = self
            .rules
            .manage_link(view.record.id, view.record.user_id, None);
        let body = self
            .rules
            .notice_text(Notice::Moved, target.place(), start, link.as_deref());
        let (id, phone) = (view.record.id, view.record.patient_phone.clone());
        let (starts_at, ends_at) = (start.with_timezone(&Utc), end.with_timezone(&Utc));
        let mut conn = self.conn().await?;
        let written = conn
            .transaction(async |conn| {
                if !intent::lock_pending(conn, intent).await? {
                    return Err(diesel::result::Error::RollbackTransaction);
                }
                let updated = record::mark_moved(conn, id, schedid, starts_at, ends_at).await?;
                if updated.is_none() {
                    return Ok(None);
                }
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
                intent::resolve(conn, intent, IntentState::Done, Some(id), None).await?;
                Ok::<_, diesel::result::Error>(updated)
            })
            .await;
        match written {
            Ok(updated) => Ok(updated.map(|record| RecordView {
                record,
                ..view.clone()
            })),
            Err(diesel::result::Error::RollbackTransaction) => {
                drop(conn);
                self.resolved_elsewhere(intent).await.map(Some)
            }
            Err(e) if record::is_slot_conflict(&e) => Err(BookingError::SlotTaken),
            Err(e) if booked::outcome_unknown(&e) => {
                drop(conn);
                self.after_lost_answer(intent, e, BookingError::from)
                    .await
                    .map(Some)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn branch_mis_id(&self, branch_id: i64) -> Result<i64, BookingError> {
        let mut conn = self.conn().await?;
        Ok(branches::table
            .find(branch_id)
            .select(branches::mis_id)
            .first(&mut conn)
            .await?)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::values::RecordSource;

    /// A record for unit tests of the booking rules.
    pub(in crate::domain::booking) fn record(
        status: RecordStatus,
        starts_at: DateTime<Utc>,
    ) -> Record {
        Record {
            id: 1,
            mis_id: 10,
            status,
            specialist_id: 2,
            branch_id: 3,
            starts_at,
            ends_at: starts_at + chrono::Duration::minutes(30),
            user_id: Some(4),
            patient_pcode: 5,
            patient_last_name: "Петров".into(),
            patient_first_name: "Пётр".into(),
            patient_middle_name: None,
            patient_phone: "+79165550001".into(),
            patient_email: None,
            patient_birth_date: None,
            comment: None,
            source: RecordSource::Cabinet,
            created_at: starts_at,
            updated_at: starts_at,
            cancelled_at: None,
            cancelled_by: None,
            booked_by: None,
            cancel_reason: None,
        }
    }

    #[test]
    fn only_booked_future_records_change() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap();
        let later = now + chrono::Duration::hours(2);
        let earlier = now - chrono::Duration::hours(2);
        for change in [Change::Cancel, Change::Move] {
            assert!(check_changeable(&record(RecordStatus::Booked, later), change, now).is_ok());
            assert!(matches!(
                check_changeable(&record(RecordStatus::Booked, earlier), change, now),
                Err(BookingError::NoLongerChangeable(c)) if c == change
            ));
            assert!(matches!(
                check_changeable(&record(RecordStatus::Booked, now), change, now),
                Err(BookingError::NoLongerChangeable(_))
            ));
            assert!(matches!(
                check_changeable(&record(RecordStatus::Cancelled, later), change, now),
                Err(BookingError::AlreadyCancelled(c)) if c == change
            ));
            for done in [RecordStatus::Visited, RecordStatus::NoShow] {
                assert!(matches!(
                    check_changeable(&record(done, later), change, now),
                    Err(BookingError::NoLongerChangeable(_))
                ));
            }
        }
    }
}
