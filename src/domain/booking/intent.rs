//! Booking intents as the operations use them: opened (committed on their own) before the
//! MIS is asked to change anything, and resolved to `done` or `failed` once both sides agree.
//! A write to the intent that fails is logged and left to the reconciler, which treats a
//! pending intent as "ask the MIS what happened".

use super::{Booking, BookingError};
use crate::{
    db::models::{
        intent::{self, NewIntent},
        record::{self, RecordView},
    },
    domain::values::IntentState,
};

impl Booking {
    /// Writes a pending intent and returns its id.
    pub(super) async fn open_intent(&self, new: &NewIntent<'_>) -> Result<i64, BookingError> {
        let conn = self.conn().await?;
        Ok(intent::insert(&conn, new).await?.id)
    }

    /// Writes a new MIS card into an intent opened without one. A failure fails the booking:
    /// the MIS is not asked for an appointment whose intent cannot name the card.
    pub(super) async fn note_pcode(&self, id: i64, pcode: i64) -> Result<(), BookingError> {
        let mut conn = self.conn().await?;
        if intent::set_pcode(&mut conn, id, pcode).await? {
            Ok(())
        } else {
            // Settled by the reconciler meanwhile (it found no card, so no appointment).
            Err(BookingError::RecordChanged)
        }
    }

    /// Records the `SCHEDID` the MIS answered, so a reconciler can look the appointment up.
    pub(super) async fn note_mis_id(&self, id: i64, mis_id: i64) {
        let noted = match self.conn().await {
            Ok(mut conn) => intent::set_mis_id(&mut conn, id, mis_id)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = noted {
            tracing::warn!(intent = id, mis_id, error = %e, "SCHEDID not noted on the intent");
        }
    }

    /// Neither side changed: the intent is `failed`.
    pub(super) async fn fail_intent(&self, id: i64, error: &str) {
        let resolved = match self.conn().await {
            Ok(mut conn) => intent::resolve(&mut conn, id, IntentState::Failed, None, Some(error))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = resolved {
            tracing::warn!(intent = id, error = %e, "intent not marked failed; the reconciler will");
        }
    }

    /// The outcome is unknown: the intent stays pending for the reconciler, with the reason.
    pub(super) async fn keep_intent_pending(&self, id: i64, error: &str) {
        let noted = match self.conn().await {
            Ok(mut conn) => intent::note_error(&mut conn, id, error)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = noted {
            tracing::warn!(intent = id, error = %e, "intent error not noted");
        }
    }

    /// After the MIS refused or did not answer: a refusal changed nothing (`failed`); an MIS
    /// that did not answer may have acted before the answer was lost, so the intent stays
    /// pending and the reconciler asks the MIS.
    pub(super) async fn settle_after_mis_error(&self, id: i64, error: &BookingError) {
        match error {
            BookingError::MisUnavailable(e) => {
                tracing::warn!(intent = id, error = %e, "MIS outcome unknown; the reconciler will ask it");
                self.keep_intent_pending(id, &error.to_string()).await;
            }
            other => self.fail_intent(id, &other.to_string()).await,
        }
    }

    /// The intent's record when it is done, once no transaction holds its row (a writer
    /// whose connection broke may still be committing); `None` when it is not done.
    async fn settled_record(&self, id: i64) -> Result<Option<RecordView>, BookingError> {
        let mut conn = self.conn().await?;
        match intent::settled_state(&mut conn, id).await? {
            Some((IntentState::Done, Some(record_id))) => record::find_view(&conn, record_id)
                .await?
                .map(Some)
                .ok_or(BookingError::RecordChanged),
            _ => Ok(None),
        }
    }

    /// The intent was resolved by someone else meanwhile: its record, if it has one.
    pub(super) async fn resolved_elsewhere(&self, id: i64) -> Result<RecordView, BookingError> {
        self.settled_record(id)
            .await?
            .ok_or(BookingError::RecordChanged)
    }

    /// After a write of the intent whose connection broke with its statement or `COMMIT`
    /// sent (`booked::outcome_unknown`): it may have committed before the answer was lost.
    /// Asked again on another connection: done, it is the write made; not done, the write
    /// failed (`not_written` of its error); and when PostgreSQL cannot say, `Deferred`: the
    /// MIS side stays and the reconciler settles the intent.
    pub(super) async fn after_lost_answer(
        &self,
        id: i64,
        error: diesel::result::Error,
        not_written: fn(diesel::result::Error) -> BookingError,
    ) -> Result<RecordView, BookingError> {
        match self.settled_record(id).await {
            Ok(Some(view)) => {
                tracing::warn!(error = %error, intent = id, "a write's answer was lost; it was written");
                Ok(view)
            }
            Ok(None) => Err(not_written(error)),
            Err(again) => {
                tracing::error!(error = %error, again = %again, intent = id, "a write's outcome is unknown; the reconciler will settle it");
                Err(BookingError::Deferred(error.to_string()))
            }
        }
    }
}
