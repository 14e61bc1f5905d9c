//! The command line: one binary, one subcommand per job.

pub mod emulate;
pub mod migrate;
pub mod reconcile;
pub mod retention;
pub mod serve;
pub mod sms;
pub mod sync;
pub mod user;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sovamed",
    version,
    about = "Clinic network server: patient cabinet, staff desk, JSON API"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run migrations, then serve HTTP until SIGTERM or Ctrl-C.
    Serve(serve::ServeArgs),
    /// Apply pending migrations and exit.
    Migrate,
    /// Print the OpenAPI 3.1 document of the JSON API.
    Openapi,
    /// Sync directories from the MIS and the CMS.
    Sync(sync::SyncArgs),
    /// Manage accounts.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Run the MIS, CMS and SMS emulators until SIGTERM or Ctrl-C.
    Emulate(emulate::EmulateArgs),
    /// Compare the coming days' records with the MIS and make them agree.
    Reconcile(reconcile::ReconcileArgs),
    /// Settle SMS held because their send went unanswered.
    #[command(subcommand)]
    Sms(sms::SmsCommand),
    /// Anonymise accounts past their deletion grace and remove rows past their retention.
    #[command(subcommand)]
    Retention(retention::RetentionCommand),
}

/// Runs the command; on failure prints one line naming the reason and exits non-zero.
pub fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let config = crate::config::Config::from_env()?;
        match cli.command {
            Command::Serve(args) => serve::run(config, args).await,
            Command::Migrate => migrate::run(config).await,
            Command::User(command) => user::run(config, command).await,
            Command::Sync(args) => sync::run(config, args).await,
            Command::Openapi => {
                println!("{}", crate::router::openapi_document().to_pretty_json()?);
                Ok(())
            }
            Command::Emulate(args) => emulate::run(args).await,
            Command::Sms(command) => sms::run(config, command).await,
            Command::Reconcile(args) => reconcile::run(config, args).await,
            Command::Retention(command) => retention::run(config, command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
        .replace('\n', " ")
}
