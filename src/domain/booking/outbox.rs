//! The SMS outbox worker: claims due messages with `FOR UPDATE SKIP LOCKED` (so several
//! replicas share the queue), sends them, and on a refusal worth retrying puts them back with
//! exponential backoff. A provider outage delays messages; it never loses one. A message is
//! never handed to the gateway twice unless the gateway said it does not have it.
//!
//! # The state machine (`sms_outbox.status`)
//!
//! ```text
//!            claim (attempts + 1)            accepted: sms_id
//! pending ───────────────────────▶ sending ───────────────────▶ sent ──▶ delivery
//!    ▲                               │ │ │                       ▲       pending ─▶ delivered
//!    │ refused, retryable            │ │ │ refused for good,     │                ─▶ undelivered
//!    └───────────────────────────────┘ │ │ or out of attempts    │                ─▶ expired
//!    │                                 │ └──────────────────────────▶ failed
//!    │                                 │ no answer (timeout,     │
//!    │                                 ▼ lost connection), or    │ look-up: found
//!    │   look-up: not found        unknown  the worker died ─────┘ (or a person: sent)
//!    └──────────────────────────── (held)   (stuck `sending`)
//!        (or a person: send again)
//! ```
//!
//! - Only `pending` is ever claimed for sending, and a message leaves `sending` only by a
//!   definite answer: accepted (`sent`), refused (`pending` again or `failed`). A send whose
//!   answer never came, and a message left `sending` by a worker that died, become `unknown`:
//!   the gateway may have it, so it is **not** sent again blindly.
//! - `unknown` is settled by asking the gateway by our reference (the outbox id) when it can
//!   be asked ([`SmsGateway::can_look_up`]): found → `sent` with its id; not found → `pending`,
//!   sent once more. SMS.ru keeps no reference of ours (`docs/sms-gateways.md` B1;
//!   `partner_id` is the account's affiliate id), so with SMS.ru an `unknown` message is held
//!   for a person, who checks the SMS.ru cabinet and marks it sent or sends it again
//!   (`docs/operations.md`, SMS runbook).
//! - Every transition names the state it leaves (`db::models::outbox`), so the recovery sweep,
//!   a late answer and another replica cannot undo each other.
//! - After `sent`, the delivery (`delivery`) is asked with `sms/status` every
//!   `SMS_STATUS_POLL_SECONDS` until it is final or [`OutboxSettings::status_window`] passes.
//!
//! [`SmsGateway::can_look_up`]: crate::integrations::sms::SmsGateway::can_look_up

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use tokio::{sync::watch, task::JoinHandle};

use super::Booking;
use crate::{
    db::models::outbox::{self, OutboxMessage},
    integrations::sms::{Accepted, Delivery, Lookup, OutgoingSms, SmsError},
};

/// After this many attempts a message is marked failed and left for staff to see.
pub const MAX_ATTEMPTS: i32 = 10;
/// How often the queue is polled when nothing wakes the worker.
const POLL: Duration = Duration::from_secs(1);
/// Ids of a delivery check per round.
const CHECK_BATCH: i64 = 100;

/// The worker's timings. `Default` is what `serve` uses apart from the configured ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxSettings {
    /// The first retry delay (`SMS_RETRY_BASE_SECONDS`); it doubles per attempt.
    pub retry_base: Duration,
    /// A message left `sending` this long belongs to a worker that died (far longer than a
    /// send may take, `SMSRU_TIMEOUT_SECONDS`).
    pub stuck_after: Duration,
    /// How long after a send went unanswered the gateway is asked for it, so that the
    /// request still on its way has landed (gateways that can be asked only).
    pub lookup_grace: Duration,
    /// How often the delivery of a sent message is asked (`SMS_STATUS_POLL_SECONDS`);
    /// `None`: never.
    pub status_poll: Option<Duration>,
    /// Delivery is asked for at most this long after sending.
    pub status_window: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_secs(5),
            stuck_after: Duration::from_secs(5 * 60),
            lookup_grace: Duration::from_secs(60),
            status_poll: Some(Duration::from_secs(60)),
            status_window: Duration::from_secs(48 * 3600),
        }
    }
}

