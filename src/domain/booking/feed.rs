//! Following the MIS's change feed (`SCHEDULE_CHANGE_LIST`/`SCHEDULE_CHANGE_ACCEPT`): what the
//! clinic's front desk does in the MIS reaches the cabinet. Per branch, each change is
//! applied to the local record of its appointment (cancelled at the clinic, moved, marked
//! attended), the patient gets an SMS for a cancel or a move, the days touched leave the
//! schedule cache, and only then is the change confirmed to the MIS: a change applied but
//! not confirmed comes again and is applied again as a no-op.
//!
//! The feed also lists the web's own bookings, moves and cancels; those already agree here
//! and change nothing. Each item is the appointment as it was after that change, so only the
//! newest item of an appointment in a list is applied (an older one would move the record
//! back to where it was); the older ones are confirmed with it, or left with it when it is
//! left for the next poll. A record written here after the list was asked for may be newer
//! than the list (a patient's move between the MIS's answer and the poll's read): its item
//! waits for the next poll, whose list is not older than the record. A change is written
//! only to the record as the poll read it. A record with its own change under way (a
//! pending intent) is left to that change. So is a new appointment at a slot a booking or
//! move of ours is writing (the MIS has answered, the record is not yet committed): it is
//! not a front-desk booking, and bringing it in would make the request's own write fail and
//! give the slot back in the MIS.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::{AsyncConnection, RunQueryDsl};
use tokio::{sync::watch, task::JoinHandle};

use super::{Booking, BookingError, grid::local_instant, notify::Notice, rounds};
use crate::{
    db::{
        models::{
            intent,
            outbox::{self, NewOutboxMessage},
            record::{self, RecordView},
        },
        schema::branches,
    },
    domain::{
        audit,
        values::{BranchZone, RecordStatus},
    },
    integrations::infoclinica::{MisChange, MisChangeOp},
};

/// The advisory lock of the feed follower ("sovafeed"): one replica at a time.
pub const LOCK_KEY: i64 = 0x736f_7661_6665_6564;

/// What one poll did, by outcome.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FeedCounts {
    /// Visits the front desk booked for patients with a cabinet account, new here.
    pub booked: u32,
    pub cancelled: u32,
    pub moved: u32,
    pub visited: u32,
    /// Items confirmed without a write: they already agreed here, are about appointments we
    /// do not hold, or a newer item of the same appointment was in the list.
    pub unchanged: u32,
    /// Items left for the next poll (a change of ours under way or written after the list
    /// was asked for, or an error), with the older items of their appointments.
    pub deferred: u32,
}

enum Applied {
    /// A front-desk booking of a cabinet patient, new here.
    Booked,
    Cancelled,
    Moved,
    Visited,
    Unchanged,
    /// Not confirmed: try again next poll.
    Deferred,
}

impl Booking {
    /// One poll of every active branch's feed.
    pub async fn follow_changes(&self) -> Result<FeedCounts, BookingError> {
        let active: Vec<(i64, i64, BranchZone)> = {
            let mut conn = self.conn().await?;
            branches::table
                .filter(branches::active.eq(true))
                .select((branches::id, branches::mis_id, branches::timezone))
                .order(branches::id)
                .load(&mut conn)
                .await?
        };
        let mut counts = FeedCounts::default();
        for (branch_id, branch_mis_id, zone) in active {
            let listed_at = self.database_now().await?;
            let changes = self
                .mis
                .changes(branch_mis_id)
                .await
                .map_err(BookingError::from_mis)?;
            // Each appointment's items, in the order the list first names it.
            let mut items: Vec<(i64, Vec<&MisChange>)> = Vec::new();
            for change in &changes {
                match items
                    .iter_mut()
                    .find(|(schedid, _)| *schedid == change.schedid)
                {
                    Some((_, of)) => of.push(change),
                    None => items.push((change.schedid, vec![change])),
                }
            }
            let mut done = Vec::new();
            for (_, of) in &items {
                let Some(newest) = of.iter().copied().max_by_key(|c| c.change_id) else {
                    continue;
                };
                let seen = Seen {
                    listed_at,
                    creation: of.iter().copied().find(|c| c.op == MisChangeOp::Added),
                };
                let applied = match self.apply_change(branch_id, zone, newest, seen).await {
                    Ok(applied) => applied,
                    Err(e) => {
                        tracing::warn!(change = newest.change_id, error = %e, "MIS change not applied; next poll");
                        Applied::Deferred
                    }
                };
                let older = u32::try_from(of.len() - 1).unwrap_or(u32::MAX);
                match applied {
                    Applied::Booked => counts.booked += 1,
                    Applied::Cancelled => counts.cancelled += 1,
                    Applied::Moved => counts.moved += 1,
                    Applied::Visited => counts.visited += 1,
                    Applied::Unchanged => counts.unchanged += 1,
                    // The older items stay unconfirmed with it: the next list must still
                    // show the appointment's creation, say.
                    Applied::Deferred => {
                        counts.deferred += 1 + older;
                        continue;
                    }
                }
                counts.unchanged += older;
                done.extend(of.iter().map(|c| c.change_id));
            }
            // Confirmed only once applied and committed here.
            self.mis
                .accept_changes(branch_mis_id, &done)
                .await
                .map_err(BookingError::from_mis)?;
        }
        if counts.booked + counts.cancelled + counts.moved + counts.visited > 0 {
            self.outbox_wakeup.notify_one();
            tracing::info!(
                cancelled = counts.cancelled,
                moved = counts.moved,
                visited = counts.visited,
                "changes from the MIS applied"
            );
        }
        Ok(counts)
    }

