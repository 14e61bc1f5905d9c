//! The front desk: a staff member books for a caller on the phone or at the counter, and
//! marks a visit's outcome. Bookings go through the same steps as the patient's own (slot
//! check, intent, MIS, record and SMS in one transaction); moves and cancels on a caller's
//! behalf are the ordinary [`Booking::reschedule_record`] and [`Booking::cancel_record`].

use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{BookRequest, Booking, BookingError, Patient};
use crate::{
    db::models::{
        caller::{self, CallerMatch},
        outbox::{self, NewOutboxMessage},
        record::{self, RecordView},
        user::{self, User},
    },
    domain::{
        audit::{self, Actor},
        values::{
            BirthDate, CallerQuery, Comment, Email, FullName, Phone, RecordSource, RecordStatus,
            Role,
        },
    },
    integrations::infoclinica::MisError,
};

/// Who a desk booking is for: the person, and their cabinet account when they have one
/// (the visit then shows in their cabinet; without one, the SMS carries the visit link).
#[derive(Debug, Clone)]
pub struct Caller {
    pub patient: Patient,
    pub account: Option<User>,
}

/// The caller the desk works for, as a session remembers them: an account, the person of
/// an earlier record without one, or a new person the operator typed in (already
/// validated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallerRef {
    Account(i64),
    Record(i64),
    New {
        last_name: String,
        first_name: String,
        middle_name: Option<String>,
        phone: String,
        birth_date: NaiveDate,
    },
}

impl CallerRef {
    /// A new caller from validated values.
    pub fn new_person(name: &FullName, phone: &Phone, birth_date: BirthDate) -> Self {
        CallerRef::New {
            last_name: name.last.as_str().to_owned(),
            first_name: name.first.as_str().to_owned(),
            middle_name: name.middle.as_ref().map(|m| m.as_str().to_owned()),
            phone: phone.as_str().to_owned(),
            birth_date: birth_date.date(),
        }
    }
}

/// A booking made at the desk.
pub struct DeskBooking<'a> {
    pub specialist_id: i64,
    pub branch_id: i64,
    pub start: DateTime<Utc>,
    pub comment: Option<&'a Comment>,
    pub ip: IpAddr,
}

/// How a visit ended, as the desk records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitOutcome {
    /// The patient came: `CLVISIT 1` in the MIS.
    Visited,
    /// The patient did not come: the MIS's mark is cleared (`CLVISIT 0`), which is all the
    /// protocol has for it; the no-show itself is kept here.
    NoShow,
}

impl VisitOutcome {
    pub fn status(self) -> RecordStatus {
        match self {
            VisitOutcome::Visited => RecordStatus::Visited,
            VisitOutcome::NoShow => RecordStatus::NoShow,
        }
    }

    fn audit_action(self) -> &'static str {
        match self {
            VisitOutcome::Visited => "record_marked_visited",
            VisitOutcome::NoShow => "record_marked_no_show",
        }
    }
}

impl Booking {
    /// Patients matching what the operator typed: accounts, then people of earlier records.
    pub async fn find_callers(
        &self,
        query: &CallerQuery,
    ) -> Result<Vec<CallerMatch>, BookingError> {
        let mut conn = self.conn().await?;
        Ok(caller::search(&mut conn, query).await?)
    }