/// The wait before attempt `attempts + 1`: base × 2^(attempts − 1), at most an hour.
pub fn backoff(base: Duration, attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    base.saturating_mul(2u32.saturating_pow(exponent))
        .min(Duration::from_secs(3600))
}

/// Where a message goes after its send (attempt number `attempts`) was answered, or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterSend {
    /// `sent`, with the gateway's id.
    Sent(String),
    /// `pending` again after this wait: refused for now.
    Retry(Duration),
    /// `failed`: refused for good, or out of attempts.
    Failed,
    /// `unknown`: the gateway may have it; never sent again without asking.
    Unknown,
}

/// The transition out of `sending`.
pub fn after_send(result: &Result<Accepted, SmsError>, attempts: i32, base: Duration) -> AfterSend {
    match result {
        Ok(accepted) => AfterSend::Sent(accepted.provider_id.clone()),
        Err(e) if e.outcome_unknown() => AfterSend::Unknown,
        Err(e) if e.is_retryable() && attempts < MAX_ATTEMPTS => {
            AfterSend::Retry(backoff(base, attempts))
        }
        Err(_) => AfterSend::Failed,
    }
}

/// Where an `unknown` message goes after the gateway was asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterLookup {
    /// `sent`: the gateway has it.
    Sent(String),
    /// `pending`: the gateway never got it, so it is sent (once more).
    SendAgain,
    /// `failed`: the gateway never got it, and it is out of attempts.
    Failed,
    /// Still `unknown`: the gateway could not be asked; asked again later.
    Hold,
}

/// The transition out of `unknown`.
pub fn after_lookup(result: &Result<Lookup, SmsError>, attempts: i32) -> AfterLookup {
    match result {
        Ok(Lookup::Found(accepted)) => AfterLookup::Sent(accepted.provider_id.clone()),
        Ok(Lookup::NotFound) if attempts < MAX_ATTEMPTS => AfterLookup::SendAgain,
        Ok(Lookup::NotFound) => AfterLookup::Failed,
        Err(_) => AfterLookup::Hold,
    }
}