    /// PostgreSQL's time, which records' `updated_at` are written with: a record whose
    /// `updated_at` is not older may be newer than what the MIS said after it.
    async fn database_now(&self) -> Result<chrono::DateTime<Utc>, BookingError> {
        let mut conn = self.conn().await?;
        Ok(record::database_now(&mut conn).await?)
    }

    /// Applies the newest item of an appointment in the list.
    async fn apply_change(
        &self,
        branch_id: i64,
        zone: BranchZone,
        change: &MisChange,
        seen: Seen<'_>,
    ) -> Result<Applied, BookingError> {
        let mut conn = self.conn().await?;
        let Some(view) = record::find_view_by_mis_id(&mut conn, branch_id, change.schedid).await?
        else {
            drop(conn);
            // Only an appointment made since the last confirmed change is new: an older
            // one without a record here is a stranger's, or its record is gone.
            return match seen.creation {
                Some(creation) if change.op != MisChangeOp::Deleted => {
                    self.bring_in_clinic_booking(branch_id, zone, change, creation)
                        .await
                }
                _ => Ok(Applied::Unchanged),
            };
        };
        // Cancelled or marked here is final, whatever the item says.
        if view.record.status != RecordStatus::Booked {
            return Ok(Applied::Unchanged);
        }
        if view.record.updated_at >= seen.listed_at
            || intent::has_pending_for_record(&mut conn, view.record.id).await?
        {
            return Ok(Applied::Deferred);
        }
        drop(conn);
        let applied = match change.op {
            MisChangeOp::Deleted => {
                self.write_clinic_change(&view, ClinicChange::Cancel)
                    .await?
            }
            MisChangeOp::Added | MisChangeOp::Changed if change.visited => {
                self.write_clinic_change(&view, ClinicChange::Visited)
                    .await?
            }
            MisChangeOp::Added | MisChangeOp::Changed => {
                let (Some(start), Some(end)) = (
                    local_instant(zone.tz(), change.date, change.start),
                    local_instant(zone.tz(), change.date, change.end),
                ) else {
                    return Ok(Applied::Unchanged);
                };
                if start.with_timezone(&Utc) == view.record.starts_at {
                    return Ok(Applied::Unchanged);
                }
                self.write_clinic_change(&view, ClinicChange::Move { start, end })
                    .await?
            }
        };
        let days: Vec<NaiveDate> = [
            Some(view.local_start().date_naive()),
            (change.op != MisChangeOp::Deleted).then_some(change.date),
        ]
        .into_iter()
        .flatten()
        .collect();
        for day in days {
            self.schedule
                .invalidate(view.record.specialist_id, view.record.branch_id, day)
                .await;
        }
        let action = match applied {
            Applied::Cancelled => "record_cancelled_by_clinic",
            Applied::Moved => "record_moved_by_clinic",
            Applied::Visited => "record_visited",
            Applied::Booked | Applied::Unchanged | Applied::Deferred => return Ok(applied),
        };
        audit::append_system(
            &self.db,
            action,
            &view.record.id.to_string(),
            serde_json::json!({ "change_id": change.change_id, "schedid": change.schedid }),
        )
        .await;
        Ok(applied)
    }

