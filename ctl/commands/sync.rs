//! `fluxctl sync …`: run, watch, inspect and cancel syncs.

use std::io::IsTerminal;

use clap::Subcommand;
use fluxcascade::pb::{self, sync_service_client::SyncServiceClient};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_stream::StreamExt;

use crate::client::{AuthChannel, ClientError, Target};
use crate::output::{self, Format};
use crate::views;

#[derive(Subcommand)]
pub enum SyncCommand {
    /// Start a sync of a mapping (joins the one already running).
    Run {
        mapping_id: String,
        /// Ignore the incremental cursor and read every record again.
        #[arg(long)]
        full: bool,
        /// Wait for the sync to finish, showing progress.
        #[arg(long)]
        wait: bool,
        /// Confirm a first sync that would create many records.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// List syncs, newest first.
    List {
        #[arg(long)]
        mapping: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show a sync.
    Get { job_id: String },
    /// Follow a running sync with a progress bar until it ends.
    Watch { job_id: String },
    /// Cancel a queued or running sync.
    Cancel { job_id: String },
    /// Records a sync skipped or failed, with why.
    Errors { job_id: String },
}

const COLUMNS: &[&str] = &[
    "id",
    "mapping_id",
    "status",
    "trigger",
    "stats.fetched",
    "stats.created",
    "stats.updated",
    "stats.failed",
    "created_at",
];

/// Follows `job_id` until it finishes; draws a progress bar on a terminal.
async fn follow(
    client: &mut SyncServiceClient<AuthChannel>,
    job_id: &str,
    format: Format,
) -> Result<pb::SyncJob, ClientError> {
    let mut stream = client
        .watch_sync(pb::WatchSyncRequest { id: job_id.to_owned() })
        .await?
        .into_inner();
    let bar = (format == Format::Table && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{bar:40}] {pos}/{len} records  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar
    });
    let mut last = None;
    while let Some(job) = stream.next().await {
        let job = job?;
        if let Some(bar) = &bar {
            let stats = job.stats.unwrap_or_default();
            bar.set_length(job.total_estimate.max(stats.fetched));
            bar.set_position(stats.fetched);
            bar.set_message(format!(
                "created {} updated {} unchanged {} failed {}",
                stats.created, stats.updated, stats.unchanged, stats.failed
            ));
        }
        last = Some(job);
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    last.ok_or_else(|| ClientError::Usage("the watch ended without news of the job".into()))
}

fn ask(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && matches!(answer.trim(), "y" | "Y" | "yes")
}

pub async fn run(command: SyncCommand, target: &Target, format: Format) -> Result<(), ClientError> {
    let mut client = SyncServiceClient::new(target.connect().await?);
    match command {
        SyncCommand::Run {
            mapping_id,
            full,
            wait,
            yes,
        } => {
            let request = pb::RunSyncRequest {
                mapping_id: mapping_id.clone(),
                full,
                confirm: yes,
            };
            let job = match client.run_sync(request.clone()).await {
                Ok(job) => job.into_inner(),
                Err(status)
                    if status.code() == tonic::Code::FailedPrecondition && status.message().contains("--yes") =>
                {
                    if !ask(&format!("{}. Go ahead?", status.message())) {
                        return Err(ClientError::Rpc(status));
                    }
                    client
                        .run_sync(pb::RunSyncRequest {
                            confirm: true,
                            ..request
                        })
                        .await?
                        .into_inner()
                }
                Err(status) => return Err(status.into()),
            };
            let job = if wait {
                follow(&mut client, &job.id, format).await?
            } else {
                job
            };
            output::print(format, &views::sync_job(&job), &[]);
        }
        SyncCommand::List { mapping, limit } => {
            let jobs = client
                .list_syncs(pb::ListSyncsRequest {
                    mapping_id: mapping.unwrap_or_default(),
                    limit,
                })
                .await?
                .into_inner()
                .jobs;
            output::print(
                format,
                &serde_json::Value::Array(jobs.iter().map(views::sync_job).collect()),
                COLUMNS,
            );
        }
        SyncCommand::Get { job_id } => {
            let job = client.get_sync(pb::GetSyncRequest { id: job_id }).await?.into_inner();
            output::print(format, &views::sync_job(&job), &[]);
        }
        SyncCommand::Watch { job_id } => {
            let job = follow(&mut client, &job_id, format).await?;
            output::print(format, &views::sync_job(&job), &[]);
        }
        SyncCommand::Cancel { job_id } => {
            let job = client
                .cancel_sync(pb::CancelSyncRequest { id: job_id })
                .await?
                .into_inner();
            output::print(format, &views::sync_job(&job), &[]);
        }
        SyncCommand::Errors { job_id } => {
            let records = client
                .list_sync_errors(pb::ListSyncErrorsRequest { job_id })
                .await?
                .into_inner()
                .records;
            let rows: Vec<serde_json::Value> = records
                .iter()
                .map(|r| {
                    let state = pb::RecordState::try_from(r.state).unwrap_or(pb::RecordState::Unspecified);
                    serde_json::json!({
                        "record_id": r.source_id,
                        "linked_id": (!r.target_id.is_empty()).then_some(&r.target_id),
                        "state": state.as_str_name().trim_start_matches("RECORD_STATE_").to_lowercase(),
                        "message": r.message,
                    })
                })
                .collect();
            output::print(
                format,
                &serde_json::Value::Array(rows),
                &["record_id", "state", "message"],
            );
        }
    }
    Ok(())
}
