//! `sovamed retention run`: one run of the daily retention job now, under the same advisory
//! lock as the job inside `serve` (so the two never overlap): accounts past the grace of
//! their deletion request are anonymised, rows past their period are removed or blanked, and
//! the counts are printed. For cron, for a replica set that does not run `serve` daily, and
//! to see what the job does.

use clap::Subcommand;

use crate::{config::Config, db, domain::retention};

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Run the retention job once now and print what it removed or erased.
    Run,
}

pub async fn run(config: Config, command: RetentionCommand) -> anyhow::Result<()> {
    match command {
        RetentionCommand::Run => print!("{}", run_once(config).await?),
    }
    Ok(())
}

/// Runs the job once; what it has to say, one line per kind.
pub async fn run_once(config: Config) -> anyhow::Result<String> {
    crate::server::prepare_database(&config).await?;
    // One connection holds the advisory lock for the run, the other does the work.
    let pool = db::build_pool(&config.database_url, 2)?;
    let policy = config.retention_policy();
    match retention::run_once_locked(&pool, &policy, config.clock.now()).await? {
        Some(report) => Ok(format!("{report}\n")),
        None => anyhow::bail!("another process is running the retention job now; nothing done"),
    }
}
