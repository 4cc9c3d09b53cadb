//! `SyncService`: run, inspect, watch and cancel syncs.

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status};

use super::Context;
use super::audited;
use super::pages::PageRequest;
use super::status::{not_found, with_reason};
use crate::auth::Caller;
use crate::mappings::service::mapping_in_org;
use crate::mappings::wire::policy_to_pb;
use crate::pb::{self, sync_service_server::SyncService};
use crate::pb_time;
use crate::store::{IndexTable, OUTCOMES, Reader};
use crate::syncs::records::{ConflictRecord, OutcomeRecord, SideName, SyncPhase, Trigger, conflicts_prefix};
use crate::syncs::runner::{SyncError, job_in_org};
use crate::syncs::{SyncJobRecord, SyncStatus};

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
            SyncError::JobNotFound(id) => not_found("sync job", &id),
            SyncError::NeedsConfirmation { .. } => with_reason(Code::FailedPrecondition, "NEEDS_CONFIRMATION", message),
            SyncError::Planning(_) => with_reason(Code::Unavailable, "PLANNING_FAILED", message),
            SyncError::ShuttingDown => with_reason(Code::Unavailable, "SHUTTING_DOWN", message),
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
        SyncStatus::Cancelling => pb::SyncStatus::Cancelling,
    }
}

