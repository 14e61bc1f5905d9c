//! Directory sync: fetch each kind from the MIS or the CMS, normalise it, and upsert it in
//! one transaction, so a failing source leaves the previous data intact.
//!
//! Every kind reports how many rows it created, updated, left unchanged and deactivated.
//! A row is written only when its source digest changed, so a second run over unchanged
//! sources writes nothing. What disappears at the source is deactivated, never deleted, and
//! a kind that would deactivate more than `SYNC_MAX_DEACTIVATION_PERCENT` of its active rows
//! is refused unless allowed ([`guard`]).

mod content;
pub mod guard;
mod mis_kinds;
pub mod sanitize;
pub mod scheduler;
mod schedules;
pub mod timezones;
mod upsert;

use std::{fmt, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};

pub use guard::{DeactivationLimit, MassDeactivation};

use crate::{
    config::Config,
    db::models::sync_run::{self, NewSyncRun},
    integrations::{
        bitrix::{Cms, CmsError},
        infoclinica::{Mis, MisError},
    },
};

/// What `sovamed sync` can sync, in the order `all` runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncKind {
    Branches,
    Specialities,
    Specialists,
    Prices,
    Reviews,
    Content,
    /// The coming days of every doctor's grid, into the schedule cache (needs Redis).
    Schedules,
}

impl SyncKind {
    pub const ALL: [SyncKind; 7] = [
        SyncKind::Branches,
        SyncKind::Specialities,
        SyncKind::Specialists,
        SyncKind::Prices,
        SyncKind::Reviews,
        SyncKind::Content,
        SyncKind::Schedules,
    ];

    /// The directory kinds, without the schedule prefetch.
    pub const DIRECTORIES: [SyncKind; 6] = [
        SyncKind::Branches,
        SyncKind::Specialities,
        SyncKind::Specialists,
        SyncKind::Prices,
        SyncKind::Reviews,
        SyncKind::Content,
    ];

    /// The kind named `code` ([`Self::as_str`]), as `sync_runs.kind` stores it.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == code)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SyncKind::Branches => "branches",
            SyncKind::Specialities => "specialities",
            SyncKind::Specialists => "specialists",
            SyncKind::Prices => "prices",
            SyncKind::Reviews => "reviews",
            SyncKind::Content => "content",
            SyncKind::Schedules => "schedules",
        }
    }
}

/// The clients a sync reads from.
#[derive(Clone)]
pub struct Sources {
    pub mis: Arc<dyn Mis>,
    pub cms: Arc<dyn Cms>,
    /// The schedule cache the `schedules` kind fills; without it that kind fails.
    pub schedules: Option<crate::domain::booking::schedule::ScheduleCache>,
    /// Tells the replicas (and this process's snapshot) that directory rows changed; without
    /// it they learn at their next periodic rebuild.
    pub announcer: Option<crate::domain::cluster::Announcer>,
}

impl Sources {
    /// The real clients from `INFOCLINICA_*` and `BITRIX_*`. A source that is not configured
    /// fails only when a kind needs it, naming the missing variable.
    pub fn from_config(config: &Config) -> Self {
        use crate::integrations::unconfigured::Unconfigured;
        use crate::integrations::{
            bitrix::client::BitrixClient, infoclinica::client::InfoclinicaClient,
        };
        let mis: Arc<dyn Mis> = match InfoclinicaClient::from_config(config) {
            Ok(client) => Arc::new(client),
            Err(e) => Arc::new(Unconfigured(e.to_string())),
        };
        let cms: Arc<dyn Cms> = match BitrixClient::from_config(config) {
            Ok(client) => Arc::new(client),
            Err(e) => Arc::new(Unconfigured(e.to_string())),
        };
        Self {
            mis,
            cms,
            schedules: None,
            announcer: None,
        }
    }

    /// With the schedule cache, for the `schedules` kind.
    pub fn with_schedules(
        mut self,
        cache: crate::domain::booking::schedule::ScheduleCache,
    ) -> Self {
        self.schedules = Some(cache);
        self
    }

    /// With the announcer of directory changes, so the replicas rebuild their snapshots.
    pub fn with_announcer(mut self, announcer: crate::domain::cluster::Announcer) -> Self {
        self.announcer = Some(announcer);
        self
    }
}

