//! The root of the supervision tree and its handle, [`ActorTree`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SpawnErr, SupervisionEvent};
use tokio::task::JoinHandle;

use super::supervisor::{ActorCounter, ChildFactory, EntitySupervisor, SupervisorArgs, SupervisorMsg};

/// The entity kinds with a supervisor of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupervisedKind {
    Connections,
    Mappings,
    WebhookEndpoints,
}

impl SupervisedKind {
    const ALL: [SupervisedKind; 3] = [
        SupervisedKind::Connections,
        SupervisedKind::Mappings,
        SupervisedKind::WebhookEndpoints,
    ];

    fn supervisor_name(self) -> String {
        match self {
            SupervisedKind::Connections => "supervisor:connections",
            SupervisedKind::Mappings => "supervisor:mappings",
            SupervisedKind::WebhookEndpoints => "supervisor:webhook_endpoints",
        }
        .to_owned()
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

/// Live-actor gauges per supervisor.
#[derive(Clone, Default)]
pub struct LiveCounts {
    pub connections: ActorCounter,
    pub mappings: ActorCounter,
    pub webhook_endpoints: ActorCounter,
}

impl LiveCounts {
    fn get(&self, kind: SupervisedKind) -> ActorCounter {
        match kind {
            SupervisedKind::Connections => self.connections.clone(),
            SupervisedKind::Mappings => self.mappings.clone(),
            SupervisedKind::WebhookEndpoints => self.webhook_endpoints.clone(),
        }
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
}

enum RootMsg {
    Respawn(SupervisedKind),
}

impl RootState {
    async fn spawn(&self, myself: &ActorRef<RootMsg>, kind: SupervisedKind) -> Result<(), SpawnErr> {
        let args = SupervisorArgs {
            factory: self.factories.get(kind),
            live: self.live.get(kind),
        };
        Actor::spawn_linked(Some(kind.supervisor_name()), EntitySupervisor, args, myself.get_cell()).await?;
        Ok(())
    }
}

impl Actor for RootSupervisor {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = (Factories, LiveCounts);

    async fn pre_start(
        &self,
        myself: ActorRef<RootMsg>,
        (factories, live): Self::Arguments,
    ) -> Result<RootState, ActorProcessingErr> {
        let state = RootState { factories, live };
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
        _state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, error) = event {
            let name = cell.get_name().unwrap_or_default();
            tracing::error!(supervisor = name, %error, "supervisor crashed; restarting");
            if let Some(kind) = SupervisedKind::ALL.into_iter().find(|k| k.supervisor_name() == name) {
                myself.send_after(Duration::from_secs(1), move || RootMsg::Respawn(kind));
            }
        }
        Ok(())
    }
}

/// The running supervisor of `kind`.
pub fn supervisor(kind: SupervisedKind) -> Option<ActorRef<SupervisorMsg>> {
    ractor::registry::where_is(kind.supervisor_name()).map(ActorRef::from)
}

/// Asks the supervisor of `kind` to run an actor for entity `id`.
pub fn start_child(kind: SupervisedKind, id: &str) {
    match supervisor(kind) {
        Some(supervisor) => {
            let _ = supervisor.send_message(SupervisorMsg::Start(id.to_owned()));
        }
        None => tracing::error!(?kind, id, "no supervisor to start the actor"),
    }
}

/// Stops the actor of entity `id` and waits until it has stopped.
pub async fn stop_child(kind: SupervisedKind, id: &str) {
    if let Some(supervisor) = supervisor(kind) {
        let _ = ractor::call!(supervisor, |reply| SupervisorMsg::Stop(id.to_owned(), reply));
    }
}

/// Handle to the running tree.
pub struct ActorTree {
    root: ActorRef<RootMsg>,
    join: JoinHandle<()>,
    pub live: LiveCounts,
}

/// Starts the tree: every supervisor spawns one actor per stored entity before this returns.
pub async fn start_tree(factories: Factories) -> Result<ActorTree, SpawnErr> {
    let live = LiveCounts::default();
    let (root, join) = Actor::spawn(
        Some("supervisor:root".into()),
        RootSupervisor,
        (factories, live.clone()),
    )
    .await?;
    Ok(ActorTree { root, join, live })
}

impl ActorTree {
    /// Stops every actor: each finishes the messages it already has, then the tree exits.
    pub async fn shutdown(self, timeout: Duration) {
        for kind in SupervisedKind::ALL {
            if let Some(supervisor) = supervisor(kind) {
                supervisor.get_cell().drain_children_and_wait(Some(timeout)).await;
            }
        }
        self.root
            .get_cell()
            .stop_children_and_wait(Some("shutdown".into()), Some(timeout))
            .await;
        self.root.stop(Some("shutdown".into()));
        let _ = self.join.await;
    }
}