    /// A visit the front desk booked in the MIS for a patient with a cabinet account (the
    /// card is known on the account) becomes a record here, source `clinic`, with the usual
    /// booking SMS. Visits of other patients, and the web's own bookings still being written
    /// (their intent does that), change nothing.
    async fn bring_in_clinic_booking(
        &self,
        branch_id: i64,
        zone: BranchZone,
        change: &MisChange,
        creation: &MisChange,
    ) -> Result<Applied, BookingError> {
        use crate::db::{models::user, schema::specialists};

        let Some(pcode) = change.pcode else {
            return Ok(Applied::Unchanged);
        };
        let mut conn = self.conn().await?;
        let Some(account) = user::find_by_mis_pcode(&mut conn, pcode).await? else {
            return Ok(Applied::Unchanged);
        };
        let specialist_id: Option<i64> = specialists::table
            .filter(specialists::mis_id.eq(change.doctor_mis_id))
            .filter(specialists::active.eq(true))
            .select(specialists::id)
            .first(&mut conn)
            .await
            .optional()?;
        drop(conn);
        let Some(specialist_id) = specialist_id else {
            return Ok(Applied::Unchanged);
        };
        let (Ok(target), Ok(patient)) = (
            self.target(specialist_id, branch_id).await,
            super::Patient::of_user(&account),
        ) else {
            return Ok(Applied::Unchanged);
        };
        let (Some(start), Some(end)) = (
            local_instant(zone.tz(), change.date, change.start),
            local_instant(zone.tz(), change.date, change.end),
        ) else {
            return Ok(Applied::Unchanged);
        };
        let middle = patient.name.middle.as_ref().map(|m| m.as_str().to_owned());
        let new = record::NewRecord {
            mis_id: change.schedid,
            specialist_id,
            branch_id,
            starts_at: start.with_timezone(&Utc),
            ends_at: end.with_timezone(&Utc),
            user_id: Some(account.id),
            patient_pcode: pcode,
            patient_last_name: patient.name.last.as_str(),
            patient_first_name: patient.name.first.as_str(),
            patient_middle_name: middle.as_deref(),
            patient_phone: patient.phone.as_str(),
            patient_email: patient.email.as_ref().map(|e| e.as_str()),
            patient_birth_date: patient.birth_date.map(|d| d.date()),
            comment: None,
            source: crate::domain::values::RecordSource::Clinic,
            manage_token_hash: None,
            booked_by: None,
        };
        let mut conn = self.conn().await?;
        // A booking of ours at the slot it was made at (or one of ours moved to), between the
        // MIS's answer and its local write: the appointment is ours, not the front desk's,
        // even if the desk has moved it since. Left to that request (or to the reconciler);
        // once written, the next poll finds the record by its SCHEDID.
        let made_at = local_instant(zone.tz(), creation.date, creation.start)
            .map(|start| start.with_timezone(&Utc));
        for starts_at in [Some(new.starts_at), made_at].into_iter().flatten() {
            if intent::has_pending_for_slot(&mut conn, specialist_id, branch_id, starts_at).await? {
                return Ok(Applied::Deferred);
            }
        }
        let written = conn
            .transaction(async |conn| {
                let record = record::insert(conn, &new).await?;
                // The text names the record's page, so it is written once the record has
                // its id.
                let link = self.rules.cabinet_link(record.id);
                let body =
                    self.rules
                        .notice_text(Notice::Booked, target.place(), start, Some(&link));
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
                Ok::<_, diesel::result::Error>(record.id)
            })
            .await;
        match written {
            Ok(id) => {
                audit::append_system(
                    &self.db,
                    "record_booked_by_clinic",
                    &id.to_string(),
                    serde_json::json!({ "change_id": change.change_id, "schedid": change.schedid }),
                )
                .await;
                self.schedule
                    .invalidate(specialist_id, branch_id, change.date)
                    .await;
                Ok(Applied::Booked)
            }
            Err(e) if record::is_slot_conflict(&e) => {
                tracing::error!(
                    schedid = change.schedid,
                    "the clinic booked a slot held here"
                );
                Ok(Applied::Deferred)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes what the clinic did to the record, with the patient's SMS for a cancel or a
    /// move, in one transaction.
    async fn write_clinic_change(
        &self,
        view: &RecordView,
        change: ClinicChange,
    ) -> Result<Applied, BookingError> {
        let id = view.record.id;
        let phone = view.record.patient_phone.clone();
        let notice = match &change {
            ClinicChange::Cancel => Some((Notice::CancelledByClinic, view.local_start())),
            ClinicChange::Move { start, .. } => Some((Notice::MovedByClinic, *start)),
            ClinicChange::Visited => None,
        };
        let link = self
            .rules
            .manage_link(view.record.id, view.record.user_id, None);
        let body = notice.map(|(notice, start)| {
            (
                notice,
                self.rules
                    .notice_text(notice, view.place(), start, link.as_deref()),
            )
        });
        let mut conn = self.conn().await?;
        let written = conn
            .transaction(async |conn| {
                // Written since it was read (a change of ours committed in between): the
                // item is decided again on the record as it is now, next poll.
                if !record::lock_as_read(conn, id, view.record.updated_at).await? {
                    return Ok(false);
                }
                let updated = match &change {
                    ClinicChange::Cancel => record::mark_cancelled(conn, id, None, None).await?,
                    ClinicChange::Move { start, end } => {
                        record::mark_moved(
                            conn,
                            id,
                            view.record.mis_id,
                            start.with_timezone(&Utc),
                            end.with_timezone(&Utc),
                        )
                        .await?
                    }
                    ClinicChange::Visited => record::mark_visited(conn, id).await?,
                };
                if updated.is_some()
                    && let Some((notice, body)) = &body
                {
                    outbox::insert(
                        conn,
                        &NewOutboxMessage {
                            record_id: Some(id),
                            kind: notice.kind(),
                            phone: &phone,
                            body,
                        },
                    )
                    .await?;
                }
                Ok::<_, diesel::result::Error>(updated.is_some())
            })
            .await;
        match written {
            Ok(false) => Ok(Applied::Deferred),
            Ok(true) => Ok(match change {
                ClinicChange::Cancel => Applied::Cancelled,
                ClinicChange::Move { .. } => Applied::Moved,
                ClinicChange::Visited => Applied::Visited,
            }),
            // The clinic moved the visit onto a slot another record here holds: a conflict
            // for a person; the change stays unconfirmed and is logged each poll.
            Err(e) if record::is_slot_conflict(&e) => {
                tracing::error!(
                    record = id,
                    "the clinic moved a visit onto a slot held here"
                );
                Ok(Applied::Deferred)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// What a full reconciliation found (and, unless it only reports, repaired).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    /// Booked records in the window that were compared.
    pub checked: u32,
    /// The MIS holds them as they are here.
    pub agree: u32,
    /// Booked here, gone from the MIS: cancelled here (with the patient's SMS).
    pub cancelled: u32,
    /// At another time in the MIS: moved here (with the patient's SMS).
    pub moved: u32,
    /// Records with a change of their own under way, written here while being compared, or
    /// the MIS did not answer for them.
    pub skipped: u32,
}

impl Booking {
    /// Compares the booked records of the next `days` days with the MIS (`SCHEDULE_REC_LIST`
    /// per patient card) and, when `repair`, makes them agree with it as the change feed
    /// would have: the MIS is the system of record. A backstop for changes the feed missed
    /// (`sovamed reconcile`).
    pub async fn compare_with_mis(
        &self,
        days: u32,
        repair: bool,
    ) -> Result<Comparison, BookingError> {
        use crate::db::schema::records;

        let now = self.clock.now();
        let until = now + chrono::Duration::days(i64::from(days.max(1)));
        let ids: Vec<i64> = {
            let mut conn = self.conn().await?;
            records::table
                .filter(records::status.eq(RecordStatus::Booked))
                .filter(records::starts_at.gt(now))
                .filter(records::starts_at.lt(until))
                .order(records::patient_pcode)
                .select(records::id)
                .load(&mut conn)
                .await?
        };
        let mut comparison = Comparison::default();
        // Per card: PostgreSQL's time before the MIS was asked, and its answer.
        let mut held: std::collections::HashMap<
            i64,
            (
                chrono::DateTime<Utc>,
                Option<Vec<crate::integrations::infoclinica::MisAppointment>>,
            ),
        > = std::collections::HashMap::new();
        for id in ids {
            let (view, busy) = {
                let mut conn = self.conn().await?;
                let Some(view) = record::find_view(&conn, id).await? else {
                    continue;
                };
                let busy = intent::has_pending_for_record(&mut conn, id).await?;
                (view, busy)
            };
            comparison.checked += 1;
            if busy {
                comparison.skipped += 1;
                continue;
            }
            let pcode = view.record.patient_pcode;
            if let std::collections::hash_map::Entry::Vacant(slot) = held.entry(pcode) {
                let asked_at = self.database_now().await?;
                let from = view.branch_zone.today(now);
                let answer = self.mis.appointments(pcode, from).await;
                if let Err(e) = &answer {
                    tracing::warn!(record = id, error = %e, "MIS did not list the patient's visits");
                }
                slot.insert((asked_at, answer.ok()));
            }
            // A record written since the card's visits were asked for may be newer than the
            // answer (the patient's own move): compared next time.
            let Some((asked_at, Some(appointments))) = held.get(&pcode) else {
                comparison.skipped += 1;
                continue;
            };
            if view.record.updated_at >= *asked_at {
                comparison.skipped += 1;
                continue;
            }
            let found = appointments
                .iter()
                .find(|a| a.schedid == view.record.mis_id);
            let local = view.local_start();
            let change = match found {
                None => ClinicChange::Cancel,
                Some(a) if a.date == local.date_naive() && a.start == local.time() => {
                    comparison.agree += 1;
                    continue;
                }
                Some(a) => {
                    let (Some(start), Some(end)) = (
                        local_instant(view.branch_zone.tz(), a.date, a.start),
                        local_instant(view.branch_zone.tz(), a.date, a.end),
                    ) else {
                        comparison.skipped += 1;
                        continue;
                    };
                    ClinicChange::Move { start, end }
                }
            };
            let moving = matches!(change, ClinicChange::Move { .. });
            tracing::warn!(
                record = id,
                schedid = view.record.mis_id,
                moved = moving,
                repair,
                "record differs from the MIS"
            );
            if !repair {
                if moving {
                    comparison.moved += 1;
                } else {
                    comparison.cancelled += 1;
                }
                continue;
            }
            match self.write_clinic_change(&view, change).await? {
                Applied::Cancelled => comparison.cancelled += 1,
                Applied::Moved => comparison.moved += 1,
                _ => {
                    comparison.skipped += 1;
                    continue;
                }
            }
            audit::append_system(
                &self.db,
                if moving {
                    "record_moved_by_reconcile"
                } else {
                    "record_cancelled_by_reconcile"
                },
                &id.to_string(),
                serde_json::json!({ "schedid": view.record.mis_id }),
            )
            .await;
        }
        if repair && comparison.cancelled + comparison.moved > 0 {
            self.outbox_wakeup.notify_one();
        }
        Ok(comparison)
    }
}

/// What the poll knew when it applied an item.
#[derive(Debug, Clone, Copy)]
struct Seen<'a> {
    /// PostgreSQL's time just before the list was asked for.
    listed_at: chrono::DateTime<Utc>,
    /// The appointment's creation, when the list holds it.
    creation: Option<&'a MisChange>,
}

enum ClinicChange {
    Cancel,
    Move {
        start: chrono::DateTime<chrono_tz::Tz>,
        end: chrono::DateTime<chrono_tz::Tz>,
    },
    Visited,
}

/// One poll under the advisory lock; `Ok(None)` when another replica holds it.
pub async fn poll_once_locked(booking: &Booking) -> Result<Option<FeedCounts>, BookingError> {
    rounds::locked(&booking.db, LOCK_KEY, booking.follow_changes()).await
}

/// The feed follower inside `serve`: a poll every `interval` until `stop` turns true.
pub fn spawn(booking: Booking, interval: Duration, stop: watch::Receiver<bool>) -> JoinHandle<()> {
    rounds::every("MIS change feed", interval, stop, move || {
        let booking = booking.clone();
        async move { poll_once_locked(&booking).await.map(|_| ()) }
    })
}