    /// The caller behind a reference, read afresh: an account that is gone, disabled or not
    /// a patient's, or a record that belongs to an account, is "not found".
    pub async fn resolve_caller(&self, reference: &CallerRef) -> Result<Caller, BookingError> {
        let mut conn = self.conn().await?;
        match reference {
            CallerRef::Account(id) => {
                let account = user::find(&mut conn, *id)
                    .await?
                    .filter(|u| u.role() == Role::Patient && !u.disabled)
                    .ok_or(BookingError::RecordNotFound)?;
                Ok(Caller {
                    patient: Patient::of_user(&account)?,
                    account: Some(account),
                })
            }
            CallerRef::Record(id) => {
                let view = record::find_view(&conn, *id)
                    .await?
                    .filter(|v| v.record.user_id.is_none())
                    .ok_or(BookingError::RecordNotFound)?;
                let r = view.record;
                Ok(Caller {
                    patient: Patient {
                        name: FullName::from_stored_parts(
                            &r.patient_last_name,
                            &r.patient_first_name,
                            r.patient_middle_name.as_deref(),
                        ),
                        phone: Phone::from_stored(r.patient_phone),
                        birth_date: r.patient_birth_date.map(BirthDate::from_stored),
                        email: r.patient_email.map(Email::from_stored),
                        mis_pcode: Some(r.patient_pcode),
                    },
                    account: None,
                })
            }
            CallerRef::New {
                last_name,
                first_name,
                middle_name,
                phone,
                birth_date,
            } => Ok(Caller {
                patient: Patient {
                    name: FullName::from_stored_parts(
                        last_name,
                        first_name,
                        middle_name.as_deref(),
                    ),
                    phone: Phone::from_stored(phone.clone()),
                    birth_date: Some(BirthDate::from_stored(*birth_date)),
                    email: None,
                    mis_pcode: None,
                },
                account: None,
            }),
        }
    }

    /// Books for a caller, as `staff`. The patient's own limits on upcoming visits and
    /// bookings a day are for self-service and do not apply; the SMS day cap of the phone
    /// does, like everywhere.
    pub async fn book_for_caller(
        &self,
        staff: &User,
        caller: &Caller,
        request: DeskBooking<'_>,
    ) -> Result<RecordView, BookingError> {
        if !staff.role().is_staff() {
            return Err(BookingError::NotStaff);
        }
        let target = self
            .target(request.specialist_id, request.branch_id)
            .await?;
        let slot = self.find_slot(&target, request.start).await?;
        {
            let conn = self.conn().await?;
            self.check_sms_day(&conn, caller.patient.phone.as_str())
                .await?;
        }
        let manage_token = caller.account.is_none().then(super::rules::new_link_token);
        self.book_slot(
            target,
            slot,
            BookRequest {
                specialist_id: request.specialist_id,
                branch_id: request.branch_id,
                start: request.start,
                patient: &caller.patient,
                user: caller.account.as_ref(),
                comment: request.comment,
                source: RecordSource::Desk,
                keep_answer: None,
                actor: Actor::user(staff, request.ip),
            },
            manage_token.as_deref(),
            None,
            None,
        )
        .await
    }

    /// Marks a booked visit that has started as visited or a no-show: in the MIS first,
    /// then here. Should the local write fail after the MIS took the mark, a "visited"
    /// comes back through the change feed; a no-show leaves the record booked, and marking
    /// it again is harmless.
    pub async fn mark_outcome(
        &self,
        staff: &User,
        id: i64,
        outcome: VisitOutcome,
        ip: IpAddr,
    ) -> Result<RecordView, BookingError> {
        if !staff.role().is_staff() {
            return Err(BookingError::NotStaff);
        }
        let view = self.visible_record(staff, id).await?;
        check_markable(&view, self.clock.now())?;
        let branch_mis_id = self.branch_mis_id(view.record.branch_id).await?;
        self.mis
            .set_visit_mark(
                branch_mis_id,
                view.record.mis_id,
                outcome == VisitOutcome::Visited,
            )
            .await
            .map_err(outcome_refused)?;
        let mut conn = self.conn().await?;
        record::mark_outcome(&mut conn, id, outcome.status())
            .await?
            .ok_or(BookingError::RecordChanged)?;
        let marked = record::find_view(&conn, id)
            .await?
            .ok_or(BookingError::RecordNotFound)?;
        drop(conn);
        audit::append(
            &self.db,
            Actor::user(staff, ip),
            outcome.audit_action(),
            &id.to_string(),
        )
        .await;
        Ok(marked)
    }
}

