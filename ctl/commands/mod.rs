//! fluxctl's resources and verbs.

mod audit;
mod cluster;
mod connection;
mod events;
mod mapping;
mod org;
mod status;
mod sync;
mod webhook;

use clap::Subcommand;

use crate::client::{ClientError, Target};
use crate::output::Format;

#[derive(Subcommand)]
pub enum Command {
    /// Version, uptime, counts of stored entities and live actors.
    Status,
    /// The daemon's version.
    Version,
    /// Connections to provider accounts.
    #[command(subcommand)]
    Connection(connection::ConnectionCommand),
    /// Mappings: how records flow between two connections.
    #[command(subcommand)]
    Mapping(mapping::MappingCommand),
    /// Syncs: runs of a mapping.
    #[command(subcommand)]
    Sync(sync::SyncCommand),
    /// Organizations, members, invitations, API tokens and usage.
    #[command(subcommand)]
    Org(org::OrgCommand),
    /// The audit log: every change made in the organization, newest first.
    Audit(audit::AuditArgs),
    /// Outbound webhook endpoints and their deliveries.
    #[command(subcommand)]
    Webhook(webhook::WebhookCommand),
    /// The event log: every event recorded, as webhook endpoints receive them.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// The fluxd nodes sharing one PostgreSQL store (cluster mode).
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Print a shell completion script, e.g. `fluxctl completion bash > /etc/bash_completion.d/fluxctl`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages (fluxctl.1 and one per command) into a directory.
    Man {
        /// Where to write them.
        #[arg(long, default_value = ".")]
        out_dir: std::path::PathBuf,
    },
}

/// Runs one command against `target`.
pub async fn run(command: Command, target: &Target, format: Format) -> Result<(), ClientError> {
    match command {
        Command::Status => status::status(target, format).await,
        Command::Version => status::version(target, format).await,
        Command::Connection(command) => connection::run(command, target, format).await,
        Command::Mapping(command) => mapping::run(command, target, format).await,
        Command::Sync(command) => sync::run(command, target, format).await,
        Command::Org(command) => org::run(command, target, format).await,
        Command::Audit(args) => audit::run(args, target, format).await,
        Command::Webhook(command) => webhook::run(command, target, format).await,
        Command::Events(command) => events::run(command, target, format).await,
        Command::Cluster(command) => cluster::run(command, target, format).await,
        Command::Completion { .. } | Command::Man { .. } => {
            unreachable!("handled before connecting, in main")
        }
    }
}
