//! The `sovamed` binary: parse the command line and dispatch to a subcommand.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = sovamed::cli::Cli::parse();
    sovamed::cli::run(cli)
}
