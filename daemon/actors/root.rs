//! The root of the supervision tree and its handle, [`ActorTree`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SpawnErr, SupervisionEvent};
use tokio::task::JoinHandle;

use super::directory::Directory;
use super::supervisor::{ActorCounter, ChildFactory, EntitySupervisor, SupervisorArgs};

/// The entity kinds with a supervisor of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SupervisedKind {
    Connections,
    Mappings,
    WebhookEndpoints,
}

impl SupervisedKind {
    pub const ALL: [SupervisedKind; 3] = [
        SupervisedKind::Connections,
        SupervisedKind::Mappings,
        SupervisedKind::WebhookEndpoints,
    ];

    fn supervisor_name(self) -> &'static str {
        match self {
            SupervisedKind::Connections => "connections",
            SupervisedKind::Mappings => "mappings",
            SupervisedKind::WebhookEndpoints => "webhook_endpoints",
        }
    }
}

/// The factories of the three entity supervisors.
pub struct Factories {
    pub connections: Arc<dyn ChildFactory>,
    pub mappings: Arc<dyn ChildFactory>,
    pub webhook_endpoints: Arc<dyn ChildFactory>,
}

impl Factories {
    fn get(&self, kind: SupervisedKind) -> Arc<dyn ChildFactory> {
        match kind {
            SupervisedKind::Connections => self.connections.clone(),
            SupervisedKind::Mappings => self.mappings.clone(),
            SupervisedKind::WebhookEndpoints => self.webhook_endpoints.clone(),
        }
    }
}

/// Live-actor gauges and restart counts per supervisor.
#[derive(Clone, Default)]
pub struct LiveCounts {
    pub connections: ActorCounter,
    pub mappings: ActorCounter,
    pub webhook_endpoints: ActorCounter,
    /// Actors restarted after a crash, per supervisor (in [`SupervisedKind::ALL`] order).
    restarts: [ActorCounter; 3],
}

impl LiveCounts {
    fn get(&self, kind: SupervisedKind) -> ActorCounter {
        match kind {
            SupervisedKind::Connections => self.connections.clone(),
            SupervisedKind::Mappings => self.mappings.clone(),
            SupervisedKind::WebhookEndpoints => self.webhook_endpoints.clone(),
        }
    }

    fn restarts(&self, kind: SupervisedKind) -> ActorCounter {
        let index = SupervisedKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.restarts[index].clone()
    }

    /// (supervisor name, actors alive, actors restarted since start) of each supervisor.
    pub fn snapshot_all(&self) -> Vec<(&'static str, u64, u64)> {
        SupervisedKind::ALL
            .iter()
            .map(|kind| {
                (
                    kind.supervisor_name(),
                    self.get(*kind).load(Ordering::Relaxed),
                    self.restarts(*kind).load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// (connections, mappings, webhook endpoints) alive right now.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.connections.load(Ordering::Relaxed),
            self.mappings.load(Ordering::Relaxed),
            self.webhook_endpoints.load(Ordering::Relaxed),
        )
    }
}

/// Root supervisor: restarts an entity supervisor that fails.
struct RootSupervisor;

struct RootState {
    factories: Factories,
    live: LiveCounts,
    directory: Directory,
    /// Which supervisor each child actor is.
    kinds: Vec<(ractor::ActorId, SupervisedKind)>,
}

enum RootMsg {
    Respawn(SupervisedKind),
}

impl RootState {
    async fn spawn(&mut self, myself: &ActorRef<RootMsg>, kind: SupervisedKind) -> Result<(), SpawnErr> {
        let args = SupervisorArgs {
            kind,
            factory: self.factories.get(kind),
            live: self.live.get(kind),
            restarts: self.live.restarts(kind),
            directory: self.directory.clone(),
        };
        let (supervisor, _) = Actor::spawn_linked(None, EntitySupervisor, args, myself.get_cell()).await?;
        self.kinds.retain(|(_, k)| *k != kind);
        self.kinds.push((supervisor.get_id(), kind));
        self.directory.set_supervisor(kind, supervisor);
        Ok(())
    }
}

impl Actor for RootSupervisor {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = (Factories, LiveCounts, Directory);

    async fn pre_start(
        &self,
        myself: ActorRef<RootMsg>,
        (factories, live, directory): Self::Arguments,
    ) -> Result<RootState, ActorProcessingErr> {
        let mut state = RootState {
            factories,
            live,
            directory,
            kinds: Vec::new(),
        };
        for kind in SupervisedKind::ALL {
            state.spawn(&myself, kind).await?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<RootMsg>,
        message: RootMsg,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let RootMsg::Respawn(kind) = message;
        if let Err(error) = state.spawn(&myself, kind).await {
            tracing::error!(supervisor = kind.supervisor_name(), %error, "supervisor failed to restart; retrying");
            myself.send_after(Duration::from_secs(1), move || RootMsg::Respawn(kind));
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RootMsg>,
        event: SupervisionEvent,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, error) = event
            && let Some((_, kind)) = state.kinds.iter().find(|(id, _)| *id == cell.get_id()).copied()
        {
            tracing::error!(supervisor = kind.supervisor_name(), %error, "supervisor crashed; restarting");
            myself.send_after(Duration::from_secs(1), move || RootMsg::Respawn(kind));
        }
        Ok(())
    }
}

/// Handle to the running tree.
pub struct ActorTree {
    root: ActorRef<RootMsg>,
    join: JoinHandle<()>,
    pub live: LiveCounts,
    directory: Directory,
}

/// Starts the tree: every supervisor spawns one actor per stored entity before this returns,
/// and registers itself and its actors in `directory`.
pub async fn start_tree(factories: Factories, directory: Directory) -> Result<ActorTree, SpawnErr> {
    let live = LiveCounts::default();
    let (root, join) = Actor::spawn(None, RootSupervisor, (factories, live.clone(), directory.clone())).await?;
    Ok(ActorTree {
        root,
        join,
        live,
        directory,
    })
}

impl ActorTree {
    /// Stops every actor: each finishes the messages it already has, then the tree exits.
    pub async fn shutdown(self, timeout: Duration) {
        for supervisor in self.directory.supervisors() {
            supervisor.get_cell().drain_children_and_wait(Some(timeout)).await;
        }
        self.root
            .get_cell()
            .stop_children_and_wait(Some("shutdown".into()), Some(timeout))
            .await;
        self.root.stop(Some("shutdown".into()));
        let _ = self.join.await;
    }
}
