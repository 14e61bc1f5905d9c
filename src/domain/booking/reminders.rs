//! Reminders: one SMS `REMINDER_HOURS_BEFORE` before each booked visit, through the outbox.
//!
//! Every replica looks for due visits every `REMINDER_INTERVAL_SECONDS`, and PostgreSQL sees
//! to it that each visit time is reminded of once: a round marks the records
//! (`records.reminder_queued_at`, set only where it is still NULL, rows another replica is
//! marking skipped) and inserts their SMS in the same transaction. Two replicas never both
//! queue one; a round that fails leaves its records unmarked for the next.
//!
//! - Only a visit whose start was set at least that long ahead (`records.scheduled_at`) is
//!   reminded of: whoever books for this afternoon needs no reminder.
//! - A move sets a new start, and a trigger clears the mark: the new time gets its reminder.
//! - A visit cancelled, moved or marked after its reminder was queued: a trigger deletes the
//!   reminder while it waits in the outbox. One the worker has already handed to the gateway
//!   cannot be called back.

use std::time::Duration;

use diesel_async::AsyncConnection;
use tokio::{sync::watch, task::JoinHandle};

use super::{Booking, BookingError, notify::Notice, rounds, rules};
use crate::{
    db::models::{
        outbox::{self, NewOutboxMessage},
        record, reminder,
    },
    domain::phones::sha256_hex,
};

/// Visits marked and queued per transaction.
const BATCH: i64 = 50;

impl Booking {
    /// Queues the reminders due now (the booking clock's), `hours_before` ahead; how many.
    /// `0` hours: none, reminders are off.
    pub async fn queue_reminders(&self, hours_before: u32) -> Result<usize, BookingError> {
        if hours_before == 0 {
            return Ok(0);
        }
        let mut queued = 0;
        loop {
            let batch = self.queue_reminder_batch(hours_before).await?;
            queued += batch;
            if i64::try_from(batch).unwrap_or(BATCH) < BATCH {
                break;
            }
        }
        if queued > 0 {
            self.outbox_wakeup.notify_one();
            tracing::info!(queued, "visit reminders queued");
        }
        Ok(queued)
    }

    /// One transaction: up to `BATCH` visits marked, and their reminders queued.
    async fn queue_reminder_batch(&self, hours_before: u32) -> Result<usize, BookingError> {
        let now = self.clock.now();
        let mut conn = self.conn().await?;
        let queued = conn
            .transaction(async |conn| {
                let due = reminder::mark_due(conn, now, hours_before, BATCH).await?;
                for &id in &due {
                    let Some(view) = record::find_view(conn, id).await? else {
                        continue;
                    };
                    // A visit without an account gets a link of its own: the token of its
                    // booking SMS was never kept.
                    let token = view.record.user_id.is_none().then(rules::new_link_token);
                    if let Some(token) = &token {
                        reminder::set_link_token(conn, id, &sha256_hex(token)).await?;
                    }
                    let link = self
                        .rules
                        .manage_link(id, view.record.user_id, token.as_deref());
                    let body = self.rules.notice_text(
                        Notice::Reminder,
                        view.place(),
                        view.local_start(),
                        link.as_deref(),
                    );
                    outbox::insert(
                        conn,
                        &NewOutboxMessage {
                            record_id: Some(id),
                            kind: Notice::Reminder.kind(),
                            phone: &view.record.patient_phone,
                            body: &body,
                        },
                    )
                    .await?;
                }
                Ok::<_, diesel::result::Error>(due.len())
            })
            .await?;
        Ok(queued)
    }
}

/// Queues due reminders every `interval` until `stop` turns true (`serve` starts it unless
/// `REMINDER_HOURS_BEFORE=0`).
pub fn spawn(
    booking: Booking,
    hours_before: u32,
    interval: Duration,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    rounds::every("reminders", interval, stop, move || {
        let booking = booking.clone();
        async move { booking.queue_reminders(hours_before).await.map(|_| ()) }
    })
}