/// Runs until `stop` turns true, finishing the message in hand first.
pub fn spawn(
    booking: Booking,
    settings: OutboxSettings,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut kept_at: Option<tokio::time::Instant> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            // A booking wakes the worker for its one message; the housekeeping (stuck
            // messages, the gauges, the gateway's answers) is due once a poll interval.
            let housekeeping = kept_at.is_none_or(|at| at.elapsed() >= POLL);
            if housekeeping {
                kept_at = Some(tokio::time::Instant::now());
            }
            if let Err(e) = round(&booking, &settings, housekeeping).await {
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

fn later(after: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::hours(1))
}

/// One round: holds what dead workers left `sending`, settles `unknown` messages the gateway
/// can be asked about, sends every due message, then asks for due delivery reports.
/// Returns how many messages were sent.
pub async fn drain(booking: &Booking, settings: &OutboxSettings) -> anyhow::Result<usize> {
    round(booking, settings, true).await
}

/// A round; without `housekeeping`, only the due messages are sent.
async fn round(
    booking: &Booking,
    settings: &OutboxSettings,
    housekeeping: bool,
) -> anyhow::Result<usize> {
    let mut conn = booking.db.get().await?;
    // Without a configured gateway, messages wait in the outbox (counted below) until the
    // server restarts with one; sending would only burn their attempts.
    let waiting = booking.sms.name() == "unconfigured";
    if housekeeping {
        keep_house(booking, &mut conn, settings).await?;
    }
    if waiting {
        return Ok(0);
    }
    let mut sent = 0;
    // One message at a time: a worker that dies leaves at most one message `sending`.
    loop {
        let Some(message) = outbox::claim_due(&mut conn, 1).await?.pop() else {
            break;
        };
        if message.kind == super::notify::Notice::Reminder.kind()
            && outbox::drop_stale_reminder(&mut conn, message.id).await?
        {
            tracing::info!(
                message = message.id,
                "reminder dropped: its visit changed after it was queued"
            );
            continue;
        }
        if deliver(booking, &mut conn, settings, &message).await? {
            sent += 1;
        }
    }
    if housekeeping
        && let Some(poll) = settings.status_poll
        && booking.sms.reports_delivery()
    {
        check_delivery(booking, &mut conn, settings, poll).await?;
    }
    Ok(sent)
}

/// Holds what dead workers left `sending`, sets the gauges, and settles `unknown` messages
/// the gateway can be asked about.
async fn keep_house(
    booking: &Booking,
    conn: &mut AsyncPgConnection,
    settings: &OutboxSettings,
) -> anyhow::Result<()> {
    let stuck = outbox::hold_stuck(conn, Utc::now() - settings.stuck_after).await?;
    for id in stuck {
        metrics::counter!("sms_send_total", "result" => "unknown").increment(1);
        tracing::error!(
            message = id,
            "SMS left sending by a stopped worker; held until its outcome is known"
        );
    }
    let depth = outbox::depth(conn).await?;
    metrics::gauge!("sms_outbox_depth").set(depth as f64);
    let held = outbox::held(conn).await?;
    metrics::gauge!("sms_outbox_unknown").set(held as f64);
    if booking.sms.name() != "unconfigured" && booking.sms.can_look_up() {
        settle_unknown(booking, conn, settings).await?;
    }
    Ok(())
}

fn outgoing(message: &OutboxMessage) -> OutgoingSms {
    OutgoingSms {
        to: message.phone.clone(),
        text: message.body.clone(),
        client_ref: Some(message.id.to_string()),
    }
}

/// When the delivery of a message sent now is first asked, if it is.
fn first_check(booking: &Booking, settings: &OutboxSettings) -> Option<DateTime<Utc>> {
    settings
        .status_poll
        .filter(|_| booking.sms.reports_delivery())
        .map(later)
}

async fn deliver(
    booking: &Booking,
    conn: &mut AsyncPgConnection,
    settings: &OutboxSettings,
    message: &OutboxMessage,
) -> anyhow::Result<bool> {
    let gateway = Arc::clone(&booking.sms);
    let result = gateway.send(&outgoing(message)).await;
    let error = result.as_ref().err().map(ToString::to_string);
    let error = error.as_deref().unwrap_or_default();
    match after_send(&result, message.attempts, settings.retry_base) {
        AfterSend::Sent(provider_id) => {
            record_sent(booking, conn, message.id, &provider_id, settings).await?;
            metrics::counter!("sms_send_total", "result" => "sent").increment(1);
            tracing::info!(message = message.id, gateway = gateway.name(), provider_id = %provider_id, "SMS sent");
            Ok(true)
        }
        AfterSend::Retry(wait) => {
            outbox::mark_retry(conn, message.id, error, later(wait)).await?;
            metrics::counter!("sms_send_total", "result" => "retry").increment(1);
            tracing::warn!(
                message = message.id,
                attempts = message.attempts,
                error,
                "SMS not sent; will retry"
            );
            Ok(false)
        }
        AfterSend::Failed => {
            outbox::mark_failed(conn, message.id, error).await?;
            metrics::counter!("sms_send_total", "result" => "failed").increment(1);
            tracing::error!(
                message = message.id,
                attempts = message.attempts,
                error,
                "SMS failed for good"
            );
            Ok(false)
        }
        AfterSend::Unknown => {
            // Asked no sooner than the grace period, so a request still on its way has landed.
            outbox::mark_unknown(conn, message.id, error, later(settings.lookup_grace)).await?;
            metrics::counter!("sms_send_total", "result" => "unknown").increment(1);
            tracing::error!(
                message = message.id,
                attempts = message.attempts,
                error,
                "SMS outcome unknown; held, not sent again until the gateway is asked"
            );
            Ok(false)
        }
    }
}

/// Records `sent` once the gateway took the message. The gateway's answer is the truth, so
/// a failed write is tried again on fresh connections before giving up; given up, the
/// message stays `sending` and is later held as `unknown` (never sent twice).
async fn record_sent(
    booking: &Booking,
    conn: &mut AsyncPgConnection,
    id: i64,
    provider_id: &str,
    settings: &OutboxSettings,
) -> anyhow::Result<()> {
    let check_at = first_check(booking, settings);
    let mut last = match outbox::mark_sent(conn, id, provider_id, check_at).await {
        Ok(_) => return Ok(()),
        Err(e) => anyhow::Error::from(e),
    };
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let written = match booking.db.get().await {
            Ok(mut fresh) => outbox::mark_sent(&mut fresh, id, provider_id, check_at)
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(anyhow::Error::from(e)),
        };
        match written {
            Ok(_) => return Ok(()),
            Err(e) => last = e,
        }
    }
    tracing::error!(message = id, provider_id, error = %last, "SMS accepted by the gateway but not recorded as sent");
    Err(last)
}

