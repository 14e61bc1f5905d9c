//! `sovamed serve [--bind ADDR] [--demo]`.

use std::net::SocketAddr;

use clap::Args;

use crate::{
    config::Config,
    demo, emulator, server,
    sync::{self, Sources, SyncOptions},
};

#[derive(Args)]
pub struct ServeArgs {
    /// Listen address; overrides BIND_ADDR.
    #[arg(long)]
    pub bind: Option<SocketAddr>,
    /// Seed demo accounts and print their logins (refused when APP_ENV=production).
    #[arg(long)]
    pub demo: bool,
}

pub async fn run(mut config: Config, args: ServeArgs) -> anyhow::Result<()> {
    crate::telemetry::init(config.is_production());
    if args.demo && config.is_production() {
        anyhow::bail!("--demo is refused when APP_ENV=production");
    }
    if let Some(bind) = args.bind {
        config.bind_addr = bind;
    }
    if config.jwt_secret_generated {
        tracing::warn!(
            "JWT_SECRET is not set: generated a random one for this run; API tokens end with the process"
        );
    }
    let running = server::start(config).await?;
    if args.demo {
        let mut conn = running.state.db.get().await?;
        demo::ensure_accounts(&mut conn).await?;
        println!("Demo accounts (password after the slash):");
        for account in &demo::ACCOUNTS {
            println!(
                "  {:<8} {} / {}",
                account.role.as_str(),
                account.email,
                account.password
            );
        }
    }
    println!("sovamed is serving on http://{}", running.addr);
    tracing::info!(addr = %running.addr, "serving");
    server::shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    running.shutdown().await
}
