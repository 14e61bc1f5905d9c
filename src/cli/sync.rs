//! `sovamed sync branches|specialities|specialists|prices|reviews|content|schedules|all
//! [--full] [--days N] [--allow-mass-deactivation]`.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use indicatif::{ProgressBar, ProgressStyle};

use crate::{
    config::Config,
    sync::{self, Progress, Quiet, Sources, SyncKind, SyncOptions},
};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SyncWhat {
    Branches,
    Specialities,
    Specialists,
    Prices,
    Reviews,
    Content,
    Schedules,
    All,
}

#[derive(Args)]
pub struct SyncArgs {
    /// What to sync; `all` runs every kind in dependency order.
    #[arg(value_enum)]
    pub what: SyncWhat,
    /// Ignore the CMS watermarks and fetch everything.
    #[arg(long)]
    pub full: bool,
    /// Days of schedules to fetch ahead (default `SCHEDULE_PREFETCH_DAYS`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=60))]
    pub days: Option<u32>,
    /// Deactivate what the source no longer lists even when that is more than
    /// SYNC_MAX_DEACTIVATION_PERCENT of a kind's active rows (refused otherwise).
    #[arg(long)]
    pub allow_mass_deactivation: bool,
}

impl SyncWhat {
    fn kind(self) -> Option<SyncKind> {
        match self {
            SyncWhat::Branches => Some(SyncKind::Branches),
            SyncWhat::Specialities => Some(SyncKind::Specialities),
            SyncWhat::Specialists => Some(SyncKind::Specialists),
            SyncWhat::Prices => Some(SyncKind::Prices),
            SyncWhat::Reviews => Some(SyncKind::Reviews),
            SyncWhat::Content => Some(SyncKind::Content),
            SyncWhat::Schedules => Some(SyncKind::Schedules),
            SyncWhat::All => None,
        }
    }
}

/// A spinner on a terminal.
struct Spinner(ProgressBar);

impl Progress for Spinner {
    fn message(&self, kind: SyncKind, text: &str) {
        self.0.set_message(format!("{}: {text}", kind.as_str()));
    }
}

pub async fn run(config: Config, args: SyncArgs) -> anyhow::Result<()> {
    crate::telemetry::init(config.is_production());
    crate::server::prepare_database(&config).await?;
    let redis = crate::redis::Redis::connect(&config.redis_url, &config.redis_prefix)?;
    let pool = crate::db::build_pool(&config.database_url, 4)?;
    let (mis_booking, _) = crate::integrations::booking_clients(&config);
    let cache = crate::domain::booking::schedule::ScheduleCache::new(
        redis.clone(),
        pool,
        mis_booking,
        config.schedule_cache_ttl,
    );
    // The serving replicas hear that the directory changed and rebuild their snapshots.
    let sources = Sources::from_config(&config)
        .with_schedules(cache)
        .with_announcer(crate::domain::cluster::Announcer::new(redis));
    let mut options = SyncOptions::from_config(&config, args.full)
        .allow_mass_deactivation(args.allow_mass_deactivation);
    if let Some(days) = args.days {
        options.schedule_days = days;
    }
    let mut conn = AsyncPgConnection::establish(&config.database_url).await?;
    let kinds = sync::expand(args.what.kind());

    let spinner = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Spinner(bar)
    });
    let progress: &dyn Progress = match &spinner {
        Some(spinner) => spinner,
        None => &Quiet,
    };
    let result = sync::run_kinds(&mut conn, &sources, &kinds, &options, progress, |report| {
        let line = report.to_string();
        match &spinner {
            Some(Spinner(bar)) => bar.println(&line),
            None => println!("{line}"),
        }
        for note in &report.notes {
            println!("  note: {note}");
        }
    })
    .await;
    if let Some(Spinner(bar)) = &spinner {
        bar.finish_and_clear();
    }
    match result {
        Ok(_) => Ok(()),
        Err((kind, e)) => {
            // The refused kind's line of the summary; the one-line error follows on stderr.
            if e.refusal().is_some() {
                println!("{}: {e}", kind.as_str());
            }
            anyhow::bail!("sync {} failed, previous data kept: {e}", kind.as_str())
        }
    }
}
