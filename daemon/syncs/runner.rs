//! Queues and runs sync jobs: one at a time per mapping (a second request joins the running
//! job), a bounded number in parallel overall, cancellation, progress for watchers, and the
//! resumption of jobs a crash or restart interrupted.
//!
//! Locking is per mapping only: starting a job touches that mapping's entry in the registry
//! of active jobs and nothing else, and a first sync's planning (the match index and the
//! count of records it would create) runs inside its own job. Every job runs under a
//! supervising task: a job that panics ends `failed` with the reason, and the next run of its
//! mapping resumes from the last checkpoint.

use crate::orgs::usage::{self, Usage};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures::FutureExt as _;
use tokio::sync::{Semaphore, broadcast, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::changes::{self, JobChanges};
use super::engine::{EngineError, Job};
use super::matching;
use super::plan::{Catalogs, Plan};
use super::records::{CursorRecord, Flow, SyncJobRecord, SyncPhase, SyncStateRecord, SyncStats, SyncStatus, Trigger};
use super::retention;
use crate::cluster::Ownership;
use crate::connections::ConnectionRecord;
use crate::connections::service::connection_in_org;
use crate::connectors::{Connector, ConnectorError, ListQuery};
use crate::events::{EventType, emit, now_rfc3339};
use crate::ids::{IdKind, new_id};
use crate::mappings::MappingRecord;
use crate::mappings::service::{MappingError, MappingRuntime, mapping_in_org};
use crate::mappings::spec::MatchingMode;
use crate::mappings::validate::effective_match_key;
use crate::metrics::Metrics;
use crate::store::postgres::Notice;
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
    #[error("fluxd is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How jobs are run.
#[derive(Debug, Clone, Copy)]
pub struct SyncSettings {
    /// Jobs running at once across all mappings.
    pub max_parallel: usize,
    /// A first sync that would create more records than this asks for confirmation.
    pub confirm_threshold: u64,
}

/// A queued or running job, as the registry of active jobs knows it.
struct ActiveJob {
    job: SyncJobRecord,
    /// Cancelled when the daemon stops or the organization moves to another node: the job
    /// stays `running` in the store, to resume where it runs next.
    interrupt: CancellationToken,
    /// Under `interrupt`: cancelled by a user's cancel, which ends the job.
    cancel: CancellationToken,
    /// Turns `true` once the job's end is stored.
    finished: watch::Receiver<bool>,
}

/// Shared by the sync service, the mapping actors and the jobs.
pub struct SyncRuntime {
    pub store: Store,
    pub mappings: Arc<MappingRuntime>,
    settings: SyncSettings,
    permits: Arc<Semaphore>,
    /// Active jobs by mapping id: the only lock a start takes, held for a map lookup.
    active: Mutex<HashMap<String, ActiveJob>>,
    progress: broadcast::Sender<SyncJobRecord>,
    /// Cancelled when the daemon stops: every job's token is its child, and a job it
    /// interrupts stays `running` in the store, to resume at the next start.
    stopping: CancellationToken,
    /// Where jobs are counted, and record-level jobs report how far behind the providers
    /// their writes land.
    metrics: Metrics,
    /// Which organizations' jobs run on this node; the others' are queued for their owner.
    ownership: Ownership,
}

/// What [`SyncRuntime::start_changes`] did.
#[derive(Debug)]
pub enum ChangesStart {
    /// A record-level job took the mapping's waiting changes.
    Started(Box<SyncJobRecord>),
    /// The mapping has a job queued or running; its changes wait for the next one.
    Busy,
    /// No changes wait.
    Empty,
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

/// The jobs of `mapping_id`, newest first, at most `limit`.
pub fn recent_jobs(rx: &impl Reader, mapping_id: &str, limit: usize) -> Result<Vec<SyncJobRecord>, StoreError> {
    let prefix = format!("{mapping_id}/");
    let mut jobs = Vec::new();
    for key in rx.index_keys_rev(IndexTable::MappingJobs, &prefix, None, limit)? {
        if let Some(job) = rx.get::<SyncJobRecord>(&key[prefix.len()..])? {
            jobs.push(job);
        }
    }
    Ok(jobs)
}

/// The unfinished job of `mapping_id`, if it has one.
fn active_job(rx: &impl Reader, mapping_id: &str) -> Result<Option<SyncJobRecord>, StoreError> {
    let Some(id) = rx
        .get::<SyncStateRecord>(mapping_id)?
        .and_then(|state| state.active_job)
    else {
        return Ok(None);
    };
    Ok(rx.get::<SyncJobRecord>(&id)?.filter(|job| !job.status.is_finished()))
}

/// Stores `job` as its mapping's active job, unless the mapping has an unfinished one (queued
/// through another node, in a cluster): returns the job that is the active one.
fn queue_job(tx: &mut crate::store::Tx<'_>, job: SyncJobRecord) -> Result<SyncJobRecord, StoreError> {
    if let Some(existing) = active_job(tx, &job.mapping_id)? {
        return Ok(existing);
    }
    store_new_job(tx, &job)?;
    let mut state = tx
        .get::<SyncStateRecord>(&job.mapping_id)?
        .unwrap_or_else(|| SyncStateRecord {
            mapping_id: job.mapping_id.clone(),
            ..Default::default()
        });
    state.active_job = Some(job.id.clone());
    tx.put(&state)?;
    Ok(job)
}

/// Cancels job `id` in the store if no node has started it yet; returns it as it now is
/// (`None` if it is gone).
fn cancel_queued(tx: &mut crate::store::Tx<'_>, id: &str) -> Result<Option<SyncJobRecord>, StoreError> {
    let Some(mut job) = tx.get::<SyncJobRecord>(id)? else {
        return Ok(None);
    };
    if job.status != SyncStatus::Pending {
        return Ok(Some(job));
    }
    job.status = SyncStatus::Cancelled;
    job.error = Some("cancelled before it started".into());
    job.finished_at = Some(now_rfc3339());
    job.phase = None;
    tx.put(&job)?;
    if let Some(mut state) = tx.get::<SyncStateRecord>(&job.mapping_id)?
        && state.active_job.as_deref() == Some(id)
    {
        state.active_job = None;
        state.last_job = Some(job.id.clone());
        state.last_status = Some(job.status);
        tx.put(&state)?;
    }
    Ok(Some(job))
}

/// Stores a new job and lists it under its mapping and its organization.
fn store_new_job(tx: &mut crate::store::Tx<'_>, job: &SyncJobRecord) -> Result<(), StoreError> {
    tx.put(job)?;
    tx.index_insert(IndexTable::MappingJobs, &format!("{}/{}", job.mapping_id, job.id))?;
    tx.index_insert(IndexTable::OrgJobs, &format!("{}/{}", job.org_id, job.id))
}

/// What a job needs to plan a first sync and to tell its starter the outcome.
struct Planning {
    answer: oneshot::Sender<Result<(), SyncError>>,
}

impl SyncRuntime {
    pub fn new(
        store: Store,
        mappings: Arc<MappingRuntime>,
        settings: SyncSettings,
        metrics: Metrics,
        ownership: Ownership,
    ) -> Arc<SyncRuntime> {
        let (progress, _) = broadcast::channel(1024);
        Arc::new(SyncRuntime {
            store,
            mappings,
            settings,
            permits: Arc::new(Semaphore::new(settings.max_parallel.max(1))),
            active: Mutex::default(),
            progress,
            stopping: CancellationToken::new(),
            metrics,
            ownership,
        })
    }

    /// A new job's tokens: (interrupt, cancel); see [`ActiveJob`].
    fn job_tokens(&self) -> (CancellationToken, CancellationToken) {
        let interrupt = self.stopping.child_token();
        let cancel = interrupt.child_token();
        (interrupt, cancel)
    }

    /// Interrupts every job (each stays resumable) and waits, up to `timeout`, until they
    /// have stopped; starts after this are refused.
    pub async fn shutdown(&self, timeout: std::time::Duration) {
        self.stopping.cancel();
        let waits: Vec<watch::Receiver<bool>> = self.active().values().map(|a| a.finished.clone()).collect();
        let all = futures::future::join_all(waits.into_iter().map(|mut finished| async move {
            let _ = finished.wait_for(|done| *done).await;
        }));
        if tokio::time::timeout(timeout, all).await.is_err() {
            tracing::warn!("sync jobs did not stop in time; they resume at the next start");
        }
    }

    /// Job snapshots as they change.
    pub fn subscribe(&self) -> broadcast::Receiver<SyncJobRecord> {
        self.progress.subscribe()
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashMap<String, ActiveJob>> {
        // A panic while the map was held cannot leave it half-updated (single inserts and
        // removes), so a poisoned lock is still usable.
        self.active.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts a sync of `mapping_id`, or returns the one already queued or running. A manual
    /// first sync is planned first (inside its job) and refused with
    /// [`SyncError::NeedsConfirmation`] above the threshold unless `confirm`.
    pub async fn start(
        self: &Arc<Self>,
        org_id: &str,
        mapping_id: &str,
        full: bool,
        confirm: bool,
        trigger: Trigger,
    ) -> Result<SyncJobRecord, SyncError> {
        let mapping = self.store.read(|rx| mapping_in_org(rx, org_id, mapping_id))?;
        let state = self
            .store
            .read(|rx| rx.get::<SyncStateRecord>(mapping_id))?
            .unwrap_or_default();
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
            phase: Some(SyncPhase::Queued),
        };
        if self.stopping.is_cancelled() {
            return Err(SyncError::ShuttingDown);
        }
        let needs_plan = !state.succeeded_once
            && !confirm
            && trigger == Trigger::Manual
            && self.settings.confirm_threshold > 0
            && mapping.spec.matching_mode != MatchingMode::MatchOnly;
        if !self.ownership.owns(org_id) {
            if needs_plan {
                // Planning (and refusing above the threshold) happens where the job runs,
                // which cannot answer this call.
                return Err(SyncError::Planning(
                    "this organization's syncs run on another node of the cluster; confirm the first sync with --yes (or run it through the node that holds the organization: fluxctl cluster nodes)".into(),
                ));
            }
            // Another node runs this organization: queue the job for it (its lease keeper
            // picks it up within a third of the lease term).
            let queued = self.store.write(move |tx| queue_job(tx, job)).await?;
            self.store.announce(Notice::Job, std::slice::from_ref(&queued.id));
            return Ok(queued);
        }
        let (interrupt, cancel) = self.job_tokens();
        let (finished_tx, finished) = watch::channel(false);
        let mut ended = finished.clone();
        {
            let mut active = self.active();
            if let Some(running) = active.get(mapping_id) {
                return Ok(running.job.clone());
            }
            active.insert(
                mapping_id.to_owned(),
                ActiveJob {
                    job: job.clone(),
                    interrupt: interrupt.clone(),
                    cancel: cancel.clone(),
                    finished,
                },
            );
        }
        let stored = job.clone();
        let created = self.store.write(move |tx| queue_job(tx, stored)).await;
        match created {
            Ok(queued) if queued.id == job.id => {}
            // Another node queued one first; this node's keeper adopts it.
            Ok(queued) => {
                self.active().remove(mapping_id);
                return Ok(queued);
            }
            Err(error) => {
                self.active().remove(mapping_id);
                return Err(error.into());
            }
        }
        if !needs_plan {
            self.supervise(job.clone(), interrupt, cancel, finished_tx, None);
            return Ok(job);
        }
        let (answer, planned) = oneshot::channel();
        self.supervise(job.clone(), interrupt, cancel, finished_tx, Some(Planning { answer }));
        match planned.await {
            Ok(Ok(())) => Ok(job),
            Ok(Err(refusal)) => {
                // The refused job ends without writing; answer once it has, so a confirmed
                // run sent right after starts a job instead of finding this one still active.
                let _ = ended.wait_for(|ended| *ended).await;
                Err(refusal)
            }
            Err(_) => Err(SyncError::Planning("the job stopped while planning".into())),
        }
    }

    /// Starts a record-level job of `mapping_id` with the changes inbound webhooks queued for
    /// it, unless it has a job queued or running (its changes then wait for the next call).
    pub async fn start_changes(self: &Arc<Self>, mapping_id: &str) -> Result<ChangesStart, SyncError> {
        if self.stopping.is_cancelled() {
            return Err(SyncError::ShuttingDown);
        }
        let Some(mapping) = self.store.read(|rx| rx.get::<MappingRecord>(mapping_id))? else {
            return Err(MappingError::NotFound(mapping_id.to_owned()).into());
        };
        if !self.ownership.owns(&mapping.org_id) {
            // The owner's keeper finds the changes in the store.
            return Ok(ChangesStart::Empty);
        }
        let mut job = SyncJobRecord {
            id: new_id(IdKind::Job),
            org_id: mapping.org_id.clone(),
            mapping_id: mapping_id.to_owned(),
            status: SyncStatus::Pending,
            stats: SyncStats::default(),
            created_at: now_rfc3339(),
            started_at: None,
            finished_at: None,
            error: None,
            full: false,
            trigger: Trigger::Webhook,
            total_estimate: None,
            phase: Some(SyncPhase::Queued),
        };
        let (interrupt, cancel) = self.job_tokens();
        let (finished_tx, finished) = watch::channel(false);
        {
            let mut active = self.active();
            if active.contains_key(mapping_id) {
                return Ok(ChangesStart::Busy);
            }
            active.insert(
                mapping_id.to_owned(),
                ActiveJob {
                    job: job.clone(),
                    interrupt: interrupt.clone(),
                    cancel: cancel.clone(),
                    finished,
                },
            );
        }
        let mut stored = job.clone();
        let created = self
            .store
            .write(move |tx| {
                if active_job(tx, &stored.mapping_id)?.is_some() {
                    return Ok(None);
                }
                let taken = changes::take(tx, &stored.mapping_id, &stored.id)?;
                if taken == 0 {
                    return Ok(Some(0));
                }
                stored.total_estimate = Some(taken as u64);
                store_new_job(tx, &stored)?;
                let mut state = tx
                    .get::<SyncStateRecord>(&stored.mapping_id)?
                    .unwrap_or_else(|| SyncStateRecord {
                        mapping_id: stored.mapping_id.clone(),
                        ..Default::default()
                    });
                state.active_job = Some(stored.id.clone());
                tx.put(&state)?;
                Ok::<_, StoreError>(Some(taken))
            })
            .await;
        match created {
            Ok(Some(taken)) if taken > 0 => {
                job.total_estimate = Some(taken as u64);
                self.supervise(job.clone(), interrupt, cancel, finished_tx, None);
                Ok(ChangesStart::Started(Box::new(job)))
            }
            Ok(Some(_)) => {
                self.active().remove(mapping_id);
                Ok(ChangesStart::Empty)
            }
            // A job queued through another node runs first.
            Ok(None) => {
                self.active().remove(mapping_id);
                Ok(ChangesStart::Busy)
            }
            Err(error) => {
                self.active().remove(mapping_id);
                Err(error.into())
            }
        }
    }

    /// Runs job `job` on a task of its own under a supervising task that stores its end,
    /// whatever it was (a panic included), and removes it from the active registry.
    fn supervise(
        self: &Arc<Self>,
        job: SyncJobRecord,
        interrupt: CancellationToken,
        cancel: CancellationToken,
        finished: watch::Sender<bool>,
        planning: Option<Planning>,
    ) {
        let runtime = self.clone();
        tokio::spawn(async move {
            // Every write of the job is fenced by its organization's lease as held now.
            let store = runtime.store.fenced(runtime.ownership.fence(&job.org_id));
            let outcome = panics_as_failures(runtime.execute(&store, &job.id, &cancel, planning)).await;
            // Interrupted (shutdown, handoff) or no longer this node's: the job stays running in
            // the store, for whichever node runs the organization.
            let interrupted = (interrupt.is_cancelled() && matches!(outcome, Err(EngineError::Cancelled)))
                || matches!(
                    outcome,
                    Err(EngineError::LeaseLost
                        | EngineError::AlreadyEnded
                        | EngineError::Store(StoreError::Fenced(_))
                        | EngineError::Connector(ConnectorError::LeaseLost(_)))
                );
            if interrupted {
                tracing::info!(job_id = %job.id, "sync interrupted (shutdown or handoff); it resumes where it runs next");
            } else if let Err(error) = runtime.finish(&store, &job, outcome).await {
                tracing::error!(job_id = %job.id, %error, "could not record the end of a sync; it resumes at the next start");
            }
            runtime.active().remove(&job.mapping_id);
            let _ = finished.send(true);
        });
    }

    /// Cancels job `id` if it is queued or running; returns it, `cancelling` until it stops.
    pub async fn cancel(&self, org_id: &str, id: &str) -> Result<SyncJobRecord, SyncError> {
        let job = self.store.read(|rx| job_in_org(rx, org_id, id))?;
        if !self.cancel_local(&job.mapping_id, id) && !job.status.is_finished() {
            // A manual or scheduled job queued and not picked up by any node yet is cancelled
            // in the store, where the node that would run it looks before it starts (a
            // record-level job carries inbound changes: only the node running it ends it).
            if job.status == SyncStatus::Pending && job.trigger != Trigger::Webhook {
                let job_id = id.to_owned();
                let cancelled = self
                    .store
                    .write(move |tx| cancel_queued(tx, &job_id))
                    .await?
                    .unwrap_or_else(|| job.clone());
                if cancelled.status == SyncStatus::Cancelled {
                    let _ = self.progress.send(cancelled.clone());
                    self.store.announce(Notice::Job, std::slice::from_ref(&cancelled.id));
                    return Ok(cancelled);
                }
                // A node started it meanwhile: tell that node.
            }
            // It runs on the node that owns its organization.
            self.store.announce(Notice::Cancel, &[id.to_owned()]);
        }
        let job = self.overlay(job);
        let _ = self.progress.send(job.clone());
        Ok(job)
    }

    /// Cancels job `id` of `mapping_id` if it runs here; says whether it did.
    fn cancel_local(&self, mapping_id: &str, id: &str) -> bool {
        match self.active().get(mapping_id).filter(|a| a.job.id == id) {
            Some(active) => {
                active.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Hears what other nodes of a cluster say about jobs: a job changed there (its watchers
    /// here read it again), or a user asked there to cancel a job running here.
    pub fn hear_other_nodes(self: &Arc<Self>) {
        let runtime = Arc::downgrade(self);
        let tasks = tokio::runtime::Handle::current();
        self.store.set_job_news_hook(move |notice, job_id| {
            let Some(runtime) = runtime.upgrade() else {
                return;
            };
            let Ok(Some(job)) = runtime.store.read(|rx| rx.get::<SyncJobRecord>(job_id)) else {
                return;
            };
            match notice {
                Notice::Cancel => {
                    runtime.cancel_local(&job.mapping_id, job_id);
                }
                // A job queued through another node for one of this node's organizations.
                Notice::Job if !job.status.is_finished() && runtime.ownership.owns(&job.org_id) => {
                    tasks.spawn(async move {
                        if let Err(error) = runtime.resume_interrupted().await {
                            tracing::warn!(%error, "cannot start a sync queued through another node");
                        }
                    });
                }
                Notice::Job | Notice::Wake | Notice::Entity => {
                    let _ = runtime.progress.send(job);
                }
            }
        });
    }

    /// Publishes `job` to this node's watchers and tells the other nodes it changed.
    fn publish(&self, job: SyncJobRecord) {
        self.store.announce(Notice::Job, std::slice::from_ref(&job.id));
        let _ = self.progress.send(job);
    }

    /// `job` as its watchers should see it: `cancelling` while a cancelled job is still
    /// running (not while the daemon stops: interrupted jobs resume).
    pub fn overlay(&self, mut job: SyncJobRecord) -> SyncJobRecord {
        let cancelling = !job.status.is_finished()
            && !self.stopping.is_cancelled()
            && self.active().get(&job.mapping_id).is_some_and(|active| {
                // A user's cancel, not an interrupt (which cancels the job's token too).
                active.job.id == job.id && active.cancel.is_cancelled() && !active.interrupt.is_cancelled()
            });
        if cancelling {
            job.status = SyncStatus::Cancelling;
        }
        job
    }

    /// Cancels the active job of `mapping_id`, if any, and waits until its end is stored.
    pub async fn stop_mapping(&self, mapping_id: &str) {
        let finished = self.active().get(mapping_id).map(|active| {
            active.cancel.cancel();
            active.finished.clone()
        });
        if let Some(mut finished) = finished {
            let _ = finished.wait_for(|done| *done).await;
        }
    }

    /// Restarts jobs that were queued or running when fluxd stopped; they resume from their
    /// mapping's last checkpoint.
    /// In a cluster, this also adopts the jobs of organizations this node just took over and
    /// the jobs other nodes queued for it.
    pub async fn resume_interrupted(self: &Arc<Self>) -> Result<usize, StoreError> {
        let interrupted: Vec<SyncJobRecord> = self
            .store
            .scan(|rx| {
                let mut jobs = Vec::new();
                for state in rx.list::<SyncStateRecord>()? {
                    if let Some(job) = state.active_job.as_deref().map(|id| rx.get::<SyncJobRecord>(id)) {
                        jobs.extend(job?.filter(|j| !j.status.is_finished()));
                    }
                }
                Ok::<_, StoreError>(jobs)
            })
            .await?;
        let mut resumed = 0;
        for job in interrupted {
            if self.stopping.is_cancelled() || !self.ownership.owns(&job.org_id) {
                continue;
            }
            let (interrupt, cancel) = self.job_tokens();
            let (finished_tx, finished) = watch::channel(false);
            {
                let mut active = self.active();
                if active.contains_key(&job.mapping_id) {
                    continue;
                }
                active.insert(
                    job.mapping_id.clone(),
                    ActiveJob {
                        job: job.clone(),
                        interrupt: interrupt.clone(),
                        cancel: cancel.clone(),
                        finished,
                    },
                );
            }
            tracing::info!(job_id = %job.id, mapping_id = %job.mapping_id, "running a sync that was interrupted or queued elsewhere");
            self.supervise(job, interrupt, cancel, finished_tx, None);
            resumed += 1;
        }
        Ok(resumed)
    }

    /// Interrupts the jobs of organization `org_id` (they stay resumable) and waits until
    /// they have stopped: the organization is moving to another node.
    pub async fn interrupt_org(&self, org_id: &str) {
        let waits: Vec<watch::Receiver<bool>> = self
            .active()
            .values()
            .filter(|active| active.job.org_id == org_id)
            .map(|active| {
                active.interrupt.cancel();
                active.finished.clone()
            })
            .collect();
        for mut finished in waits {
            let _ = finished.wait_for(|done| *done).await;
        }
    }

    /// Runs job `job_id`, writing through `store` (fenced, in a cluster).
    async fn execute(
        &self,
        store: &Store,
        job_id: &str,
        cancel: &CancellationToken,
        planning: Option<Planning>,
    ) -> Result<SyncJobRecord, EngineError> {
        let permit = tokio::select! {
            permit = self.permits.clone().acquire_owned() => permit.ok(),
            () = cancel.cancelled() => None,
        };
        let Some(_permit) = permit else {
            if let Some(planning) = planning {
                let _ = planning
                    .answer
                    .send(Err(SyncError::Planning("the sync was cancelled".into())));
            }
            return Err(EngineError::Cancelled);
        };
        self.run_job(store, job_id, cancel, planning).await
    }

    async fn run_job(
        &self,
        store: &Store,
        job_id: &str,
        cancel: &CancellationToken,
        planning: Option<Planning>,
    ) -> Result<SyncJobRecord, EngineError> {
        let mut job = self
            .store
            .read(|rx| rx.get::<SyncJobRecord>(job_id))?
            .ok_or_else(|| EngineError::Mapping(format!("job {job_id} vanished")))?;
        let mapping = self
            .store
            .read(|rx| rx.get::<MappingRecord>(&job.mapping_id))?
            .ok_or_else(|| EngineError::Mapping("the mapping was deleted".into()))?;
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
        let (source_catalog, target_catalog) = self
            .mappings
            .filter_catalogs(&mapping.spec, &source_conn, &target_conn)
            .await
            .map_err(|error| match error {
                MappingError::Catalog { error, .. } => EngineError::Connector(error),
                other => EngineError::Mapping(other.to_string()),
            })?;
        let catalogs = Catalogs {
            source: &source_catalog,
            target: &target_catalog,
        };
        let plan = Plan::compile(&mapping.spec, catalogs).map_err(EngineError::Mapping)?;
        if let Some(planning) = planning {
            let verdict = self
                .plan_first_sync(&mapping, &plan, (&target_conn, &target), &source, cancel)
                .await;
            let refused = verdict.is_err();
            let _ = planning.answer.send(verdict);
            if refused {
                return Err(EngineError::NotConfirmed);
            }
        }
        // A job interrupted by a crash, or one after a job that failed, was cancelled or had
        // failed writes (a create may have landed without its answer), may find records whose
        // links were never recorded: it rebuilds the match index first.
        let state = self
            .store
            .read(|rx| rx.get::<SyncStateRecord>(&job.mapping_id))?
            .unwrap_or_default();
        let interrupted = job.status == SyncStatus::Running;
        let resumed = interrupted
            || state.last_status.is_some_and(|status| {
                matches!(status, SyncStatus::Failed | SyncStatus::Cancelled | SyncStatus::Partial)
            });
        job.status = SyncStatus::Running;
        job.phase = Some(SyncPhase::Syncing);
        job.started_at.get_or_insert_with(now_rfc3339);
        let started = job.clone();
        let still_active = store
            .write(move |tx| {
                // Picked up from a scan that another node (or this one) has since overtaken:
                // the job ended or is no longer its mapping's active one.
                if active_job(tx, &started.mapping_id)?.is_none_or(|active| active.id != started.id) {
                    return Ok(false);
                }
                tx.put(&started)?;
                if !interrupted {
                    emit(tx, &started.org_id, EventType::SyncStarted, event_data(&started))?;
                }
                Ok::<_, StoreError>(true)
            })
            .await?;
        if !still_active {
            return Err(EngineError::AlreadyEnded);
        }
        self.publish(job.clone());
        tracing::info!(job_id = %job.id, mapping_id = %mapping.id, resumed, "sync started");
        let progress = |snapshot: &SyncJobRecord| {
            let _ = self.progress.send(self.overlay(snapshot.clone()));
        };
        let mut engine = Job {
            store,
            job: &mut job,
            mapping: &mapping,
            plan: &plan,
            source: (&source_conn, &source),
            target: (&target_conn, &target),
            cancel,
            resumed,
            progress: &progress,
            conflicts_seen: Default::default(),
        };
        if engine.job.trigger == Trigger::Webhook {
            let changes = self
                .store
                .read(|rx| rx.get::<JobChanges>(job_id))?
                .map(|taken| taken.changes)
                .unwrap_or_default();
            let lags = engine.run_changes(&changes).await?;
            self.metrics.inbound.observe_writes(&lags);
        } else {
            engine.run().await?;
        }
        Ok(job)
    }

    /// A manual first sync: builds the match index of the target and counts what the sync
    /// would create; refuses above the confirmation threshold.
    async fn plan_first_sync(
        &self,
        mapping: &MappingRecord,
        plan: &Plan,
        target: (&ConnectionRecord, &Connector),
        source: &Connector,
        cancel: &CancellationToken,
    ) -> Result<(), SyncError> {
        let planning = |e: &dyn std::fmt::Display| SyncError::Planning(e.to_string());
        let match_field = effective_match_key(&mapping.spec, target.0.provider)
            .filter(|_| mapping.spec.matching_mode != MatchingMode::CreateOnly);
        if let Some(field) = &match_field {
            matching::build(
                &self.store,
                target.1,
                &mapping.id,
                Flow::Forward,
                &mapping.spec.target.object,
                field,
            )
            .await
            .map_err(|e| planning(&e))?;
            let key = format!("{}/{}", mapping.id, Flow::Forward.as_str());
            self.store
                .write(move |tx| {
                    let mut cursor = tx.get::<CursorRecord>(&key)?.unwrap_or_else(|| CursorRecord {
                        key: key.clone(),
                        ..Default::default()
                    });
                    cursor.match_index_built = true;
                    tx.put(&cursor)
                })
                .await?;
        }
        let (mut total, mut matched) = (0u64, 0u64);
        let mut cursor: Option<String> = None;
        loop {
            if cancel.is_cancelled() {
                return Err(SyncError::Planning("the sync was cancelled".into()));
            }
            let query = ListQuery {
                object: &mapping.spec.source.object,
                since: None,
                cursor: cursor.as_deref(),
                limit: super::engine::PAGE_SIZE,
                fields: &plan.source_fields,
                filter: plan.filter(Flow::Forward),
            };
            let page = source.list_changed(&query).await.map_err(|e| planning(&e))?;
            let admitted: Vec<_> = page
                .records
                .iter()
                .filter(|record| plan.admits(Flow::Forward, &record.fields))
                .collect();
            total += admitted.len() as u64;
            let values: Vec<String> = admitted
                .iter()
                .filter_map(|record| match (&match_field, plan.map(Flow::Forward, &record.fields)) {
                    (Some(field), Ok(mapped)) => mapped.values.get(field).cloned(),
                    _ => None,
                })
                .collect();
            // One snapshot per page, not one per record.
            matched += self.store.read(|rx| {
                values.iter().try_fold(0u64, |found, value| {
                    matching::lookup(rx, &mapping.id, Flow::Forward, value).map(|hit| found + u64::from(hit.is_some()))
                })
            })?;
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let would_create = total - matched;
        if would_create > self.settings.confirm_threshold {
            return Err(SyncError::NeedsConfirmation {
                total,
                matched,
                would_create,
            });
        }
        Ok(())
    }

    /// Stores the end of `job` with `outcome`, emits its event, and prunes the mapping's
    /// older jobs.
    async fn finish(
        &self,
        store: &Store,
        job: &SyncJobRecord,
        outcome: Result<SyncJobRecord, EngineError>,
    ) -> Result<(), StoreError> {
        let job_id = job.id.clone();
        let finished = store
            .write(move |tx| {
                let Some(mut job) = tx.get::<SyncJobRecord>(&job_id)? else {
                    return Ok(None);
                };
                let event = match &outcome {
                    Ok(done) => {
                        job.stats = done.stats;
                        job.total_estimate = done.total_estimate;
                        let succeeded = job.stats.created + job.stats.updated + job.stats.unchanged + job.stats.skipped;
                        if job.stats.failed > 0 && succeeded == 0 {
                            job.status = SyncStatus::Failed;
                            job.error = Some(format!("all {} records failed", job.stats.failed));
                            Some(EventType::SyncFailed)
                        } else if job.stats.failed > 0 {
                            job.status = SyncStatus::Partial;
                            Some(EventType::SyncPartial)
                        } else {
                            job.status = SyncStatus::Completed;
                            Some(EventType::SyncCompleted)
                        }
                    }
                    Err(EngineError::NotConfirmed) => {
                        job.status = SyncStatus::Cancelled;
                        job.error = Some("not started: the first sync needs confirmation (--yes)".into());
                        None
                    }
                    Err(EngineError::Cancelled) => {
                        job.status = SyncStatus::Cancelled;
                        job.error = Some("cancelled".into());
                        Some(EventType::SyncFailed)
                    }
                    Err(error) => {
                        job.status = SyncStatus::Failed;
                        job.error = Some(error.to_string());
                        Some(EventType::SyncFailed)
                    }
                };
                // What ran is billed, whatever the outcome; a job refused for want of
                // confirmation never ran.
                if !matches!(outcome, Err(EngineError::NotConfirmed)) {
                    let counted = Usage {
                        records_created: job.stats.created,
                        records_updated: job.stats.updated,
                        sync_runs: 1,
                        ..Usage::default()
                    };
                    usage::count(tx, &job.org_id, counted)?;
                }
                job.finished_at = Some(now_rfc3339());
                job.phase = None;
                tx.put(&job)?;
                // A record-level job's changes are done with, synced or not (failed records
                // are retried by the mapping's later passes).
                tx.remove::<JobChanges>(&job.id)?;
                let mut state = tx
                    .get::<SyncStateRecord>(&job.mapping_id)?
                    .unwrap_or_else(|| SyncStateRecord {
                        mapping_id: job.mapping_id.clone(),
                        ..Default::default()
                    });
                if state.active_job.as_deref() == Some(job.id.as_str()) {
                    state.active_job = None;
                }
                state.last_job = Some(job.id.clone());
                state.last_status = Some(job.status);
                state.succeeded_once |= matches!(job.status, SyncStatus::Completed | SyncStatus::Partial);
                tx.put(&state)?;
                if let Some(event) = event {
                    emit(tx, &job.org_id, event, event_data(&job))?;
                }
                retention::prune_jobs(tx, &job.mapping_id)?;
                Ok::<_, StoreError>(Some(job))
            })
            .await?;
        if let Some(job) = finished {
            let ran = job
                .started_at
                .as_deref()
                .and_then(|at| at.parse::<jiff::Timestamp>().ok())
                .map_or(0.0, |at| (jiff::Timestamp::now() - at).as_secs_f64().max(0.0));
            self.metrics.syncs.finished(&job, ran);
            tracing::info!(
                job_id = %job.id,
                status = job.status.as_str(),
                fetched = job.stats.fetched,
                created = job.stats.created,
                updated = job.stats.updated,
                unchanged = job.stats.unchanged,
                skipped = job.stats.skipped,
                failed = job.stats.failed,
                error = job.error.as_deref().unwrap_or_default(),
                "sync finished"
            );
            self.publish(job);
        }
        Ok(())
    }
}

/// Runs a job's future; a panic in it becomes a failure with the reason, like any other.
async fn panics_as_failures(
    job: impl std::future::Future<Output = Result<SyncJobRecord, EngineError>>,
) -> Result<SyncJobRecord, EngineError> {
    match AssertUnwindSafe(job).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(panic) => Err(EngineError::Mapping(format!(
            "the sync job failed unexpectedly ({}); the next run resumes from its last checkpoint",
            panic_message(&*panic)
        ))),
    }
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_that_panics_fails_with_the_reason() {
        let outcome = panics_as_failures(async {
            let records: Vec<u32> = Vec::new();
            // A bug in a job, as it would surface.
            let _ = records[3];
            unreachable!()
        })
        .await;
        let message = outcome.unwrap_err().to_string();
        assert!(
            message.contains("failed unexpectedly") && message.contains("index out of bounds"),
            "{message}"
        );
        assert!(message.contains("resumes from its last checkpoint"), "{message}");
    }
}