fn conflict_to_pb(conflict: ConflictRecord) -> pb::SyncConflict {
    let side = |side: SideName| match side {
        SideName::Source => "source",
        SideName::Target => "target",
    };
    pb::SyncConflict {
        source_id: conflict.source_id,
        target_id: conflict.target_id,
        direction: conflict.flow.as_str().to_owned(),
        source_modified_at: pb_time::from_text(&conflict.source_modified_at),
        target_modified_at: pb_time::from_text(&conflict.target_modified_at),
        fields: conflict
            .fields
            .into_iter()
            .map(|field| pb::FieldConflict {
                field: field.field,
                source_value: field.source_value,
                target_value: field.target_value,
                policy: policy_to_pb(Some(field.policy)).into(),
                winner: side(field.winner).to_owned(),
            })
            .collect(),
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
            warnings: job.stats.warnings,
            conflicts: job.stats.conflicts,
            filtered: job.stats.filtered,
        }),
        created_at: pb_time::from_text(&job.created_at),
        started_at: pb_time::from_optional_text(job.started_at.as_deref()),
        finished_at: pb_time::from_optional_text(job.finished_at.as_deref()),
        error: job.error.clone().unwrap_or_default(),
        full: job.full,
        total_estimate: job.total_estimate.unwrap_or_default(),
        trigger: match job.trigger {
            Trigger::Manual => pb::SyncTrigger::Manual,
            Trigger::Schedule => pb::SyncTrigger::Schedule,
            Trigger::Webhook => pb::SyncTrigger::Webhook,
        }
        .into(),
        phase: match job.phase {
            None => pb::SyncPhase::Unspecified,
            Some(SyncPhase::Queued) => pb::SyncPhase::Queued,
            Some(SyncPhase::Matching) => pb::SyncPhase::Matching,
            Some(SyncPhase::Syncing) => pb::SyncPhase::Syncing,
            Some(SyncPhase::Retrying) => pb::SyncPhase::Retrying,
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
        Ok(audited(job_to_pb(&job), &job.id))
    }

    async fn get_sync(&self, request: Request<pb::GetSyncRequest>) -> Result<Response<pb::SyncJob>, Status> {
        let caller = Caller::of(&request)?;
        let job = self
            .context
            .store
            .read(|rx| job_in_org(rx, &caller.org_id, &request.get_ref().id))?;
        Ok(Response::new(job_to_pb(&self.context.syncs.overlay(job))))
    }

    async fn list_syncs(
        &self,
        request: Request<pb::ListSyncsRequest>,
    ) -> Result<Response<pb::ListSyncsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.get_ref();
        let page = PageRequest::parse(body.page_size, &body.page_token)?;
        let jobs = self.context.store.read(|rx| {
            // Newest first: the indexes list jobs in id (creation) order, read backwards.
            let (index, prefix) = if body.mapping_id.is_empty() {
                (IndexTable::OrgJobs, format!("{}/", caller.org_id))
            } else {
                mapping_in_org(rx, &caller.org_id, &body.mapping_id)?;
                (IndexTable::MappingJobs, format!("{}/", body.mapping_id))
            };
            let before = page.after.as_ref().map(|id| format!("{prefix}{id}"));
            let mut jobs = Vec::new();
            for key in rx.index_keys_rev(index, &prefix, before.as_deref(), page.fetch())? {
                jobs.extend(rx.get::<SyncJobRecord>(&key[prefix.len()..])?);
            }
            Ok::<_, Status>(jobs)
        })?;
        let (jobs, next_page_token) = page.finish(jobs, |job| job.id.clone());
        Ok(Response::new(pb::ListSyncsResponse {
            jobs: jobs
                .into_iter()
                .map(|job| job_to_pb(&self.context.syncs.overlay(job)))
                .collect(),
            next_page_token,
        }))
    }

    async fn cancel_sync(&self, request: Request<pb::CancelSyncRequest>) -> Result<Response<pb::SyncJob>, Status> {
        let caller = Caller::of(&request)?;
        let job = self.context.syncs.cancel(&caller.org_id, &request.get_ref().id).await?;
        Ok(audited(job_to_pb(&job), &job.id))
    }

    async fn watch_sync(&self, request: Request<pb::WatchSyncRequest>) -> Result<Response<JobStream>, Status> {
        let caller = Caller::of(&request)?;
        let id = request.get_ref().id.clone();
        // Subscribe before reading, so no update between the two is missed.
        let mut updates = self.context.syncs.subscribe();
        let current = self.context.store.read(|rx| job_in_org(rx, &caller.org_id, &id))?;
        let current = self.context.syncs.overlay(current);
        let store = self.context.store.clone();
        let syncs = self.context.syncs.clone();
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
                        syncs.overlay(store.read(|rx| job_in_org(rx, &org_id, &id))?)
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
        let body = request.get_ref();
        let page = PageRequest::parse(body.page_size, &body.page_token)?;
        let job_id = &body.job_id;
        let outcomes = self.context.store.read(|rx| {
            job_in_org(rx, &caller.org_id, job_id)?;
            let prefix = format!("{job_id}/");
            let conflicts = conflicts_prefix(job_id);
            let mut out = Vec::new();
            for key in rx.keys_after(OUTCOMES, &prefix, page.after.as_deref(), page.fetch())? {
                // Conflicts sort after every outcome: the outcomes end where they begin.
                if key.starts_with(&conflicts) {
                    break;
                }
                out.extend(rx.get::<OutcomeRecord>(&key)?);
            }
            Ok::<_, Status>(out)
        })?;
        let (outcomes, next_page_token) = page.finish(outcomes, |outcome| outcome.key.clone());
        let records = outcomes
            .into_iter()
            .map(|outcome| pb::RecordOutcome {
                source_id: outcome.record_id,
                target_id: outcome.linked_id.unwrap_or_default(),
                state: match (outcome.failed, outcome.warning) {
                    (true, _) => pb::RecordState::Failed,
                    (false, true) => pb::RecordState::Warning,
                    (false, false) => pb::RecordState::Skipped,
                }
                .into(),
                message: format!("{} ({})", outcome.message, outcome.flow.as_str()),
            })
            .collect();
        Ok(Response::new(pb::ListSyncErrorsResponse {
            records,
            next_page_token,
        }))
    }

    async fn list_sync_conflicts(
        &self,
        request: Request<pb::ListSyncConflictsRequest>,
    ) -> Result<Response<pb::ListSyncConflictsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.get_ref();
        let page = PageRequest::parse(body.page_size, &body.page_token)?;
        let job_id = &body.job_id;
        let conflicts = self.context.store.read(|rx| {
            job_in_org(rx, &caller.org_id, job_id)?;
            let mut out = Vec::new();
            for key in rx.keys_after(OUTCOMES, &conflicts_prefix(job_id), page.after.as_deref(), page.fetch())? {
                out.extend(rx.get::<ConflictRecord>(&key)?);
            }
            Ok::<_, Status>(out)
        })?;
        let (conflicts, next_page_token) = page.finish(conflicts, |conflict| conflict.key.clone());
        Ok(Response::new(pb::ListSyncConflictsResponse {
            conflicts: conflicts.into_iter().map(conflict_to_pb).collect(),
            next_page_token,
        }))
    }
}
