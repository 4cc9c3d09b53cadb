//! Starts record-level syncs: a mapping with changes queued by inbound webhooks gets a job as
//! soon as it has none queued or running, so a burst of changes arriving while a job runs is
//! synced by the next one, together.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use super::changes;
use super::runner::{ChangesStart, SyncError, SyncRuntime};
use crate::mappings::service::MappingError;

/// How often mappings that could not start are tried again without news.
const RECHECK: Duration = Duration::from_secs(1);

/// The mappings with queued changes, and what wakes their starter.
pub struct ChangeJobs {
    syncs: Arc<SyncRuntime>,
    /// Mapping id → how many times changes were queued for it, so a mapping found empty is
    /// forgotten only if nothing was queued meanwhile.
    waiting: Mutex<HashMap<String, u64>>,
    wake: Notify,
}

impl ChangeJobs {
    /// A starter for `syncs`' mappings; it knows of the changes already queued in the store.
    pub fn new(syncs: Arc<SyncRuntime>) -> Result<Arc<ChangeJobs>, crate::store::StoreError> {
        let queued = syncs.store.read(|rx| changes::mappings_with_pending(rx))?;
        Ok(Arc::new(ChangeJobs {
            syncs,
            waiting: Mutex::new(queued.into_iter().map(|id| (id, 0)).collect()),
            wake: Notify::new(),
        }))
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        // Single inserts and removes cannot leave the map half-updated.
        self.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Changes were queued (and committed) for `mappings`.
    pub fn queued(&self, mappings: impl IntoIterator<Item = String>) {
        {
            let mut waiting = self.waiting();
            for mapping in mappings {
                *waiting.entry(mapping).or_default() += 1;
            }
        }
        self.wake.notify_one();
    }

    /// Starts jobs as mappings become free, until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut finished = self.syncs.subscribe();
        loop {
            self.start_free().await;
            // Until news: changes queued, a job finished, or time to look again.
            loop {
                tokio::select! {
                    () = self.wake.notified() => break,
                    news = finished.recv() => match news {
                        Ok(job) if !job.status.is_finished() => {}
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    () = tokio::time::sleep(RECHECK) => break,
                    () = stop.cancelled() => return,
                }
            }
        }
    }

    /// Starts a job for every waiting mapping that has none.
    async fn start_free(&self) {
        let snapshot: Vec<(String, u64)> = self.waiting().iter().map(|(id, n)| (id.clone(), *n)).collect();
        for (mapping, generation) in snapshot {
            match self.syncs.start_changes(&mapping).await {
                Ok(ChangesStart::Started(job)) => {
                    tracing::debug!(mapping_id = %mapping, job_id = %job.id, changes = job.total_estimate, "record-level sync started");
                }
                Ok(ChangesStart::Busy) => {}
                Ok(ChangesStart::Empty) | Err(SyncError::Mapping(MappingError::NotFound(_))) => {
                    let mut waiting = self.waiting();
                    if waiting.get(&mapping) == Some(&generation) {
                        waiting.remove(&mapping);
                    }
                }
                Err(SyncError::ShuttingDown) => return,
                Err(error) => {
                    tracing::warn!(mapping_id = %mapping, %error, "could not start a record-level sync; trying again shortly");
                }
            }
        }
    }
}
