//! `sovamed reconcile [--days N] [--dry-run]`: compares the booked records of the coming days
//! with the MIS and makes them agree with it (cancelled or moved at the clinic, with the
//! patient's SMS queued for the server's outbox), printing what differed. A backstop for
//! changes the change feed missed.

use clap::Args;

use crate::{app::App, config::Config};

#[derive(Args)]
pub struct ReconcileArgs {
    /// How many days ahead to compare.
    #[arg(long, default_value_t = 14)]
    pub days: u32,
    /// Report the differences without changing anything.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(config: Config, args: ReconcileArgs) -> anyhow::Result<()> {
    crate::server::prepare_database(&config).await?;
    let app = App::new(config).await?;
    let found = app
        .booking
        .compare_with_mis(args.days, !args.dry_run)
        .await
        .map_err(|e| anyhow::anyhow!("reconcile failed, nothing further changed: {e}"))?;
    let verb = if args.dry_run { "would be" } else { "were" };
    println!(
        "{} booked records in the next {} days: {} agree with the MIS; {} {verb} cancelled and {} {verb} moved to match it; {} skipped (a change under way or written meanwhile, or the MIS did not answer)",
        found.checked, args.days, found.agree, found.cancelled, found.moved, found.skipped
    );
    Ok(())
}
