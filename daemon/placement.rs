//! What a cluster node runs of an organization whose lease it holds: its connection, mapping
//! and webhook endpoint actors, its interrupted or queued sync jobs, its inbound changes, and
//! the changes other nodes make to its entities.

use std::sync::Arc;

use futures::FutureExt as _;
use futures::future::BoxFuture;

use crate::actors::{Directory, SupervisedKind};
use crate::cluster::keeper::Placement;
use crate::connections::ConnectionRecord;
use crate::mappings::MappingRecord;
use crate::mappings::actor::MappingMsg;
use crate::store::postgres::Notice;
use crate::store::{OrgKind, PENDING_CHANGES, Reader, Store, StoreError};
use crate::syncs::SyncRuntime;
use crate::syncs::change_jobs::ChangeJobs;
use crate::webhooks::actor::EndpointMsg;
use crate::webhooks::records::EndpointRecord;

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
                    this.directory.stop_here(*kind, &id).await;
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

/// The name of `kind` in entity notices.
fn kind_name(kind: SupervisedKind) -> &'static str {
    match kind {
        SupervisedKind::Connections => "connection",
        SupervisedKind::Mappings => "mapping",
        SupervisedKind::WebhookEndpoints => "endpoint",
    }
}

/// Passes entity changes between the nodes: a change made through this node to an entity
/// whose actor runs elsewhere, or its deletion, is announced (`<kind>:<id>`,
/// `<kind>-stop:<id>`), and an announced one reaches the actor if it runs here: reloaded, or
/// stopped (with a mapping's job) — restarted by the next lease round if the entity is still
/// there after all.
pub fn relay_entity_changes(store: &Store, directory: &Directory, syncs: &Arc<SyncRuntime>) {
    let announcing = store.downgrade();
    directory.set_announcer(move |kind, id, stop| {
        if let Some(store) = announcing.upgrade() {
            let action = if stop { "-stop" } else { "" };
            store.announce(Notice::Entity, &[format!("{}{action}:{id}", kind_name(kind))]);
        }
    });
    let (reading, directory, tasks) = (store.downgrade(), directory.clone(), tokio::runtime::Handle::current());
    let syncs = Arc::downgrade(syncs);
    store.set_entity_news_hook(move |entity| {
        let Some(store) = reading.upgrade() else {
            return;
        };
        let Some((name, id)) = entity.split_once(':') else {
            return;
        };
        let (name, stop) = match name.strip_suffix("-stop") {
            Some(name) => (name, true),
            None => (name, false),
        };
        let Some(kind) = SupervisedKind::ALL.into_iter().find(|kind| kind_name(*kind) == name) else {
            return;
        };
        let id = id.to_owned();
        if stop {
            let (directory, syncs) = (directory.clone(), syncs.clone());
            tasks.spawn(async move {
                if let (SupervisedKind::Mappings, Some(syncs)) = (kind, syncs.upgrade()) {
                    syncs.stop_mapping(&id).await;
                }
                directory.stop_here(kind, &id).await;
            });
            return;
        }
        let exists = store.read(|rx| {
            Ok::<_, StoreError>(match kind {
                SupervisedKind::Connections => rx.get::<ConnectionRecord>(&id)?.is_some(),
                SupervisedKind::Mappings => rx.get::<MappingRecord>(&id)?.is_some(),
                SupervisedKind::WebhookEndpoints => rx.get::<EndpointRecord>(&id)?.is_some(),
            })
        });
        match (exists, kind) {
            (Ok(true), SupervisedKind::Mappings) => directory.send(kind, &id, MappingMsg::Reload),
            (Ok(true), SupervisedKind::WebhookEndpoints) => directory.send(kind, &id, EndpointMsg::Reload),
            (Ok(true), SupervisedKind::Connections) | (Ok(false), _) => {}
            (Err(error), _) => tracing::warn!(%error, entity, "cannot read an entity another node changed"),
        }
    });
}
