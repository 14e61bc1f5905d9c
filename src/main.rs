//! The `sovamed` binary: parse the command line and dispatch to a subcommand.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = sovamed::cli::Cli::parse();
    sovamed::cli::run(cli)
}
