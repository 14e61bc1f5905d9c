//! Cancelling and moving a record. The MIS goes first; the record and its SMS follow in one
//! local transaction.

use chrono::{DateTime, Utc};
use diesel::QueryDsl;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::{
    Booking, BookingError, Change,
    notify::{self, Notice, NoticeFacts},
    reserve::reserve_request,
};
use crate::{
    db::{
        models::{
            outbox::{self, NewOutboxMessage},
            record::{self, Record, RecordView},
        },
        schema::branches,
    },
    domain::{
        audit::{self, Actor},
        values::RecordStatus,
    },
    integrations::infoclinica::{MisError, ReserveRequest},
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
    /// Cancels a booked, future record in the MIS and locally, and queues the SMS.
    pub async fn cancel(
        &self,
        view: &RecordView,
        actor: Actor,
    ) -> Result<RecordView, BookingError> {
        let record = &view.record;
        check_changeable(record, Change::Cancel, self.clock.now())?;
        let branch_mis_id = self.branch_mis_id(record.branch_id).await?;
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
            Err(e) => return Err(BookingError::from_mis(e)),
        }
        let start = view.local_start();
        let body = notify::text(
            Notice::Cancelled,
            &NoticeFacts {
                doctor: &view.specialist_name,
                branch: &view.branch_name,
                address: &view.branch_address,
                start,
            },
        );
        let mut conn = self.conn().await?;
        let id = record.id;
        let phone = record.patient_phone.clone();
        let by = actor.user_id;
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
            .ok_or(BookingError::AlreadyCancelled(Change::Cancel))?;
        drop(conn);
        self.schedule
            .invalidate(record.specialist_id, record.branch_id, start.date_naive())
            .await;
        self.outbox_wakeup.notify_one();
        audit::append(&self.db, actor, "record_cancelled", &id.to_string()).await;
        Ok(RecordView {
            record: updated,
            ..view.clone()
        })
    }

    /// Moves a booked, future record to another free slot of the same doctor and branch.
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
        let moved = self
            .mis
            .reserve(&reserve_request(
                &target,
                &slot,
                record.patient_pcode,
                Some(record.mis_id),
            ))
            .await
            .map_err(BookingError::from_mis);
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
                let (id, phone) = (record.id, record.patient_phone.clone());
                let (starts_at, ends_at) =
                    (slot.start.with_timezone(&Utc), slot.end.with_timezone(&Utc));
                let written = match self.conn().await {
                    Ok(mut conn) => {
                        conn.transaction(async |conn| {
                            let updated =
                                record::mark_moved(conn, id, schedid, starts_at, ends_at).await?;
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
                        .await
                    }
                    Err(e) => Err(diesel::result::Error::QueryBuilderError(e.into())),
                };
                match written {
                    Ok(Some(updated)) => Ok(RecordView {
                        record: updated,
                        ..view.clone()
                    }),
                    Ok(None) => Err(BookingError::RecordChanged),
                    Err(e) if record::is_slot_conflict(&e) => Err(BookingError::SlotTaken),
                    Err(e) => {
                        tracing::error!(error = %e, record = record.id, "move not written locally; moving back in the MIS");
                        let back = self
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
                        Err(BookingError::NotKept(e.to_string()))
                    }
                }
            }
            Err(e) => Err(e),
        };
        self.unlock(&lock).await;
        for day in [view.local_start().date_naive(), slot.start.date_naive()] {
            self.schedule
                .invalidate(record.specialist_id, record.branch_id, day)
                .await;
        }
        if result.is_ok() {
            self.outbox_wakeup.notify_one();
            audit::append(&self.db, actor, "record_moved", &record.id.to_string()).await;
        }
        result
    }

    async fn branch_mis_id(&self, branch_id: i64) -> Result<i64, BookingError> {
        let mut conn = self.conn().await?;
        Ok(branches::table
            .find(branch_id)
            .select(branches::mis_id)
            .first(&mut conn)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::values::RecordSource;

    fn record(status: RecordStatus, starts_at: DateTime<Utc>) -> Record {
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
