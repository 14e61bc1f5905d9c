//! The SMS outbox worker: claims due messages with `FOR UPDATE SKIP LOCKED` (so several
//! replicas share the queue), sends them, and on a retryable failure puts them back with
//! exponential backoff. A provider outage delays messages; it never loses one.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use tokio::{sync::watch, task::JoinHandle};

use super::Booking;
use crate::{
    db::models::outbox::{self, OutboxMessage},
    integrations::sms::OutgoingSms,
};

/// After this many attempts a message is marked failed and left for staff to see.
pub const MAX_ATTEMPTS: i32 = 10;
/// How often the queue is polled when nothing wakes the worker.
const POLL: Duration = Duration::from_secs(1);
/// A message left `sending` this long belongs to a worker that died.
const STUCK_AFTER: chrono::Duration = chrono::Duration::minutes(5);

/// The wait before attempt `attempts + 1`: base × 2^(attempts − 1), at most an hour.
pub fn backoff(base: Duration, attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    base.saturating_mul(2u32.saturating_pow(exponent))
        .min(Duration::from_secs(3600))
}

/// Runs until `stop` turns true, finishing the batch in hand first.
pub fn spawn(booking: Booking, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *stop.borrow() {
                break;
            }
            if let Err(e) = drain(&booking).await {
                tracing::warn!(error = %e, "SMS outbox round failed");
            }
            tokio::select! {
                () = booking.outbox_wakeup.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => {}
            }
        }
    })
}

/// Sends every due message, batch by batch.
pub async fn drain(booking: &Booking) -> anyhow::Result<usize> {
    let mut conn = booking.db.get().await?;
    // Without a configured gateway, messages wait in the outbox (counted below) until the
    // server restarts with one; sending would only burn their attempts.
    let waiting = booking.sms.name() == "unconfigured";
    outbox::requeue_stuck(&mut conn, Utc::now() - STUCK_AFTER).await?;
    let depth = outbox::depth(&mut conn).await?;
    metrics::gauge!("sms_outbox_depth").set(depth as f64);
    if waiting {
        return Ok(0);
    }
    let mut sent = 0;
    loop {
        let batch = outbox::claim_due(&mut conn, 10).await?;
        if batch.is_empty() {
            return Ok(sent);
        }
        for message in batch {
            if deliver(booking, &mut conn, &message).await? {
                sent += 1;
            }
        }
    }
}

async fn deliver(
    booking: &Booking,
    conn: &mut diesel_async::AsyncPgConnection,
    message: &OutboxMessage,
) -> anyhow::Result<bool> {
    let sms = OutgoingSms {
        to: message.phone.clone(),
        text: message.body.clone(),
        client_ref: Some(message.id.to_string()),
    };
    let gateway = Arc::clone(&booking.sms);
    match gateway.send(&sms).await {
        Ok(accepted) => {
            outbox::mark_sent(conn, message.id, &accepted.provider_id).await?;
            metrics::counter!("sms_send_total", "result" => "sent").increment(1);
            tracing::info!(message = message.id, gateway = gateway.name(), "SMS sent");
            Ok(true)
        }
        Err(e) if e.is_retryable() && message.attempts < MAX_ATTEMPTS => {
            let wait = backoff(booking.sms_retry_base, message.attempts);
            let at =
                Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
            outbox::mark_retry(conn, message.id, &e.to_string(), at).await?;
            metrics::counter!("sms_send_total", "result" => "retry").increment(1);
            tracing::warn!(message = message.id, attempts = message.attempts, error = %e, "SMS not sent; will retry");
            Ok(false)
        }
        Err(e) => {
            outbox::mark_failed(conn, message.id, &e.to_string()).await?;
            metrics::counter!("sms_send_total", "result" => "failed").increment(1);
            tracing::error!(message = message.id, attempts = message.attempts, error = %e, "SMS failed for good");
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_secs(5);
        assert_eq!(backoff(base, 1), Duration::from_secs(5));
        assert_eq!(backoff(base, 2), Duration::from_secs(10));
        assert_eq!(backoff(base, 4), Duration::from_secs(40));
        assert_eq!(backoff(base, 30), Duration::from_secs(3600));
    }
}
