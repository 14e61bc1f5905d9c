//! `BookingTarget`: a doctor in a branch, resolved from ids in one query.

use std::sync::Arc;

use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::prepared::KeepPrepared;

use super::{BookingError, TargetError, schedule::GridTarget};
use crate::domain::values::BranchZone;

/// A doctor in a branch, as booking needs them. The names are shared (`Arc<str>`): a read
/// resolves its target from the directory in memory on every request, without copying them.
#[derive(Debug, Clone)]
pub struct BookingTarget {
    pub specialist_id: i64,
    pub specialist_mis_id: i64,
    pub specialist_name: Arc<str>,
    pub branch_id: i64,
    pub branch_mis_id: i64,
    pub branch_name: Arc<str>,
    pub branch_address: Arc<str>,
    pub zone: BranchZone,
}

impl BookingTarget {
    /// The doctor's full name and the branch's address, as an SMS about a visit names them.
    pub fn place(&self) -> (&str, &str) {
        (&self.specialist_name, &self.branch_address)
    }

    pub fn grid(&self) -> GridTarget {
        GridTarget {
            specialist_id: self.specialist_id,
            specialist_mis_id: self.specialist_mis_id,
            branch_id: self.branch_id,
            branch_mis_id: self.branch_mis_id,
            zone: self.zone,
        }
    }
}

/// The doctor, the branch and whether the doctor works there, in one round trip.
#[derive(diesel::QueryableByName)]
struct TargetRow {
    #[diesel(sql_type = Nullable<BigInt>)]
    specialist_mis_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    specialist_name: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    branch_mis_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    branch_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    branch_address: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    branch_timezone: Option<BranchZone>,
    #[diesel(sql_type = Bool)]
    works_there: bool,
}

/// Loads the active doctor and branch and checks that the doctor works there.
pub async fn resolve(
    conn: &AsyncPgConnection,
    specialist_id: i64,
    branch_id: i64,
) -> Result<BookingTarget, BookingError> {
    // One query (the schedule read path runs it on every request): both sides are looked up
    // on their own, so a missing doctor and a missing branch are told apart.
    let mut conn = conn;
    let rows: Vec<TargetRow> = KeepPrepared(
        diesel::sql_query(
            "SELECT s.mis_id AS specialist_mis_id, s.full_name AS specialist_name, \
                    b.mis_id AS branch_mis_id, b.name AS branch_name, b.address AS branch_address, \
                    b.timezone AS branch_timezone, \
                    EXISTS (SELECT 1 FROM specialist_branches sb WHERE sb.specialist_id = $1 AND sb.branch_id = $2) AS works_there \
             FROM (SELECT 1) AS one \
             LEFT JOIN specialists s ON s.id = $1 AND s.active \
             LEFT JOIN branches b ON b.id = $2 AND b.active",
        )
        .bind::<BigInt, _>(specialist_id)
        .bind::<BigInt, _>(branch_id),
    )
    .load(&mut conn)
    .await?;
    let row = rows
        .into_iter()
        .next()
        .ok_or(BookingError::Target(TargetError::NoSuchDoctor))?;
    let (Some(specialist_mis_id), Some(specialist_name)) =
        (row.specialist_mis_id, row.specialist_name)
    else {
        return Err(BookingError::Target(TargetError::NoSuchDoctor));
    };
    let (Some(branch_mis_id), Some(branch_name), Some(branch_address), Some(zone)) = (
        row.branch_mis_id,
        row.branch_name,
        row.branch_address,
        row.branch_timezone,
    ) else {
        return Err(BookingError::Target(TargetError::NoSuchBranch));
    };
    if !row.works_there {
        return Err(BookingError::Target(TargetError::DoctorNotInBranch));
    }
    Ok(BookingTarget {
        specialist_id,
        specialist_mis_id,
        specialist_name: specialist_name.into(),
        branch_id,
        branch_mis_id,
        branch_name: branch_name.into(),
        branch_address: branch_address.into(),
        zone,
    })
}
