//! `fluxctl sync …`: run, watch, inspect and cancel syncs. `run --wait` and `watch` exit with
//! the job's outcome (see [`crate::client::ClientError::exit_code`]).

use std::io::IsTerminal;
use std::time::Instant;

use clap::Subcommand;
use fluxcascade::pb::{self, sync_service_client::SyncServiceClient};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_stream::StreamExt;

use crate::client::{AuthChannel, ClientError, Target};
use crate::output::{self, Format};
use crate::pages::{self, PageArgs};
use crate::views;

#[derive(Subcommand)]
pub enum SyncCommand {
    /// Start a sync of a mapping (joins the one already running).
    Run {
        mapping_id: String,
        /// Ignore the incremental cursor and read every record again.
        #[arg(long)]
        full: bool,
        /// Wait for the sync to finish, showing progress; exit with its outcome.
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
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a sync.
    Get { job_id: String },
    /// Follow a running sync with a progress bar until it ends; exit with its outcome.
    Watch { job_id: String },
    /// Cancel a queued or running sync (it shows `cancelling` until it stops).
    Cancel { job_id: String },
    /// Records a sync skipped, failed or wrote with warnings, with why and how severe.
    Errors {
        job_id: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Records both sides changed since the previous sync: each field's two values, the
    /// conflict policy and which side won.
    Conflicts {
        job_id: String,
        #[command(flatten)]
        page: PageArgs,
    },
}

const COLUMNS: &[&str] = &[
    "id",
    "mappingId",
    "status",
    "trigger",
    "stats.fetched",
    "stats.created",
    "stats.updated",
    "stats.failed",
    "createdAt",
];

fn phase_text(job: &pb::SyncJob) -> &'static str {
    match pb::SyncPhase::try_from(job.phase).unwrap_or(pb::SyncPhase::Unspecified) {
        pb::SyncPhase::Queued => "queued",
        pb::SyncPhase::Matching => "matching",
        pb::SyncPhase::Retrying => "retrying",
        pb::SyncPhase::Syncing | pb::SyncPhase::Unspecified => "syncing",
    }
}

/// The progress bar of a terminal: phase, position, rate, ETA, counts.
struct Progress {
    bar: ProgressBar,
}

impl Progress {
    fn new() -> Progress {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:9} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Progress { bar }
    }

    fn show(&self, job: &pb::SyncJob) {
        let stats = job.stats.unwrap_or_default();
        let status = views::sync_status(job.status);
        let counts = format!(
            "created {} · updated {} · unchanged {} · failed {}",
            stats.created, stats.updated, stats.unchanged, stats.failed
        );
        self.bar.set_prefix(if status == "cancelling" {
            "cancelling"
        } else {
            phase_text(job)
        });
        let total = job.total_estimate.max(stats.fetched);
        if total > 0 && phase_text(job) == "syncing" {
            self.bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {prefix:9} [{bar:24}] {human_pos}/{human_len} · {per_sec} · eta {eta} · {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            self.bar.set_length(total);
            self.bar.set_position(stats.fetched);
            self.bar.set_message(counts);
        } else if phase_text(job) == "matching" {
            self.bar
                .set_message("reading the target's records to match them, not duplicate them");
        } else {
            self.bar.set_message(counts);
        }
    }
}

/// Follows `job_id` until it finishes; draws progress on a terminal. Ctrl-C detaches (the job
/// goes on) with a message.
async fn follow(
    client: &mut SyncServiceClient<AuthChannel>,
    job_id: &str,
    format: Format,
) -> Result<pb::SyncJob, ClientError> {
    let mut stream = client
        .watch_sync(pb::WatchSyncRequest { id: job_id.to_owned() })
        .await?
        .into_inner();
    let progress = (format == Format::Table && std::io::stderr().is_terminal()).then(Progress::new);
    let mut last = None;
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            _ = tokio::signal::ctrl_c() => {
                if let Some(progress) = &progress {
                    progress.bar.finish_and_clear();
                }
                return Err(ClientError::Detached(job_id.to_owned()));
            }
        };
        let Some(job) = next else { break };
        let job = job?;
        if let Some(progress) = &progress {
            progress.show(&job);
        }
        last = Some(job);
    }
    if let Some(progress) = progress {
        progress.bar.finish_and_clear();
    }
    last.ok_or_else(|| ClientError::Usage("the watch ended without news of the job".into()))
}