/// Options of one run.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Ignore the CMS watermarks and fetch everything.
    pub full: bool,
    /// Days the `schedules` kind fetches (`sync schedules --days`, `SCHEDULE_PREFETCH_DAYS`).
    pub schedule_days: u32,
    /// `BRANCH_TIMEZONES`.
    pub branch_timezones: std::collections::BTreeMap<i64, chrono_tz::Tz>,
    /// `SYNC_MAX_DEACTIVATION_PERCENT`, and `sync --allow-mass-deactivation` (never set by
    /// the periodic sync).
    pub deactivation: DeactivationLimit,
}

impl SyncOptions {
    /// From the configuration; mass deactivation is not allowed.
    pub fn from_config(config: &Config, full: bool) -> Self {
        Self {
            full,
            branch_timezones: config.branch_timezones.clone(),
            schedule_days: config.schedule_prefetch_days,
            deactivation: DeactivationLimit {
                max_percent: config.sync_max_deactivation_percent,
                allow_mass: false,
            },
        }
    }

    /// With `--allow-mass-deactivation`: a kind may deactivate more than the limit, and its
    /// report says so.
    pub fn allow_mass_deactivation(mut self, allow: bool) -> Self {
        self.deactivation.allow_mass = allow;
        self
    }
}

/// What one kind's run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deactivated: u64,
}

/// The result of one kind's run.
#[derive(Debug, Clone)]
pub struct SyncReport {
    pub kind: SyncKind,
    pub counts: Counts,
    pub duration: Duration,
    /// Things an operator should know, e.g. CMS doctors that match no MIS doctor.
    pub notes: Vec<String>,
}

impl fmt::Display for SyncReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        write!(
            f,
            "{}: {} new, {} updated, {} unchanged, {} deactivated in {} ms",
            self.kind.as_str(),
            c.created,
            c.updated,
            c.unchanged,
            c.deactivated,
            self.duration.as_millis()
        )
    }
}

