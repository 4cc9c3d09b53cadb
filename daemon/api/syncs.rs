//! `SyncService`: run, inspect, watch and cancel syncs.

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::Context;
use crate::auth::{Action, Caller};
use crate::mappings::service::mapping_in_org;
use crate::pb::{self, sync_service_server::SyncService};
use crate::store::{OUTCOMES, Reader};
use crate::syncs::records::{OutcomeRecord, Trigger};
use crate::syncs::runner::{SyncError, job_in_org, recent_jobs};
use crate::syncs::{SyncJobRecord, SyncStatus};

/// Jobs listed when no limit is given, and the most that may be asked for.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;

pub struct SyncApi {
    context: Arc<Context>,
}

impl SyncApi {
    pub fn new(context: Arc<Context>) -> Self {
        SyncApi { context }
    }
}

impl From<SyncError> for Status {
    fn from(error: SyncError) -> Status {
        let message = error.to_string();
        match error {
            SyncError::Mapping(error) => error.into(),
            SyncError::JobNotFound(_) => Status::not_found(message),
            SyncError::NeedsConfirmation { .. } => Status::failed_precondition(message),
            SyncError::Planning(_) | SyncError::ShuttingDown => Status::unavailable(message),
            SyncError::Store(error) => error.into(),
        }
    }
}

fn status_to_pb(status: SyncStatus) -> pb::SyncStatus {
    match status {
        SyncStatus::Pending => pb::SyncStatus::Pending,
        SyncStatus::Running => pb::SyncStatus::Running,
        SyncStatus::Completed => pb::SyncStatus::Completed,
        SyncStatus::Partial => pb::SyncStatus::Partial,
        SyncStatus::Failed => pb::SyncStatus::Failed,
        SyncStatus::Cancelled => pb::SyncStatus::Cancelled,
    }
}

/// A job as a message.
pub fn job_to_pb(job: &SyncJobRecord) -> pb::SyncJob {
    pb::SyncJob {
        id: job.id.clone(),
        mapping_id: job.mapping_id.clone(),
        status: status_to_pb(job.status).into(),
        stats: Some(pb::SyncStats {
            fetched: job.stats.fetched,
            created: job.stats.created,
            updated: job.stats.updated,
            failed: job.stats.failed,
            skipped: job.stats.skipped,
            unchanged: job.stats.unchanged,
        }),
        created_at: job.created_at.clone(),
        started_at: job.started_at.clone().unwrap_or_default(),
        finished_at: job.finished_at.clone().unwrap_or_default(),
        error: job.error.clone().unwrap_or_default(),
        full: job.full,
        total_estimate: job.total_estimate.unwrap_or_default(),
        trigger: match job.trigger {
            Trigger::Manual => pb::SyncTrigger::Manual,
            Trigger::Schedule => pb::SyncTrigger::Schedule,
            Trigger::Webhook => pb::SyncTrigger::Webhook,
        }
        .into(),
    }
}

type JobStream = Pin<Box<dyn Stream<Item = Result<pb::SyncJob, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl SyncService for SyncApi {
    type WatchSyncStream = JobStream;

    async fn run_sync(&self, request: Request<pb::RunSyncRequest>) -> Result<Response<pb::SyncJob>, Status> {
        let caller = Caller::of(&request)?.clone();
        caller.require(Action::Operate)?;
        let body = request.into_inner();
        let job = self
            .context
            .syncs
            .start(
                &caller.org_id,
                &body.mapping_id,
                body.full,
                body.confirm,
                Trigger::Manual,
            )
            .await?;
        Ok(Response::new(job_to_pb(&job)))
    }

    async fn get_sync(&self, request: Request<pb::GetSyncRequest>) -> Result<Response<pb::SyncJob>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::Read)?;
        let job = self
            .context
            .store
            .read(|rx| job_in_org(rx, &caller.org_id, &request.get_ref().id))?;
        Ok(Response::new(job_to_pb(&job)))
    }

    async fn list_syncs(
        &self,
        request: Request<pb::ListSyncsRequest>,
    ) -> Result<Response<pb::ListSyncsResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::Read)?;
        let body = request.get_ref();
        let limit = match body.limit as usize {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        let (org_id, mapping_id) = (caller.org_id.clone(), body.mapping_id.clone());
        let mut jobs = self
            .context
            .store
            .scan(move |rx| {
                if mapping_id.is_empty() {
                    Ok::<_, Status>(
                        rx.list::<SyncJobRecord>()?
                            .into_iter()
                            .filter(|j| j.org_id == org_id)
                            .collect::<Vec<_>>(),
                    )
                } else {
                    mapping_in_org(rx, &org_id, &mapping_id)?;
                    Ok(recent_jobs(rx, &mapping_id, limit)?)
                }
            })
            .await?;
        jobs.sort_by(|a, b| b.id.cmp(&a.id));
        jobs.truncate(limit);
        Ok(Response::new(pb::ListSyncsResponse {
            jobs: jobs.iter().map(job_to_pb).collect(),
        }))
    }

    async fn cancel_sync(&self, request: Request<pb::CancelSyncRequest>) -> Result<Response<pb::SyncJob>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::Operate)?;
        let job = self.context.syncs.cancel(&caller.org_id, &request.get_ref().id)?;
        Ok(Response::new(job_to_pb(&job)))
    }

    async fn watch_sync(&self, request: Request<pb::WatchSyncRequest>) -> Result<Response<JobStream>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::Read)?;
        let id = request.get_ref().id.clone();
        // Subscribe before reading, so no update between the two is missed.
        let mut updates = self.context.syncs.subscribe();
        let current = self.context.store.read(|rx| job_in_org(rx, &caller.org_id, &id))?;
        let store = self.context.store.clone();
        let org_id = caller.org_id.clone();
        let stream = async_stream::try_stream! {
            let mut finished = current.status.is_finished();
            yield job_to_pb(&current);
            while !finished {
                let job = match updates.recv().await {
                    Ok(job) if job.id == id => job,
                    Ok(_) => continue,
                    // Updates were dropped while this watcher was slow: the store has the
                    // latest state (the final one included, which is stored before it is sent).
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        store.read(|rx| job_in_org(rx, &org_id, &id))?
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                };
                finished = job.status.is_finished();
                yield job_to_pb(&job);
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_sync_errors(
        &self,
        request: Request<pb::ListSyncErrorsRequest>,
    ) -> Result<Response<pb::ListSyncErrorsResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::Read)?;
        let job_id = &request.get_ref().job_id;
        let records = self.context.store.read(|rx| {
            job_in_org(rx, &caller.org_id, job_id)?;
            let mut out = Vec::new();
            for key in rx.keys_with_prefix(OUTCOMES, &format!("{job_id}/"), 10_000)? {
                if let Some(outcome) = rx.get::<OutcomeRecord>(&key)? {
                    out.push(pb::RecordOutcome {
                        source_id: outcome.record_id,
                        target_id: outcome.linked_id.unwrap_or_default(),
                        state: if outcome.failed {
                            pb::RecordState::Failed
                        } else {
                            pb::RecordState::Skipped
                        }
                        .into(),
                        message: format!("{} ({})", outcome.message, outcome.flow.as_str()),
                    });
                }
            }
            Ok::<_, Status>(out)
        })?;
        Ok(Response::new(pb::ListSyncErrorsResponse { records }))
    }
}
