//! The reconciler: settles booking intents left pending (a crash between the MIS call and
//! the local write, an MIS answer that never came, a compensation that failed). For each it
//! asks the MIS what really happened (`SCHEDULE_REC_LIST` for the patient's card) and makes
//! the local side agree: the MIS is the system of record. A booking the MIS holds is written
//! here (with the patient's SMS); one it does not hold is `failed`; a cancel the MIS did is
//! completed; a move the MIS made is completed. Every settlement is audited as `system`.

use std::time::Duration;

use tokio::{sync::watch, task::JoinHandle};

use super::{Booking, BookingError, reserve::BookingFacts, rounds};
use crate::{
    db::models::{
        intent::{self, Intent},
        record,
    },
    domain::{
        audit,
        values::{IntentKind, IntentState},
    },
    integrations::infoclinica::MisAppointment,
};

/// The advisory lock of the reconciler ("sovarec" in ASCII): one replica at a time.
pub const LOCK_KEY: i64 = 0x0073_6f76_6172_6563;

/// Intents settled in one round, by outcome.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// The MIS had done it: the local side was completed.
    pub completed: u32,
    /// The MIS had not: nothing changed on either side.
    pub failed: u32,
    /// Still pending (the MIS did not answer, or the database failed); tried next round.
    pub deferred: u32,
}

enum Outcome {
    Completed,
    Failed,
}