/// Asks the gateway about `unknown` messages that are due (gateways that can be asked).
async fn settle_unknown(
    booking: &Booking,
    conn: &mut AsyncPgConnection,
    settings: &OutboxSettings,
) -> anyhow::Result<()> {
    loop {
        let batch = outbox::claim_unknown(conn, 10, later(settings.lookup_grace)).await?;
        if batch.is_empty() {
            return Ok(());
        }
        for message in batch {
            let result = booking.sms.lookup(&outgoing(&message)).await;
            match after_lookup(&result, message.attempts) {
                AfterLookup::Sent(provider_id) => {
                    outbox::mark_sent(
                        conn,
                        message.id,
                        &provider_id,
                        first_check(booking, settings),
                    )
                    .await?;
                    tracing::info!(message = message.id, provider_id = %provider_id, "SMS of unknown outcome: the gateway has it");
                }
                AfterLookup::SendAgain => {
                    outbox::requeue_unknown(conn, message.id).await?;
                    tracing::warn!(
                        message = message.id,
                        "SMS of unknown outcome: the gateway does not have it; sending again"
                    );
                }
                AfterLookup::Failed => {
                    outbox::fail_unknown(
                        conn,
                        message.id,
                        "the gateway does not have it and the attempts are used up",
                    )
                    .await?;
                    tracing::error!(message = message.id, "SMS failed for good");
                }
                AfterLookup::Hold => {
                    let error = result.err().map(|e| e.to_string()).unwrap_or_default();
                    tracing::warn!(
                        message = message.id,
                        error,
                        "SMS of unknown outcome: the gateway could not be asked; asking later"
                    );
                }
            }
        }
    }
}

