//! Queues and runs sync jobs: one at a time per mapping (a second request joins the running
//! job), a bounded number in parallel overall, cancellation, progress for watchers, and the
//! resumption of jobs a crash or restart interrupted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

use super::engine::{EngineError, Job};
use super::matching;
use super::plan::Plan;
use super::records::{CursorRecord, Flow, SyncJobRecord, SyncStats, SyncStatus, Trigger};
use crate::connections::service::connection_in_org;
use crate::connectors::ListQuery;
use crate::events::{EventType, emit, now_rfc3339};
use crate::ids::{IdKind, new_id};
use crate::mappings::MappingRecord;
use crate::mappings::service::{MappingError, MappingRuntime, mapping_in_org};
use crate::mappings::spec::MatchingMode;
use crate::mappings::validate::effective_match_key;
use crate::store::{IndexTable, Reader, Store, StoreError};

/// Errors of starting or controlling jobs.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error("sync job {0:?} not found")]
    JobNotFound(String),
    #[error(
        "the first sync of this mapping would create {would_create} records in the target ({matched} of {total} source records match existing ones); confirm with --yes"
    )]
    NeedsConfirmation {
        total: u64,
        matched: u64,
        would_create: u64,
    },
    #[error("cannot plan the first sync: {0}")]
    Planning(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Shared by the sync service, the mapping actors and the jobs.
pub struct SyncRuntime {
    pub store: Store,
    pub mappings: Arc<MappingRuntime>,
    permits: Arc<Semaphore>,
    running: Mutex<HashMap<String, CancellationToken>>,
    progress: broadcast::Sender<SyncJobRecord>,
    /// Held while a job is being started, so two starts cannot both see "no active job".
    starting: tokio::sync::Mutex<()>,
    /// A first sync that would create more records than this asks for confirmation.
    pub confirm_threshold: u64,
}

/// The seed's `data` of `sync.*` events.
fn event_data(job: &SyncJobRecord) -> serde_json::Value {
    serde_json::json!({
        "jobId": job.id,
        "mappingId": job.mapping_id,
        "status": job.status.as_str(),
        "stats": {
            "fetched": job.stats.fetched,
            "created": job.stats.created,
            "updated": job.stats.updated,
            "failed": job.stats.failed,
        },
    })
}

/// The job `id` of organization `org_id`.
pub fn job_in_org(rx: &impl Reader, org_id: &str, id: &str) -> Result<SyncJobRecord, SyncError> {
    rx.get::<SyncJobRecord>(id)?
        .filter(|j| j.org_id == org_id)
        .ok_or_else(|| SyncError::JobNotFound(id.to_owned()))
}

/// The jobs of `mapping_id`, oldest first.
pub fn jobs_of_mapping(rx: &impl Reader, mapping_id: &str) -> Result<Vec<SyncJobRecord>, StoreError> {
    let prefix = format!("{mapping_id}/");
    let mut jobs = Vec::new();
    for key in rx.index_keys(IndexTable::MappingJobs, &prefix, usize::MAX)? {
        if let Some(job) = rx.get::<SyncJobRecord>(&key[prefix.len()..])? {
            jobs.push(job);
        }
    }
    Ok(jobs)
}

impl SyncRuntime {
    pub fn new(
        store: Store,
        mappings: Arc<MappingRuntime>,
        parallel: usize,
        confirm_threshold: u64,
    ) -> Arc<SyncRuntime> {
        let (progress, _) = broadcast::channel(1024);
        Arc::new(SyncRuntime {
            store,
            mappings,
            permits: Arc::new(Semaphore::new(parallel.max(1))),
            running: Mutex::default(),
            progress,
            starting: tokio::sync::Mutex::new(()),
            confirm_threshold,
        })
    }

    /// Job snapshots as they change.
    pub fn subscribe(&self) -> broadcast::Receiver<SyncJobRecord> {
        self.progress.subscribe()
    }

    /// Starts a sync of `mapping_id`, or returns the one already queued or running.
    pub async fn start(
        self: &Arc<Self>,
        org_id: &str,
        mapping_id: &str,
        full: bool,
        confirm: bool,
        trigger: Trigger,
    ) -> Result<SyncJobRecord, SyncError> {
        let _starting = self.starting.lock().await;
        let mapping = self.store.read(|rx| mapping_in_org(rx, org_id, mapping_id))?;
        let jobs = self.store.read(|rx| jobs_of_mapping(rx, mapping_id))?;
        if let Some(active) = jobs.iter().find(|j| !j.status.is_finished()) {
            return Ok(active.clone());
        }
        let first = !jobs
            .iter()
            .any(|j| matches!(j.status, SyncStatus::Completed | SyncStatus::Partial));
        if first && !confirm && trigger == Trigger::Manual && self.confirm_threshold > 0 {
            self.check_first_sync(&mapping).await?;
        }
        let job = SyncJobRecord {
            id: new_id(IdKind::Job),
            org_id: org_id.to_owned(),
            mapping_id: mapping_id.to_owned(),
            status: SyncStatus::Pending,
            stats: SyncStats::default(),
            created_at: now_rfc3339(),
            started_at: None,
            finished_at: None,
            error: None,
            full,
            trigger,
            total_estimate: None,
        };
        self.store.write(|tx| {
            tx.put(&job)?;
            tx.index_insert(IndexTable::MappingJobs, &format!("{mapping_id}/{}", job.id))
        })?;
        self.spawn(job.id.clone());
        Ok(job)
    }

    /// Counts what a first sync would create; refuses above the threshold.
    async fn check_first_sync(&self, mapping: &MappingRecord) -> Result<(), SyncError> {
        let planning = |e: &dyn std::fmt::Display| SyncError::Planning(e.to_string());
        let plan = Plan::compile(&mapping.spec).map_err(|e| planning(&e))?;
        let (source_conn, target_conn) = self.store.read(|rx| {
            Ok::<_, SyncError>((
                connection_in_org(rx, &mapping.org_id, &mapping.spec.source.connection).map_err(|e| planning(&e))?,
                connection_in_org(rx, &mapping.org_id, &mapping.spec.target.connection).map_err(|e| planning(&e))?,
            ))
        })?;
        let source = self.mappings.connector(&source_conn);
        let target = self.mappings.connector(&target_conn);
        let match_field = effective_match_key(&mapping.spec, target_conn.provider)
            .filter(|_| mapping.spec.matching_mode != MatchingMode::CreateOnly);
        if let Some(field) = &match_field {
            matching::build(
                &self.store,
                &target,
                &mapping.id,
                Flow::Forward,
                &mapping.spec.target.object,
                field,
            )
            .await
            .map_err(|e| planning(&e))?;
            let key = format!("{}/{}", mapping.id, Flow::Forward.as_str());
            self.store.write(|tx| {
                let mut cursor = tx.get::<CursorRecord>(&key)?.unwrap_or_else(|| CursorRecord {
                    key: key.clone(),
                    ..Default::default()
                });
                cursor.match_index_built = true;
                tx.put(&cursor)
            })?;
        }
        let (mut total, mut matched) = (0u64, 0u64);
        let mut cursor: Option<String> = None;
        loop {
            let query = ListQuery {
                object: &mapping.spec.source.object,
                since: None,
                cursor: cursor.as_deref(),
                limit: super::engine::PAGE_SIZE,
                fields: &plan.source_fields,
            };
            let page = source.list_changed(&query).await.map_err(|e| planning(&e))?;
            total += page.records.len() as u64;
            for record in &page.records {
                let value = match (&match_field, plan.map(Flow::Forward, &record.fields)) {
                    (Some(field), Ok(values)) => values.get(field).cloned(),
                    _ => None,
                };
                if let Some(value) = value
                    && self
                        .store
                        .read(|rx| matching::lookup(rx, &mapping.id, Flow::Forward, &value))?
                        .is_some()
                {
                    matched += 1;
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let would_create = total - matched;
        if would_create > self.confirm_threshold {
            return Err(SyncError::NeedsConfirmation {
                total,
                matched,
                would_create,
            });
        }
        Ok(())
    }

    fn spawn(self: &Arc<Self>, job_id: String) {
        let cancel = CancellationToken::new();
        if let Ok(mut running) = self.running.lock() {
            running.insert(job_id.clone(), cancel.clone());
        }
        let runtime = self.clone();
        tokio::spawn(async move {
            runtime.execute(&job_id, cancel).await;
            if let Ok(mut running) = runtime.running.lock() {
                running.remove(&job_id);
            }
        });
    }

    /// Cancels job `id` if it is queued or running; returns its record.
    pub fn cancel(&self, org_id: &str, id: &str) -> Result<SyncJobRecord, SyncError> {
        let job = self.store.read(|rx| job_in_org(rx, org_id, id))?;
        if let Some(token) = self.running.lock().ok().and_then(|r| r.get(id).cloned()) {
            token.cancel();
        }
        Ok(job)
    }

    /// Restarts jobs that were queued or running when fluxd stopped; they resume from their
    /// mapping's last checkpoint.
    pub fn resume_interrupted(self: &Arc<Self>) -> Result<usize, StoreError> {
        let interrupted: Vec<SyncJobRecord> = self
            .store
            .read(|rx| rx.list::<SyncJobRecord>())?
            .into_iter()
            .filter(|j| !j.status.is_finished())
            .collect();
        for job in &interrupted {
            tracing::info!(job_id = %job.id, mapping_id = %job.mapping_id, "resuming an interrupted sync");
            self.spawn(job.id.clone());
        }
        Ok(interrupted.len())
    }

    async fn execute(&self, job_id: &str, cancel: CancellationToken) {
        let permit = tokio::select! {
            permit = self.permits.clone().acquire_owned() => permit.ok(),
            () = cancel.cancelled() => None,
        };
        let outcome = match permit {
            Some(_permit) => self.run_job(job_id, &cancel).await,
            None => Err(EngineError::Cancelled),
        };
        if let Err(error) = self.finish(job_id, outcome) {
            tracing::error!(job_id, %error, "could not record the end of a sync");
        }
    }

    async fn run_job(&self, job_id: &str, cancel: &CancellationToken) -> Result<SyncJobRecord, EngineError> {
        let mut job = self
            .store
            .read(|rx| rx.get::<SyncJobRecord>(job_id))?
            .ok_or_else(|| EngineError::Mapping(format!("job {job_id} vanished")))?;
        let mapping = self
            .store
            .read(|rx| rx.get::<MappingRecord>(&job.mapping_id))?
            .ok_or_else(|| EngineError::Mapping("the mapping was deleted".into()))?;
        let plan = Plan::compile(&mapping.spec).map_err(EngineError::Mapping)?;
        let (source_conn, target_conn) = self
            .store
            .read(|rx| {
                Ok::<_, crate::connections::service::ConnectionError>((
                    connection_in_org(rx, &mapping.org_id, &mapping.spec.source.connection)?,
                    connection_in_org(rx, &mapping.org_id, &mapping.spec.target.connection)?,
                ))
            })
            .map_err(|e| EngineError::Mapping(e.to_string()))?;
        let source = self.mappings.connector(&source_conn);
        let target = self.mappings.connector(&target_conn);
        // A job interrupted by a crash, or one after a job that failed, was cancelled or had
        // failed writes (a create may have landed without its answer), may find records whose
        // links were never recorded: it rebuilds the match index first.
        let previous = self
            .store
            .read(|rx| jobs_of_mapping(rx, &job.mapping_id))?
            .into_iter()
            .rfind(|j| j.id < job.id);
        let interrupted = job.status == SyncStatus::Running;
        let resumed = interrupted
            || previous.is_some_and(|p| {
                matches!(
                    p.status,
                    SyncStatus::Failed | SyncStatus::Cancelled | SyncStatus::Partial
                )
            });
        job.status = SyncStatus::Running;
        job.started_at.get_or_insert_with(now_rfc3339);
        self.store.write(|tx| {
            tx.put(&job)?;
            if !interrupted {
                emit(tx, &job.org_id, EventType::SyncStarted, event_data(&job))?;
            }
            Ok::<_, StoreError>(())
        })?;
        let _ = self.progress.send(job.clone());
        tracing::info!(job_id = %job.id, mapping_id = %mapping.id, resumed, "sync started");
        let progress = |snapshot: &SyncJobRecord| {
            let _ = self.progress.send(snapshot.clone());
        };
        let result = Job {
            store: &self.store,
            job: &mut job,
            mapping: &mapping,
            plan: &plan,
            source: (&source_conn, &source),
            target: (&target_conn, &target),
            cancel,
            resumed,
            progress: &progress,
        }
        .run()
        .await;
        result.map(|()| job)
    }

    fn finish(&self, job_id: &str, outcome: Result<SyncJobRecord, EngineError>) -> Result<(), StoreError> {
        let job = self.store.write(|tx| {
            let Some(mut job) = tx.get::<SyncJobRecord>(job_id)? else {
                return Ok(None);
            };
            let event = match &outcome {
                Ok(done) => {
                    job.stats = done.stats;
                    job.total_estimate = done.total_estimate;
                    if job.stats.failed > 0 {
                        job.status = SyncStatus::Partial;
                        EventType::SyncPartial
                    } else {
                        job.status = SyncStatus::Completed;
                        EventType::SyncCompleted
                    }
                }
                Err(EngineError::Cancelled) => {
                    job.status = SyncStatus::Cancelled;
                    job.error = Some("cancelled".into());
                    EventType::SyncFailed
                }
                Err(error) => {
                    job.status = SyncStatus::Failed;
                    job.error = Some(error.to_string());
                    EventType::SyncFailed
                }
            };
            job.finished_at = Some(now_rfc3339());
            tx.put(&job)?;
            emit(tx, &job.org_id, event, event_data(&job))?;
            Ok::<_, StoreError>(Some(job))
        })?;
        if let Some(job) = job {
            tracing::info!(job_id = %job.id, status = job.status.as_str(), stats = ?job.stats, error = ?job.error, "sync finished");
            let _ = self.progress.send(job);
        }
        Ok(())
    }
}
