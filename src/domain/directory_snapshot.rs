//! The directory in memory: the active doctors, the active branches and who works where, as
//! one immutable snapshot swapped whole (`arc-swap`), so a schedule read resolves its doctor
//! and branch without PostgreSQL.
//!
//! Rebuilt at start-up, after every directory sync of this process, on the cluster's
//! "directory changed" message (every sync run sends it after it commits, so a sync on
//! another replica or from the command line reaches this one; [`super::cluster`]), and every
//! `DIRECTORY_RELOAD_SECONDS` as a backstop. Read paths only: a booking, a move and a cancel
//! check the doctor and branch in PostgreSQL (`Booking::target`), so a snapshot that has not
//! yet heard of a deactivation can never book a doctor who no longer sees patients (a
//! visitor's booking looks its slot up early for the snapshot's doctor, and keeps that slot
//! only when PostgreSQL, read at the same time, has the same doctor and branch).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{
    db::{
        DbPool,
        schema::{branches, specialist_branches, specialists},
    },
    domain::{
        booking::{BookingTarget, TargetError},
        values::BranchZone,
    },
};

/// The least time between two rebuilds asked for by reads of doctors the snapshot does not
/// know (ids that do not exist must not make every read a rebuild).
const RELOAD_ASKED_GAP: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Doctor {
    mis_id: i64,
    full_name: Arc<str>,
}

#[derive(Debug, Clone)]
struct Branch {
    mis_id: i64,
    name: Arc<str>,
    address: Arc<str>,
    zone: BranchZone,
}

/// The active doctors and branches and the doctor-in-branch links, at one moment.
#[derive(Debug, Default)]
pub struct DirectorySnapshot {
    doctors: HashMap<i64, Doctor>,
    branches: HashMap<i64, Branch>,
    links: HashSet<(i64, i64)>,
}

/// What the snapshot says of a doctor in a branch.
#[derive(Debug)]
pub enum Resolved {
    Target(BookingTarget),
    Refused(TargetError),
    /// The snapshot knows the doctor or the branch not (added since it was built, or no such
    /// id): PostgreSQL decides.
    Unknown,
}

impl DirectorySnapshot {
    /// The doctor in the branch, checked as `target::resolve` checks them.
    pub fn resolve(&self, specialist_id: i64, branch_id: i64) -> Resolved {
        let (Some(doctor), Some(branch)) = (
            self.doctors.get(&specialist_id),
            self.branches.get(&branch_id),
        ) else {
            return Resolved::Unknown;
        };
        if !self.links.contains(&(specialist_id, branch_id)) {
            return Resolved::Refused(TargetError::DoctorNotInBranch);
        }
        Resolved::Target(BookingTarget {
            specialist_id,
            specialist_mis_id: doctor.mis_id,
            specialist_name: doctor.full_name.clone(),
            branch_id,
            branch_mis_id: branch.mis_id,
            branch_name: branch.name.clone(),
            branch_address: branch.address.clone(),
            zone: branch.zone,
        })
    }

    /// How many active doctors it holds.
    pub fn doctors(&self) -> usize {
        self.doctors.len()
    }

    /// Reads the directory in one read-only transaction, so the three lists agree.
    async fn load(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Self> {
        conn.build_transaction()
            .read_only()
            .repeatable_read()
            .run(async |conn| {
                let doctors: Vec<(i64, i64, String)> = specialists::table
                    .filter(specialists::active.eq(true))
                    .select((specialists::id, specialists::mis_id, specialists::full_name))
                    .load(conn)
                    .await?;
                let branches: Vec<(i64, i64, String, String, BranchZone)> = branches::table
                    .filter(branches::active.eq(true))
                    .select((
                        branches::id,
                        branches::mis_id,
                        branches::name,
                        branches::address,
                        branches::timezone,
                    ))
                    .load(conn)
                    .await?;
                let links: Vec<(i64, i64)> = specialist_branches::table
                    .select((
                        specialist_branches::specialist_id,
                        specialist_branches::branch_id,
                    ))
                    .load(conn)
                    .await?;
                Ok::<_, diesel::result::Error>(Self {
                    doctors: doctors
                        .into_iter()
                        .map(|(id, mis_id, full_name)| {
                            let full_name = full_name.into();
                            (id, Doctor { mis_id, full_name })
                        })
                        .collect(),
                    branches: branches
                        .into_iter()
                        .map(|(id, mis_id, name, address, zone)| {
                            (
                                id,
                                Branch {
                                    mis_id,
                                    name: name.into(),
                                    address: address.into(),
                                    zone,
                                },
                            )
                        })
                        .collect(),
                    links: links.into_iter().collect(),
                })
            })
            .await
    }
}

/// Why the snapshot could not be rebuilt (the previous one stays).
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("database: {0}")]
    Database(String),
}

/// The process's directory snapshot and how to rebuild it; clones share it.
#[derive(Clone)]
pub struct Directory {
    db: DbPool,
    current: Arc<ArcSwap<DirectorySnapshot>>,
    /// When a read last asked for a rebuild.
    reload_asked: Arc<Mutex<Option<Instant>>>,
}

impl Directory {
    /// An empty snapshot (every read falls back to PostgreSQL until the first rebuild).
    pub fn new(db: DbPool) -> Self {
        Self {
            db,
            current: Arc::new(ArcSwap::from_pointee(DirectorySnapshot::default())),
            reload_asked: Arc::default(),
        }
    }

    /// The doctor in the branch as the current snapshot has them.
    pub fn resolve(&self, specialist_id: i64, branch_id: i64) -> Resolved {
        arc_swap::ArcSwap::load(&self.current).resolve(specialist_id, branch_id)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<DirectorySnapshot> {
        self.current.load_full()
    }

    /// Rebuilds the snapshot from PostgreSQL.
    pub async fn reload(&self) -> Result<(), DirectoryError> {
        let mut conn = self
            .db
            .get()
            .await
            .map_err(|e| DirectoryError::Database(e.to_string()))?;
        let snapshot = DirectorySnapshot::load(&mut conn)
            .await
            .map_err(|e| DirectoryError::Database(e.to_string()))?;
        self.current.store(Arc::new(snapshot));
        Ok(())
    }

    /// [`Directory::reload`], a failure logged (the previous snapshot stays).
    pub async fn reload_logged(&self) {
        if let Err(e) = self.reload().await {
            tracing::warn!(error = %e, "directory snapshot not rebuilt; the previous one stays");
        }
    }

    /// A rebuild in the background, at most once per `RELOAD_ASKED_GAP`: a read found a
    /// doctor or branch the snapshot does not know, perhaps added a moment ago elsewhere.
    pub fn reload_soon(&self) {
        let due = {
            let mut asked = self
                .reload_asked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = asked.is_none_or(|at| at.elapsed() >= RELOAD_ASKED_GAP);
            if due {
                *asked = Some(Instant::now());
            }
            due
        };
        if due {
            let this = self.clone();
            tokio::spawn(async move { this.reload_logged().await });
        }
    }
}
