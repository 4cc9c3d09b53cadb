//! `fluxctl`: the command-line client of fluxd's gRPC API.

mod client;
mod commands;
mod output;
mod views;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::output::Format;

/// Command-line client for the FluxCascade daemon.
#[derive(Parser)]
#[command(name = "fluxctl", version, about)]
struct Cli {
    /// gRPC address of fluxd, e.g. http://127.0.0.1:50051 [default: from <data-dir>/endpoints.json]
    #[arg(long, env = "FLUXCTL_ADDR", global = true)]
    addr: Option<String>,
    /// API token [default: <data-dir>/admin.token]
    #[arg(long, env = "FLUXCTL_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// fluxd's data dir, to find endpoints.json and admin.token.
    #[arg(long, env = "FLUXD_DATA_DIR", global = true, default_value = "./fluxd-data")]
    data_dir: PathBuf,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, global = true, default_value = "table")]
    output: Format,
    #[command(subcommand)]
    command: commands::Command,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let target = client::Target {
        addr: cli.addr,
        token: cli.token,
        data_dir: cli.data_dir,
    };
    match commands::run(cli.command, &target, cli.output).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
