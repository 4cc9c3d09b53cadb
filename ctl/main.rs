//! `fluxctl`: the command-line client of fluxd's gRPC API.

mod client;
mod commands;
mod output;
mod pages;
mod times;
mod views;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::output::Format;

/// Command-line client for the FluxCascade daemon.
#[derive(Parser)]
#[command(
    name = "fluxctl",
    version,
    about,
    after_help = "Exit status: 0 done; 1 error; 2 usage error; `sync run --wait` and `sync watch`: 3 the sync ended partial, 4 failed, 5 cancelled, 130 interrupted (the sync goes on)."
)]
struct Cli {
    /// gRPC address of fluxd, e.g. http://127.0.0.1:50051 or https://fluxd.example.com:50051 [default: from <data-dir>/endpoints.json]
    #[arg(long, env = "FLUXCTL_ADDR", global = true)]
    addr: Option<String>,
    /// API token [default: <data-dir>/admin.token]
    #[arg(long, env = "FLUXCTL_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// CA certificate (PEM) that fluxd's TLS certificate chains to [default: the public web roots]
    #[arg(long, env = "FLUXCTL_CA_CERT", global = true)]
    ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for fluxd's mutual TLS ([grpc] client_ca_file)
    #[arg(long, env = "FLUXCTL_CLIENT_CERT", global = true, requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// Key (PEM) of --client-cert
    #[arg(long, env = "FLUXCTL_CLIENT_KEY", global = true, requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// fluxd's data dir, to find endpoints.json and admin.token.
    #[arg(long, env = "FLUXD_DATA_DIR", global = true, default_value = "./fluxd-data")]
    data_dir: PathBuf,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, global = true, default_value = "table")]
    output: Format,
    #[command(subcommand)]
    command: commands::Command,
}

/// Writes man pages of fluxctl and each of its commands into `dir`; returns how many.
fn write_man_pages(dir: &std::path::Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(Cli::command(), dir)?;
    Ok(std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("fluxctl"))
        .count())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        commands::Command::Completion { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "fluxctl", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        commands::Command::Man { out_dir } => {
            return match write_man_pages(out_dir) {
                Ok(written) => {
                    eprintln!("wrote {written} man pages to {}", out_dir.display());
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("error: {}: {error}", out_dir.display());
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    let target = client::Target {
        addr: cli.addr,
        token: cli.token,
        data_dir: cli.data_dir,
        tls: client::TlsFiles {
            ca_cert: cli.ca_cert,
            client_cert: cli.client_cert,
            client_key: cli.client_key,
        },
    };
    match commands::run(cli.command, &target, cli.output).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