/// Asks the delivery of sent messages that are due, and records what the gateway says.
async fn check_delivery(
    booking: &Booking,
    conn: &mut AsyncPgConnection,
    settings: &OutboxSettings,
    poll: Duration,
) -> anyhow::Result<()> {
    let window =
        chrono::Duration::from_std(settings.status_window).unwrap_or(chrono::Duration::hours(48));
    let due = outbox::claim_checks(conn, CHECK_BATCH, Utc::now() - window, later(poll)).await?;
    if due.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = due.iter().map(|c| c.provider_id.clone()).collect();
    let states = match booking.sms.delivery(&ids).await {
        Ok(states) => states,
        Err(e) => {
            // The claimed checks were moved to the next interval: asked again then.
            tracing::warn!(error = %e, messages = due.len(), "SMS delivery status not available");
            return Ok(());
        }
    };
    for check in due {
        let Some(state) = states
            .iter()
            .find(|(id, _)| *id == check.provider_id)
            .map(|(_, state)| *state)
        else {
            continue;
        };
        let final_state = state.final_state();
        if outbox::record_delivery(conn, check.id, state.code(), final_state).await?
            && let Some(final_state) = final_state
        {
            metrics::counter!("sms_delivery_total", "state" => final_state).increment(1);
            tracing::info!(
                message = check.id,
                code = state.code(),
                state = final_state,
                "SMS delivery known"
            );
        }
        if state == Delivery::NotFound {
            tracing::warn!(message = check.id, provider_id = %check.provider_id, "the gateway does not know a message it took");
        }
    }
    Ok(())
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

    fn accepted(id: &str) -> Accepted {
        Accepted {
            provider_id: id.into(),
        }
    }

    #[test]
    fn an_accepted_send_is_sent_with_the_gateway_id() {
        let base = Duration::from_secs(5);
        assert_eq!(
            after_send(&Ok(accepted("202603-1")), 1, base),
            AfterSend::Sent("202603-1".into())
        );
        // Even on the last attempt: acceptance is acceptance.
        assert_eq!(
            after_send(&Ok(accepted("x")), MAX_ATTEMPTS, base),
            AfterSend::Sent("x".into())
        );
    }

    #[test]
    fn a_send_without_an_answer_is_held_never_retried() {
        let base = Duration::from_secs(5);
        for e in [
            SmsError::Unanswered("no answer within 10s".into()),
            SmsError::Parse("not JSON".into()),
        ] {
            assert!(e.outcome_unknown(), "{e}");
            for attempts in [1, 5, MAX_ATTEMPTS, MAX_ATTEMPTS + 3] {
                assert_eq!(
                    after_send(&Err(e.clone()), attempts, base),
                    AfterSend::Unknown
                );
            }
        }
    }

    #[test]
    fn a_definite_refusal_is_retried_or_failed() {
        let base = Duration::from_secs(5);
        for e in [
            SmsError::Transport("connection refused".into()),
            SmsError::Temporary { code: 220 },
            SmsError::Temporary { code: 503 },
            SmsError::Deferred { code: 231 },
        ] {
            assert!(!e.outcome_unknown(), "{e}");
            assert_eq!(
                after_send(&Err(e.clone()), 1, base),
                AfterSend::Retry(Duration::from_secs(5))
            );
            assert_eq!(
                after_send(&Err(e.clone()), 3, base),
                AfterSend::Retry(Duration::from_secs(20))
            );
            assert_eq!(
                after_send(&Err(e.clone()), MAX_ATTEMPTS, base),
                AfterSend::Failed
            );
        }
        for e in [
            SmsError::Auth { code: 200 },
            SmsError::InsufficientFunds { code: 201 },
            SmsError::InvalidPhone { code: 202 },
            SmsError::Undeliverable { code: 207 },
            SmsError::Rejected { code: 204 },
            SmsError::Encode("bad".into()),
            SmsError::NotConfigured("SMSRU_API_ID".into()),
        ] {
            assert!(!e.outcome_unknown(), "{e}");
            assert_eq!(after_send(&Err(e), 1, base), AfterSend::Failed);
        }
    }

    #[test]
    fn an_unknown_message_is_sent_again_only_when_the_gateway_does_not_have_it() {
        assert_eq!(
            after_lookup(&Ok(Lookup::Found(accepted("7-1"))), 1),
            AfterLookup::Sent("7-1".into())
        );
        assert_eq!(
            after_lookup(&Ok(Lookup::Found(accepted("7-1"))), MAX_ATTEMPTS),
            AfterLookup::Sent("7-1".into())
        );
        assert_eq!(
            after_lookup(&Ok(Lookup::NotFound), 1),
            AfterLookup::SendAgain
        );
        assert_eq!(
            after_lookup(&Ok(Lookup::NotFound), MAX_ATTEMPTS),
            AfterLookup::Failed
        );
        for e in [
            SmsError::Transport("down".into()),
            SmsError::Unanswered("timeout".into()),
            SmsError::NotConfigured("cannot look up".into()),
        ] {
            assert_eq!(after_lookup(&Err(e), 1), AfterLookup::Hold);
        }
    }

    #[test]
    fn delivery_states_are_final_only_when_the_gateway_says_so() {
        for (delivery, code, state) in [
            (Delivery::Queued, 100, None),
            (Delivery::Sending, 101, None),
            (Delivery::Sent, 102, None),
            (Delivery::Delivered, 103, Some("delivered")),
            (Delivery::Expired, 104, Some("expired")),
            (
                Delivery::Undelivered { code: 107 },
                107,
                Some("undelivered"),
            ),
            (Delivery::NotFound, -1, None),
            (Delivery::Other { code: 999 }, 999, None),
        ] {
            assert_eq!(delivery.code(), code);
            assert_eq!(delivery.final_state(), state, "{delivery:?}");
        }
    }
}
