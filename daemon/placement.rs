//! What a cluster node runs of an organization whose lease it holds: its connection, mapping
//! and webhook endpoint actors, its interrupted or queued sync jobs, and its inbound changes.

use std::sync::Arc;

use futures::FutureExt as _;
use futures::future::BoxFuture;

use crate::actors::{Directory, SupervisedKind};
use crate::cluster::keeper::Placement;
use crate::store::{OrgKind, PENDING_CHANGES, Reader, Store, StoreError};
use crate::syncs::SyncRuntime;
use crate::syncs::change_jobs::ChangeJobs;

/// The kinds of actor an organization has, in the order they start (connections first: the
/// others ask them for tokens) and the reverse order they stop.
const KINDS: [(SupervisedKind, OrgKind); 3] = [
    (SupervisedKind::Connections, OrgKind::Connection),
    (SupervisedKind::WebhookEndpoints, OrgKind::WebhookEndpoint),
    (SupervisedKind::Mappings, OrgKind::Mapping),
];

/// [`Placement`] on this node's actor tree and sync runtime.
pub struct OrgPlacement {
    pub store: Store,
    pub directory: Directory,
    pub syncs: Arc<SyncRuntime>,
    pub change_jobs: Arc<ChangeJobs>,
}

impl OrgPlacement {
    /// Ids of organization `org_id`'s entities of `kind`.
    fn ids(&self, kind: OrgKind, org_id: &str) -> Vec<String> {
        match self.store.read(|rx| rx.org_ids(kind, org_id, None, usize::MAX)) {
            Ok(ids) => ids,
            Err(error) => {
                tracing::warn!(org_id, %error, "cannot list an organization's entities");
                Vec::new()
            }
        }
    }

    /// Starts every actor of `org_id` that is not running.
    fn start_all(&self, org_id: &str) {
        for (kind, org_kind) in KINDS {
            for id in self.ids(org_kind, org_id) {
                self.directory.start_child(kind, org_id, &id);
            }
        }
    }

    /// The mappings of the held organizations with inbound changes waiting.
    fn mappings_with_changes(&self) -> Result<Vec<String>, StoreError> {
        let held = self.directory.ownership().held();
        self.store.read(|rx| {
            let mut waiting = Vec::new();
            for org_id in &held {
                for mapping in rx.org_ids(OrgKind::Mapping, org_id, None, usize::MAX)? {
                    if !rx
                        .keys_with_prefix(PENDING_CHANGES, &format!("{mapping}/"), 1)?
                        .is_empty()
                    {
                        waiting.push(mapping);
                    }
                }
            }
            Ok(waiting)
        })
    }

    async fn adopt_jobs(&self) {
        if let Err(error) = self.syncs.resume_interrupted().await {
            tracing::warn!(%error, "cannot look for sync jobs to run");
        }
    }
}

impl Placement for Arc<OrgPlacement> {
    fn gained(&self, org_id: String) -> BoxFuture<'static, ()> {
        let this = self.clone();
        async move {
            this.start_all(&org_id);
            this.adopt_jobs().await;
        }
        .boxed()
    }

    fn lost(&self, org_id: String) -> BoxFuture<'static, ()> {
        let this = self.clone();
        async move {
            this.syncs.interrupt_org(&org_id).await;
            for (kind, org_kind) in KINDS.iter().rev() {
                for id in this.ids(*org_kind, &org_id) {
                    this.directory.stop_child(*kind, &id).await;
                }
            }
        }
        .boxed()
    }

    fn tick(&self) -> BoxFuture<'static, ()> {
        let this = self.clone();
        async move {
            for org_id in this.directory.ownership().held() {
                this.start_all(&org_id);
            }
            this.adopt_jobs().await;
            match this.mappings_with_changes() {
                Ok(mappings) if !mappings.is_empty() => this.change_jobs.queued(mappings),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "cannot look for inbound changes to sync"),
            }
        }
        .boxed()
    }
}
