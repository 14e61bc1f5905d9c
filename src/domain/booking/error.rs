//! What can go wrong in booking, as the core sees it. The faces turn each variant into a
//! status code and Russian text (`crate::error`); nothing here is worded for people.

use crate::{domain::values::FieldErrors, integrations::infoclinica::MisError};

/// Why a doctor and a branch cannot be booked together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetError {
    NoSuchDoctor,
    NoSuchBranch,
    /// Both exist, but the doctor does not see patients in that branch.
    DoctorNotInBranch,
}

/// The change a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Cancel,
    Move,
    /// Marking the visit's outcome (visited, no-show).
    Outcome,
}

#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    /// Input refused by the value types, by field.
    #[error("invalid input: {0}")]
    Invalid(FieldErrors),
    #[error("target: {0:?}")]
    Target(TargetError),
    /// The start has passed (or is now).
    #[error("the start is in the past")]
    StartInPast,
    /// No slot of the doctor's grid starts then.
    #[error("no slot starts then")]
    NotASlot,
    /// A move to the time the record already has.
    #[error("the record already starts then")]
    SameTime,
    /// The slot is taken (locally, by a concurrent request, or in the MIS).
    #[error("slot taken")]
    SlotTaken,
    /// The record does not exist, or the user may not see it.
    #[error("record not found")]
    RecordNotFound,
    #[error("record already cancelled ({0:?})")]
    AlreadyCancelled(Change),
    /// The visit has started or passed, or its outcome is recorded.
    #[error("record no longer changeable ({0:?})")]
    NoLongerChangeable(Change),
    /// The desk's operations are for staff and admins.
    #[error("not staff")]
    NotStaff,
    /// An outcome marked before the visit started.
    #[error("the visit has not started")]
    OutcomeBeforeStart,
    /// The visit's outcome is already marked.
    #[error("outcome already marked")]
    OutcomeAlreadyMarked,
    /// Only a failed or undelivered SMS is sent again.
    #[error("message not resendable")]
    MessageNotResendable,
    /// Someone else changed the record meanwhile.
    #[error("record changed concurrently")]
    RecordChanged,
    /// The patient's account has no phone, which booking needs for the MIS card and SMS.
    #[error("the account has no phone")]
    PatientHasNoPhone,
    /// The patient withdrew their consent for this purpose and has not given it again:
    /// the clinic does not process their data for a new visit.
    #[error("consent withdrawn: {0:?}")]
    ConsentWithdrawn(crate::domain::values::ConsentPurpose),
    #[error("rate limited for {retry_after_secs}s")]
    RateLimited { retry_after_secs: u64 },
    /// The patient already holds the most upcoming visits allowed.
    #[error("at most {max} upcoming visits")]
    TooManyUpcoming { max: u32 },
    /// The proof of the phone is missing or does not serve this booking.
    #[error("phone proof: {0:?}")]
    PhoneProof(crate::domain::phones::ProofProblem),
    /// The MIS refused for a reason of its own, with its comment.
    #[error("MIS refused: {0}")]
    MisRefused(String),
    #[error("MIS unavailable: {0}")]
    MisUnavailable(MisError),
    /// The MIS accepted, the local write failed, and the MIS booking was cancelled again.
    #[error("booking not kept: {0}")]
    NotKept(String),
    /// The MIS moved, the local write failed, and the MIS appointment was moved back.
    #[error("move not kept: {0}")]
    MoveNotKept(String),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
    /// The stored copy of the schedule could not be read or written.
    #[error("schedule store: {0}")]
    Store(String),
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    /// The task carrying the operation ended abnormally (a panic, or the runtime stopping);
    /// its intent, if written, is settled by the reconciler.
    #[error("booking task interrupted: {0}")]
    Interrupted(String),
    /// The MIS changed, the local write did not, and undoing the MIS side failed too: the
    /// reconciler completes it shortly from the intent.
    #[error("completed later: {0}")]
    Deferred(String),
}

impl BookingError {
    /// An MIS failure of a booking operation.
    pub fn from_mis(e: MisError) -> Self {
        if e.is_slot_taken() {
            return BookingError::SlotTaken;
        }
        match e {
            MisError::Failed { comment, .. } => BookingError::MisRefused(comment),
            other => BookingError::MisUnavailable(other),
        }
    }
}

impl From<FieldErrors> for BookingError {
    fn from(errors: FieldErrors) -> Self {
        BookingError::Invalid(errors)
    }
}

impl From<super::schedule::ScheduleError> for BookingError {
    fn from(e: super::schedule::ScheduleError) -> Self {
        match e {
            super::schedule::ScheduleError::NoCopy(e) => BookingError::from_mis(e),
            super::schedule::ScheduleError::Database(e) => BookingError::Store(e),
        }
    }
}

impl From<crate::domain::phones::VerifyError> for BookingError {
    fn from(e: crate::domain::phones::VerifyError) -> Self {
        use crate::domain::phones::VerifyError;
        match e {
            VerifyError::Proof(problem) => BookingError::PhoneProof(problem),
            VerifyError::RateLimited { retry_after_secs } => {
                BookingError::RateLimited { retry_after_secs }
            }
            VerifyError::Database(e) => BookingError::Database(e),
            VerifyError::Pool(e) => BookingError::Pool(e),
            VerifyError::Redis(e) => BookingError::Redis(e),
            other => BookingError::Store(other.to_string()),
        }
    }
}