impl Booking {
    /// Settles every intent pending since more than `stale_after`, oldest first.
    pub async fn reconcile(&self, stale_after: Duration) -> Result<Settled, BookingError> {
        let before = self.clock.now()
            - chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::minutes(2));
        let stale = {
            let mut conn = self.conn().await?;
            intent::stale_pending(&mut conn, before, 100).await?
        };
        let mut settled = Settled::default();
        for pending in stale {
            match self.settle(&pending).await {
                Ok(Outcome::Completed) => settled.completed += 1,
                Ok(Outcome::Failed) => settled.failed += 1,
                Err(e) => {
                    tracing::warn!(intent = pending.id, error = %e, "intent not settled; next round");
                    self.keep_intent_pending(pending.id, &format!("reconciler: {e}"))
                        .await;
                    settled.deferred += 1;
                }
            }
        }
        if settled != Settled::default() {
            tracing::info!(
                completed = settled.completed,
                failed = settled.failed,
                deferred = settled.deferred,
                "booking intents reconciled"
            );
        }
        Ok(settled)
    }

    async fn settle(&self, pending: &Intent) -> Result<Outcome, BookingError> {
        // A booking's card is written into its intent before the MIS is asked for the
        // appointment: without one, the MIS was never asked.
        let Some(pcode) = pending.pcode else {
            let outcome = self
                .settle_failed(pending, "no MIS card was noted: the MIS was not asked")
                .await?;
            self.audit_settled(pending, &outcome).await;
            return Ok(outcome);
        };
        let target = self
            .target(pending.specialist_id, pending.branch_id)
            .await?;
        let (start, end) = (
            target.zone.local(&pending.starts_at),
            target.zone.local(&pending.ends_at),
        );
        // From two days before: a moved appointment's old day may lie before its new one.
        let from = start.date_naive() - chrono::Duration::days(2);
        let held = self
            .mis
            .appointments(pcode, from)
            .await
            .map_err(BookingError::from_mis)?;
        let by_id = |id: Option<i64>| -> Option<&MisAppointment> {
            id.and_then(|id| held.iter().find(|a| a.schedid == id))
        };
        let at_slot = |a: &&MisAppointment| {
            a.doctor_mis_id == target.specialist_mis_id
                && a.branch_mis_id == target.branch_mis_id
                && a.date == start.date_naive()
                && a.start == start.time()
        };
        let outcome = match pending.kind {
            IntentKind::Book => match by_id(pending.mis_id).or_else(|| held.iter().find(at_slot)) {
                None => {
                    self.settle_failed(pending, "the MIS holds no such appointment")
                        .await?
                }
                Some(appointment) => {
                    let facts: BookingFacts = serde_json::from_value(pending.request.clone())
                        .map_err(|e| BookingError::Store(format!("intent facts: {e}")))?;
                    // The request's link token died with it: a visit without an account
                    // gets a new one, which its SMS carries.
                    let token = (facts.user_id.is_none()
                        && facts.source == crate::domain::values::RecordSource::Anonymous)
                        .then(super::rules::new_link_token);
                    let record_id = self.new_record_id().await?;
                    let written = self
                        .write_record(
                            pending.id,
                            record_id,
                            &target,
                            &facts,
                            (start, end),
                            pcode,
                            appointment.schedid,
                            None,
                            token.as_deref(),
                            None,
                        )
                        .await;
                    match written {
                        Ok(_) => Outcome::Completed,
                        // Someone else holds the slot here now: give the MIS booking back.
                        Err(BookingError::SlotTaken) => {
                            self.mis
                                .cancel(target.branch_mis_id, appointment.schedid, Some(pcode))
                                .await
                                .map_err(BookingError::from_mis)?;
                            self.settle_failed(pending, "slot taken locally; MIS booking cancelled")
                                .await?
                        }
                        Err(e) => return Err(e),
                    }
                }
            },
            IntentKind::Cancel => {
                let view = self.intent_record(pending).await?;
                match by_id(pending.mis_id) {
                    Some(_) => {
                        self.settle_failed(pending, "the MIS still holds the appointment")
                            .await?
                    }
                    None => {
                        let reason = pending
                            .request
                            .get("reason")
                            .and_then(serde_json::Value::as_str);
                        self.write_cancel(pending.id, &view, None, reason).await?;
                        Outcome::Completed
                    }
                }
            }
            IntentKind::Move => {
                let view = self.intent_record(pending).await?;
                match by_id(pending.mis_id).filter(at_slot) {
                    Some(appointment) => {
                        self.write_move(
                            pending.id,
                            &view,
                            &target,
                            (start, end),
                            appointment.schedid,
                        )
                        .await?;
                        Outcome::Completed
                    }
                    None => {
                        self.settle_failed(pending, "the MIS did not move the appointment")
                            .await?
                    }
                }
            }
        };
        if let Outcome::Completed = outcome {
            self.outbox_wakeup.notify_one();
            self.schedule
                .invalidate(target.specialist_id, target.branch_id, start.date_naive())
                .await;
        }
        self.audit_settled(pending, &outcome).await;
        Ok(outcome)
    }

    async fn audit_settled(&self, pending: &Intent, outcome: &Outcome) {
        let action = match outcome {
            Outcome::Completed => "intent_completed",
            Outcome::Failed => "intent_failed",
        };
        audit::append_system(
            &self.db,
            action,
            &pending.id.to_string(),
            serde_json::json!({ "kind": pending.kind.as_str(), "record_id": pending.record_id }),
        )
        .await;
    }

    async fn settle_failed(&self, pending: &Intent, why: &str) -> Result<Outcome, BookingError> {
        let mut conn = self.conn().await?;
        intent::resolve(&mut conn, pending.id, IntentState::Failed, None, Some(why)).await?;
        Ok(Outcome::Failed)
    }

    async fn intent_record(&self, pending: &Intent) -> Result<record::RecordView, BookingError> {
        let id = pending.record_id.ok_or(BookingError::RecordNotFound)?;
        let conn = self.conn().await?;
        record::find_view(&conn, id)
            .await?
            .ok_or(BookingError::RecordNotFound)
    }
}

/// One round under the advisory lock; `Ok(None)` when another replica holds it.
pub async fn run_once_locked(
    booking: &Booking,
    stale_after: Duration,
) -> Result<Option<Settled>, BookingError> {
    rounds::locked(&booking.db, LOCK_KEY, booking.reconcile(stale_after)).await
}

/// The reconciler inside `serve`: a round every `interval` until `stop` turns true.
pub fn spawn(
    booking: Booking,
    interval: Duration,
    stale_after: Duration,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    rounds::every("reconciler", interval, stop, move || {
        let booking = booking.clone();
        async move { run_once_locked(&booking, stale_after).await.map(|_| ()) }
    })
}