impl Booking {
    /// Sends a record's failed or undelivered SMS again, as a new message (the failed one
    /// stays in the history). The phone's SMS day cap applies.
    pub async fn resend_message(
        &self,
        staff: &User,
        record_id: i64,
        message_id: i64,
        ip: IpAddr,
    ) -> Result<(), BookingError> {
        if !staff.role().is_staff() {
            return Err(BookingError::NotStaff);
        }
        let view = self.visible_record(staff, record_id).await?;
        let mut conn = self.conn().await?;
        let message = outbox::find_for_record(&mut conn, view.record.id, message_id)
            .await?
            .ok_or(BookingError::RecordNotFound)?;
        if !message.can_be_resent() {
            return Err(BookingError::MessageNotResendable);
        }
        self.check_sms_day(&conn, &message.phone).await?;
        outbox::insert(
            &conn,
            &NewOutboxMessage {
                record_id: Some(view.record.id),
                kind: &message.kind,
                phone: &message.phone,
                body: &message.body,
            },
        )
        .await?;
        drop(conn);
        self.outbox_wakeup.notify_one();
        audit::append_with(
            &self.db,
            Actor::user(staff, ip),
            "sms_resent",
            &message_id.to_string(),
            serde_json::json!({ "record_id": view.record.id }),
        )
        .await;
        Ok(())
    }
}

/// A visit's outcome is marked once, on a booked visit that has started.
pub fn check_markable(view: &RecordView, now: DateTime<Utc>) -> Result<(), BookingError> {
    match view.record.status {
        RecordStatus::Booked if view.record.starts_at > now => {
            Err(BookingError::OutcomeBeforeStart)
        }
        RecordStatus::Booked => Ok(()),
        RecordStatus::Cancelled => Err(BookingError::AlreadyCancelled(super::Change::Outcome)),
        RecordStatus::Visited | RecordStatus::NoShow => Err(BookingError::OutcomeAlreadyMarked),
    }
}

/// The MIS's refusals of a mark: an appointment it no longer has, or one of an earlier
/// day, whose mark it keeps as it is.
fn outcome_refused(e: MisError) -> BookingError {
    match e {
        MisError::Failed { spresult: -2, .. } => {
            BookingError::MisRefused("запись не найдена в МИС".to_owned())
        }
        other => BookingError::from_mis(other),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::domain::values::BranchZone;

    fn view(status: RecordStatus, starts_at: DateTime<Utc>) -> RecordView {
        RecordView {
            record: super::super::change::tests::record(status, starts_at),
            specialist_name: String::new(),
            specialities: Vec::new(),
            branch_name: String::new(),
            branch_address: String::new(),
            branch_zone: BranchZone(chrono_tz::Europe::Moscow),
        }
    }

    #[test]
    fn only_a_started_booked_visit_takes_an_outcome() {
        let start = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        let before = start - Duration::minutes(1);
        assert!(matches!(
            check_markable(&view(RecordStatus::Booked, start), before),
            Err(BookingError::OutcomeBeforeStart)
        ));
        assert!(check_markable(&view(RecordStatus::Booked, start), start).is_ok());
        assert!(matches!(
            check_markable(&view(RecordStatus::Cancelled, start), start),
            Err(BookingError::AlreadyCancelled(
                super::super::Change::Outcome
            ))
        ));
        for done in [RecordStatus::Visited, RecordStatus::NoShow] {
            assert!(matches!(
                check_markable(&view(done, start), start),
                Err(BookingError::OutcomeAlreadyMarked)
            ));
        }
    }

    #[test]
    fn an_unknown_appointment_is_said_in_words() {
        let e = outcome_refused(MisError::Failed {
            spresult: -2,
            comment: "Запись пациента не найдена".into(),
            checks: Vec::new(),
        });
        assert!(matches!(e, BookingError::MisRefused(m) if m.contains("не найдена")));
    }
}