/// Why a kind's run failed; the transaction was rolled back.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The kind would deactivate more than the limit ([`guard`]). The text is kept in
    /// `sync_runs.error` and read back by [`MassDeactivation::from_refusal`].
    #[error("{prefix}{0}; {hint}", prefix = guard::REFUSAL_PREFIX, hint = guard::REFUSAL_HINT)]
    Refused(MassDeactivation),
    #[error("MIS: {0}")]
    Mis(#[from] MisError),
    #[error("CMS: {0}")]
    Cms(#[from] CmsError),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database: {0}")]
    Connection(String),
}

impl SyncError {
    /// The mass deactivation a refusal is about.
    pub fn refusal(&self) -> Option<&MassDeactivation> {
        match self {
            SyncError::Refused(mass) => Some(mass),
            _ => None,
        }
    }
}

/// A kind of a multi-kind run failed (what [`scheduler::run_once_locked`] returns as its
/// error, so the periodic sync can tell a refusal from a failure).
#[derive(Debug, thiserror::Error)]
#[error("sync {} failed: {error}", kind.as_str())]
pub struct KindFailed {
    pub kind: SyncKind,
    pub error: SyncError,
}

/// Reports progress (a spinner on a terminal, nothing otherwise).
pub trait Progress: Send + Sync {
    fn message(&self, kind: SyncKind, text: &str);
}

/// Progress that goes nowhere (the scheduler inside `serve`).
pub struct Quiet;

impl Progress for Quiet {
    fn message(&self, _kind: SyncKind, _text: &str) {}
}

/// Runs one kind in one transaction and records the run in `sync_runs`.
pub async fn run_kind(
    conn: &mut AsyncPgConnection,
    sources: &Sources,
    kind: SyncKind,
    options: &SyncOptions,
    progress: &dyn Progress,
) -> Result<SyncReport, SyncError> {
    let started_at = Utc::now();
    let clock = std::time::Instant::now();
    let result = if kind == SyncKind::Schedules {
        // Network-bound and spread over many calls: no transaction; each day stands alone.
        match &sources.schedules {
            Some(cache) => schedules::prefetch(conn, cache, options.schedule_days, progress)
                .await
                .map(|counts| (counts, Vec::new())),
            None => Err(SyncError::Connection(
                "the schedule cache (Redis) is not available".into(),
            )),
        }
    } else {
        conn.transaction(async |conn| {
            let mut notes = Vec::new();
            let mut guard = guard::Guard::new(options.deactivation);
            let counts = match kind {
                SyncKind::Branches => {
                    mis_kinds::sync_branches(conn, &*sources.mis, options, progress, &mut guard)
                        .await?
                }
                SyncKind::Specialities => {
                    mis_kinds::sync_specialities(conn, &*sources.mis, progress, &mut guard).await?
                }
                SyncKind::Specialists => {
                    let mut touched = std::collections::HashSet::new();
                    let mut counts = mis_kinds::sync_specialists(
                        conn,
                        &*sources.mis,
                        progress,
                        &mut notes,
                        &mut touched,
                        &mut guard,
                    )
                    .await?;
                    content::sync_profiles(
                        conn,
                        &*sources.cms,
                        options,
                        progress,
                        &mut notes,
                        &mut counts,
                        &mut touched,
                    )
                    .await?;
                    counts
                }
                SyncKind::Prices => {
                    mis_kinds::sync_prices(conn, &*sources.mis, progress, &mut guard).await?
                }
                SyncKind::Reviews => {
                    content::sync_reviews(
                        conn,
                        &*sources.cms,
                        options,
                        progress,
                        &mut notes,
                        &mut guard,
                    )
                    .await?
                }
                SyncKind::Content => {
                    content::sync_content(conn, &*sources.cms, options, progress, &mut guard)
                        .await?
                }
                SyncKind::Schedules => Counts::default(),
            };
            notes.extend(guard.notes());
            Ok::<_, SyncError>((counts, notes))
        })
        .await
    };
    let duration = clock.elapsed();
    let finished_at = Utc::now();
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!("sync_runs_total", "kind" => kind.as_str(), "outcome" => outcome)
        .increment(1);
    let (counts, notes, error) = match &result {
        Ok((counts, notes)) => (counts.clone(), notes.clone(), None),
        Err(e) => (Counts::default(), Vec::new(), Some(e.to_string())),
    };
    let run = NewSyncRun {
        kind: kind.as_str(),
        started_at,
        finished_at,
        succeeded: error.is_none(),
        created: clamp(counts.created),
        updated: clamp(counts.updated),
        unchanged: clamp(counts.unchanged),
        deactivated: clamp(counts.deactivated),
        error: error.as_deref(),
        notes: &notes.join("\n"),
    };
    if let Err(e) = sync_run::insert(conn, &run).await {
        tracing::error!(error = %e, kind = kind.as_str(), "sync run not recorded");
    }
    let (counts, notes) = result?;
    Ok(SyncReport {
        kind,
        counts,
        duration,
        notes,
    })
}

fn clamp(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The kinds `sovamed sync all` runs, in dependency order.
pub fn expand(kind: Option<SyncKind>) -> Vec<SyncKind> {
    kind.map_or_else(|| SyncKind::ALL.to_vec(), |k| vec![k])
}

/// Runs `kinds` in order, stopping at the first failure. When a directory kind committed a
/// change, the announcer (if any) tells every process, the failure of a later kind
/// notwithstanding.
pub async fn run_kinds(
    conn: &mut AsyncPgConnection,
    sources: &Sources,
    kinds: &[SyncKind],
    options: &SyncOptions,
    progress: &dyn Progress,
    mut on_report: impl FnMut(&SyncReport),
) -> Result<Vec<SyncReport>, (SyncKind, SyncError)> {
    let mut reports = Vec::new();
    let mut failed = None;
    for &kind in kinds {
        match run_kind(conn, sources, kind, options, progress).await {
            Ok(report) => {
                on_report(&report);
                reports.push(report);
            }
            Err(e) => {
                failed = Some((kind, e));
                break;
            }
        }
    }
    let changed = reports.iter().any(|report| {
        let c = &report.counts;
        report.kind != SyncKind::Schedules && c.created + c.updated + c.deactivated > 0
    });
    if changed && let Some(announcer) = &sources.announcer {
        announcer.directory_changed().await;
    }
    match failed {
        Some(failure) => Err(failure),
        None => Ok(reports),
    }
}

/// Parses the watermark overlap: a few seconds before the last watermark, to cover the
/// CMS's one-second resolution and late commits.
pub(crate) fn with_overlap(watermark: DateTime<Utc>) -> DateTime<Utc> {
    watermark - chrono::Duration::seconds(5)
}
