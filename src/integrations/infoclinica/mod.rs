//! The MIS Infoclinica: the [`Mis`] trait, its message types and its error type.
//! Protocol: `docs/infoclinica-protocol.md` (envelope `WEB_<OP>`/`MSH`, answer
//! `ACK`/`MSA`/`<OP>_OUT` with `SPRESULT`, `SPCOMMENT`, `CHECKDATA`).

pub mod client;
pub mod messages;
pub mod paging;
pub mod xml;

use async_trait::async_trait;

/// A filial (branch) from `GET_FILIAL_LIST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MisBranch {
    pub mis_id: i64,
    pub name: String,
    pub address: String,
    pub phone: String,
    pub email: String,
    /// `TIMEZONE`: hours from UTC, when the MIS reports it.
    pub utc_offset_hours: Option<i32>,
    /// `WORKHOURS`: the opening hours as free text; empty when the MIS sends none.
    pub work_hours: String,
    pub visible: bool,
}

/// A department (speciality) from `GET_DEPARTMENT_LIST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MisDepartment {
    pub mis_id: i64,
    pub name: String,
    pub group_name: String,
    pub visible: bool,
}

/// One `GETDOCTORLIST` item: a doctor in one department of one filial. A doctor who works
/// in two filials or departments appears once per pair, with the same `doctor_mis_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MisDoctor {
    pub doctor_mis_id: i64,
    pub full_name: String,
    pub department_mis_id: i64,
    pub department_name: String,
    pub branch_mis_id: i64,
    pub visible: bool,
}

/// One page of `GET_DOCTOR_LIST` (`FIRSTROW`..=`LASTROW`, 1-based); [`paging::Pager`]
/// checks that the pages add up to `total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MisDoctorPage {
    pub items: Vec<MisDoctor>,
    /// `RECORDSDATA/ITEMSNUMBER` when the MIS sends it: all matching items.
    pub total: Option<u32>,
}

/// One `SCH` item of `PRICE_LIST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MisPrice {
    pub mis_id: i64,
    /// `KODOPER`, trimmed.
    pub code: String,
    pub name: String,
    /// `SPRICE` in kopecks (`2500.00` → 250000).
    pub price_kopecks: i64,
    pub branch_mis_id: i64,
    /// The `DEPNUM` the list was asked for.
    pub department_mis_id: i64,
    /// `SCHSCHEDTYPE` 0 means it cannot be booked online; absent means bookable.
    pub bookable: bool,
}

/// A `CHECKDATA` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MisCheck {
    pub code: i64,
    pub label: String,
    pub text: String,
}

/// One interval of a doctor's slot grid (`SCHEDULE` … `SCHEDINT/INTERVAL`), in the branch's
/// local wall-clock time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MisInterval {
    pub start: chrono::NaiveTime,
    pub end: chrono::NaiveTime,
    /// `FREETYPE`: 1 is free and bookable; anything else is not (0 taken, -6 past, …).
    pub free_type: i64,
    /// The work period (`SCHEDIDENT`) the interval belongs to; a reserve must carry it.
    pub schedident: i64,
}

impl MisInterval {
    /// `FREETYPE` 1: the only value that may be booked.
    pub fn is_free(&self) -> bool {
        self.free_type == 1
    }
}

/// A doctor's grid for one day (`WRDATE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MisDaySchedule {
    pub date: chrono::NaiveDate,
    pub doctor_mis_id: i64,
    pub intervals: Vec<MisInterval>,
}

/// `SCHEDULE_REC_RESERVE`: book (or, with `move_schedid`, move) one interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveRequest {
    pub branch_mis_id: i64,
    pub doctor_mis_id: i64,
    pub date: chrono::NaiveDate,
    pub start: chrono::NaiveTime,
    pub end: chrono::NaiveTime,
    pub schedident: i64,
    pub pcode: i64,
    /// `SCHEDID` of an existing appointment to move to this interval.
    pub move_schedid: Option<i64>,
}

/// A patient to find (`CLIENT_CHECK`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatientQuery {
    /// `CHECKMODE 11`: by portal login (e-mail).
    Email(String),
    /// `CHECKMODE 2` (the emulator's own choice; real servers may not support it): by phone.
    Phone(String),
}

/// A patient card to create (`CLIENT_ADD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMisPatient {
    pub last_name: String,
    pub first_name: String,
    pub middle_name: Option<String>,
    pub birth_date: Option<chrono::NaiveDate>,
    /// E.164 (`+79161234567`); the client sends the MIS's `+7(916)123-45-67`.
    pub phone: String,
    pub email: Option<String>,
}

/// One appointment of a patient (`SCHEDULE_REC_LIST` … `SCHEDULEREC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MisAppointment {
    pub schedid: i64,
    pub branch_mis_id: i64,
    pub doctor_mis_id: i64,
    pub date: chrono::NaiveDate,
    pub start: chrono::NaiveTime,
    pub end: chrono::NaiveTime,
}

/// What a change of the feed did (`CHANGEOP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MisChangeOp {
    Added,
    Changed,
    Deleted,
}