/// Prints a finished job (a one-line summary on a terminal table) and turns its outcome into
/// the exit status.
fn finish(format: Format, job: &pb::SyncJob, took: Option<std::time::Duration>) -> Result<(), ClientError> {
    let status = views::sync_status(job.status);
    match format {
        Format::Json => output::print(format, &views::sync_job(job), &[]),
        Format::Table => {
            let stats = job.stats.unwrap_or_default();
            let took = took
                .map(|t| format!(" in {:.1} s", t.as_secs_f64()))
                .unwrap_or_default();
            println!(
                "sync {} {status}{took}: fetched {}, created {}, updated {}, unchanged {}, skipped {}, failed {}{}{}",
                job.id,
                stats.fetched,
                stats.created,
                stats.updated,
                stats.unchanged,
                stats.skipped,
                stats.failed,
                extra_counts(&stats),
                if job.error.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", job.error)
                },
            );
        }
    }
    match status.as_str() {
        "completed" => Ok(()),
        _ => Err(ClientError::JobEnded {
            job_id: job.id.clone(),
            status,
        }),
    }
}

/// The counts a summary names only when they happened.
fn extra_counts(stats: &pb::SyncStats) -> String {
    [
        ("warnings", stats.warnings),
        ("conflicts", stats.conflicts),
        ("filtered out", stats.filtered),
    ]
    .iter()
    .filter(|(_, count)| *count > 0)
    .map(|(name, count)| format!(", {name} {count}"))
    .collect()
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
            let started = Instant::now();
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
            if wait {
                let job = follow(&mut client, &job.id, format).await?;
                return finish(format, &job, Some(started.elapsed()));
            }
            output::print(format, &views::sync_job(&job), &[]);
        }
        SyncCommand::List { mapping, page } => {
            let mapping_id = mapping.unwrap_or_default();
            let jobs = pages::collect(page, |page_token, page_size| {
                let mut client = client.clone();
                let request = pb::ListSyncsRequest {
                    mapping_id: mapping_id.clone(),
                    page_size,
                    page_token,
                };
                async move {
                    let page = client.list_syncs(request).await?.into_inner();
                    Ok((page.jobs, page.next_page_token))
                }
            })
            .await?;
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
            return finish(format, &job, None);
        }
        SyncCommand::Cancel { job_id } => {
            let job = client
                .cancel_sync(pb::CancelSyncRequest { id: job_id })
                .await?
                .into_inner();
            output::print(format, &views::sync_job(&job), &[]);
        }
        SyncCommand::Errors { job_id, page } => {
            let records = pages::collect(page, |page_token, page_size| {
                let mut client = client.clone();
                let request = pb::ListSyncErrorsRequest {
                    job_id: job_id.clone(),
                    page_size,
                    page_token,
                };
                async move {
                    let page = client.list_sync_errors(request).await?.into_inner();
                    Ok((page.records, page.next_page_token))
                }
            })
            .await?;
            let rows: Vec<serde_json::Value> = records
                .iter()
                .map(|r| {
                    let state = pb::RecordState::try_from(r.state).unwrap_or(pb::RecordState::Unspecified);
                    let severity = match state {
                        pb::RecordState::Failed => "error",
                        pb::RecordState::Warning => "warning",
                        _ => "info",
                    };
                    serde_json::json!({
                        "recordId": r.source_id,
                        "linkedId": (!r.target_id.is_empty()).then_some(&r.target_id),
                        "severity": severity,
                        "state": state.as_str_name().trim_start_matches("RECORD_STATE_").to_lowercase(),
                        "message": r.message,
                    })
                })
                .collect();
            output::print(
                format,
                &serde_json::Value::Array(rows),
                &["recordId", "severity", "state", "message"],
            );
        }
        SyncCommand::Conflicts { job_id, page } => {
            let conflicts = pages::collect(page, |page_token, page_size| {
                let mut client = client.clone();
                let request = pb::ListSyncConflictsRequest {
                    job_id: job_id.clone(),
                    page_size,
                    page_token,
                };
                async move {
                    let page = client.list_sync_conflicts(request).await?.into_inner();
                    Ok((page.conflicts, page.next_page_token))
                }
            })
            .await?;
            output::print(
                format,
                &views::conflict_rows(&conflicts),
                &[
                    "sourceId",
                    "targetId",
                    "field",
                    "sourceValue",
                    "targetValue",
                    "policy",
                    "winner",
                ],
            );
        }
    }
    Ok(())
}
