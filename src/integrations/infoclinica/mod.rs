//! The MIS Infoclinica: the [`Mis`] trait, its message types and its error type.
//! Protocol: `docs/infoclinica-protocol.md` (envelope `WEB_<OP>`/`MSH`, answer
//! `ACK`/`MSA`/`<OP>_OUT` with `SPRESULT`, `SPCOMMENT`, `CHECKDATA`).

pub mod client;
pub mod messages;
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

/// One page of `GET_DOCTOR_LIST` (`FIRSTROW`..=`LASTROW`, 1-based).
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
