//! `sovamed serve [--bind ADDR] [--demo]`.

use std::net::SocketAddr;

use clap::Args;

use crate::{
    config::Config,
    demo,
    domain::cluster::Announcer,
    emulator, server,
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
    // Demo mode: the MIS and CMS emulators run in-process and the clients point at them.
    let _emulators = if args.demo {
        let emulators = emulator::spawn(emulator::EmulatorConfig {
            seed: 42,
            scale: 1,
            mis_bind: "127.0.0.1:0".parse()?,
            cms_bind: "127.0.0.1:0".parse()?,
            sms_bind: Some("127.0.0.1:0".parse()?),
            cms_token: "demo-cms-token".into(),
        })
        .await?;
        config.infoclinica_url = Some(emulators.mis_url.clone());
        config.bitrix_url = Some(emulators.cms_url.clone());
        if let Some(sms_url) = &emulators.sms_url {
            config.sms_provider = crate::config::SmsProvider::SmsRu;
            config.smsru_url = sms_url.clone();
            config.smsru_api_id = Some(emulators.sms_api_id.clone());
        }
        config.bitrix_token = Some(emulators.cms_token.clone());
        println!(
            "Demo MIS emulator: {}  CMS emulator: {}",
            emulators.mis_url, emulators.cms_url
        );
        if let Some(sms_url) = &emulators.sms_url {
            // Nothing reaches a phone in the demo: the codes are read here.
            println!("Demo SMS (codes and messages as sent): {sms_url}/_emulator/messages");
        }
        Some(emulators)
    } else {
        None
    };
    let sources = Sources::from_config(&config);
    let options = SyncOptions::from_config(&config, false);
    let running = server::start(config).await?;
    let config = &running.state.config;
    let sources = sources
        .with_schedules(running.state.booking.schedule.clone())
        .with_announcer(
            Announcer::new(running.state.redis.clone())
                .with_directory(running.state.booking.directory.clone()),
        );
    if args.demo {
        let mut conn = running.state.db.get().await?;
        demo::ensure_accounts(&mut conn).await?;
        demo::forget_mis_cards(&mut conn).await?;
        drop(conn);
        match sync::scheduler::run_once_locked(&config.database_url, &sources, &options).await {
            Ok(Some(reports)) => {
                for report in reports {
                    println!("sync {report}");
                }
            }
            Ok(None) => println!("sync: another instance is syncing"),
            Err(e) => println!("sync failed: {e}"),
        }
        println!("Demo accounts (password after the slash):");
        for account in &demo::ACCOUNTS {
            println!(
                "  {:<8} {} / {}",
                account.role.as_str(),
                account.email,
                account.password
            );
        }
        if !config.mfa_required_roles.is_empty() {
            let roles: Vec<&str> = config
                .mfa_required_roles
                .iter()
                .map(|role| role.as_str())
                .collect();
            println!(
                "  {} sign in with a second factor: at the first login the site shows a QR code \
                 for an authenticator app (MFA_REQUIRED_ROLES= turns it off)",
                roles.join(", ")
            );
        }
    }
    let sources_configured = config.infoclinica_url.is_some() || config.bitrix_url.is_some();
    match config.sync_interval {
        Some(interval) if sources_configured => {
            sync::scheduler::spawn(
                config.database_url.clone(),
                sources,
                options,
                interval,
                !args.demo,
            );
            tracing::info!(
                minutes = interval.as_secs() / 60,
                "periodic directory sync on"
            );
        }
        Some(_) => {
            tracing::warn!("periodic sync off: neither INFOCLINICA_URL nor BITRIX_URL is set")
        }
        None => tracing::info!("periodic sync off (SYNC_INTERVAL_MINUTES=0)"),
    }
    println!("sovamed is serving on http://{}", running.addr);
    tracing::info!(addr = %running.addr, "serving");
    server::shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    running.shutdown().await
}
