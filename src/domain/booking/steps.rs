//! Where a booking's time goes: each step of a booking is timed into the histogram
//! `booking_step_duration_seconds{step}` (fixed step names, nothing about the patient), so an
//! operator sees which part grew when bookings slow down, and `just bench` reports the
//! breakdown of S5 beside the MIS's own time.

use std::time::Instant;

/// A step of a booking, as named in the metric.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// The doctor and the slot, the phone proof, the SMS day and the limits.
    Checks,
    /// The slot's short Redis lock (a visitor's booking takes it alongside the limits,
    /// within `Checks`).
    SlotLock,
    /// The MIS patient card (found or added), when the booking has none yet.
    PatientCard,
    /// The intent's transaction (with a visitor's proof and consents). For a patient without
    /// an MIS card it runs while the MIS adds the card, beside `PatientCard`.
    Intent,
    /// A new card written into the intent opened without one (its own commit, before the MIS
    /// is asked for the appointment).
    CardNoted,
    /// The MIS's reservation.
    Reserve,
    /// The record's transaction (record, SMS, audit row, intent done, view).
    Record,
    /// The slot's lock released and the day dropped from every cache (once the MIS booked,
    /// beside `Record`).
    Release,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Checks => "checks",
            Step::SlotLock => "slot_lock",
            Step::PatientCard => "patient_card",
            Step::Intent => "intent",
            Step::CardNoted => "card_noted",
            Step::Reserve => "reserve",
            Step::Record => "record",
            Step::Release => "release",
        }
    }
}

/// Runs `work` and records how long it took as `step` (failed or not).
pub async fn timed<T>(step: Step, work: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = work.await;
    metrics::histogram!("booking_step_duration_seconds", "step" => step.name())
        .record(started.elapsed().as_secs_f64());
    out
}