/// One item of the change feed (`SCHEDULE_CHANGE_LIST`): the appointment as it now is (or
/// was, when deleted), branch-local times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MisChange {
    pub change_id: i64,
    pub op: MisChangeOp,
    pub schedid: i64,
    pub branch_mis_id: i64,
    pub doctor_mis_id: i64,
    pub date: chrono::NaiveDate,
    pub start: chrono::NaiveTime,
    pub end: chrono::NaiveTime,
    /// `PCODE`: the patient's card.
    pub pcode: Option<i64>,
    /// `CLVISIT 1`: the patient attended.
    pub visited: bool,
}

/// The `CHECKLABEL` of the MIS's "time taken" answer to a reserve.
pub const TIME_TAKEN_LABEL: &str = "Время занято";

/// Why an MIS call failed. Messages of the MIS are kept for operators.
#[derive(Debug, thiserror::Error)]
pub enum MisError {
    /// Not configured (`INFOCLINICA_URL` unset) or a bad certificate file.
    #[error("MIS client is not configured: {0}")]
    NotConfigured(String),
    /// Connection refused, reset, DNS failure.
    #[error("MIS is unreachable: {0}")]
    Unreachable(String),
    #[error("MIS did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// A non-200 status; `body` is a short excerpt for the log.
    #[error("MIS answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    /// A 3xx: never followed.
    #[error("MIS answered with a redirect to {location:?}; redirects are not followed")]
    Redirect { location: String },
    #[error("MIS answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// Not XML, not UTF-8, a DTD or entity declaration, or a required field missing.
    #[error("MIS answer is malformed: {0}")]
    Malformed(String),
    /// `MSA.1` other than `AA` (envelope problem).
    #[error("MIS refused the message ({code}): {message}")]
    Refused { code: String, message: String },
    /// `SPRESULT` other than 1 (business failure), with the MIS's own texts.
    #[error("MIS operation failed (SPRESULT {spresult}): {comment}")]
    Failed {
        spresult: i64,
        comment: String,
        checks: Vec<MisCheck>,
    },
}

impl MisError {
    /// A reserve refused because the interval is no longer free.
    pub fn is_slot_taken(&self) -> bool {
        matches!(self, MisError::Failed { checks, comment, .. }
            if checks.iter().any(|c| c.label == TIME_TAKEN_LABEL) || comment.contains("занято"))
    }

    /// Whether a retry could help (read-only messages only are retried).
    pub fn is_transient(&self) -> bool {
        matches!(self, MisError::Unreachable(_) | MisError::Timeout(_))
            || matches!(self, MisError::Http { status, .. } if *status >= 500)
    }
}

/// The MIS operations this server uses.
#[async_trait]
pub trait Mis: Send + Sync {
    async fn branches(&self) -> Result<Vec<MisBranch>, MisError>;
    async fn departments(&self) -> Result<Vec<MisDepartment>, MisError>;
    /// Rows `first_row..=last_row` (1-based) of the doctor list.
    async fn doctors_page(&self, first_row: u32, last_row: u32) -> Result<MisDoctorPage, MisError>;
    /// The price list of one department.
    async fn prices(&self, department_mis_id: i64) -> Result<Vec<MisPrice>, MisError>;
}

/// The MIS operations of booking: the slot grid, reserve, cancel, and patient cards.
#[async_trait]
pub trait MisBooking: Send + Sync {
    /// `SCHEDULE`: the doctor's grid in one branch for `from..=to` (branch-local dates).
    async fn schedule(
        &self,
        branch_mis_id: i64,
        doctor_mis_id: i64,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<Vec<MisDaySchedule>, MisError>;

    /// `SCHEDULE_REC_RESERVE`: returns the appointment's `SCHEDID`. A taken interval is
    /// `MisError::Failed` for which [`MisError::is_slot_taken`] holds. Never retried.
    async fn reserve(&self, request: &ReserveRequest) -> Result<i64, MisError>;

    /// `SCHEDULE_REC_REMOVE`. Cancelling twice is `MisError::Failed` (SPRESULT 0). Never retried.
    async fn cancel(
        &self,
        branch_mis_id: i64,
        schedid: i64,
        pcode: Option<i64>,
    ) -> Result<(), MisError>;

    /// `SCHEDULE_REC_UPDATE`: sets (`visited`) or clears the attended mark. Never retried.
    async fn set_visit_mark(
        &self,
        branch_mis_id: i64,
        schedid: i64,
        visited: bool,
    ) -> Result<(), MisError>;

    /// `CLIENT_CHECK`: the patient's `PCODE`, or `None` when the MIS does not know them.
    async fn find_patient(&self, query: &PatientQuery) -> Result<Option<i64>, MisError>;

    /// `CLIENT_ADD`: the new `PCODE`; for a card that already exists (same name and birth
    /// date), the existing `PCODE`. Never retried.
    async fn add_patient(&self, patient: &NewMisPatient) -> Result<i64, MisError>;

    /// `SCHEDULE_REC_LIST`: the patient's appointments from `from` on.
    async fn appointments(
        &self,
        pcode: i64,
        from: chrono::NaiveDate,
    ) -> Result<Vec<MisAppointment>, MisError>;

    /// `SCHEDULE_CHANGE_LIST`: the branch's changes not yet confirmed.
    async fn changes(&self, branch_mis_id: i64) -> Result<Vec<MisChange>, MisError>;

    /// `SCHEDULE_CHANGE_ACCEPT`: confirms changes once they are applied here. Never retried.
    async fn accept_changes(&self, branch_mis_id: i64, change_ids: &[i64]) -> Result<(), MisError>;
}
