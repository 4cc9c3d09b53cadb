//! A supervisor that keeps one child actor running per entity id and restarts crashed
//! children with exponential backoff.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr, SupervisionEvent};

use super::directory::Directory;
use super::root::SupervisedKind;
use crate::store::{Reader, Record, Store};

/// First restart delay; doubles per consecutive crash up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A child that ran this long before crashing starts its backoff over.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// Live-actor gauge shared with status and metrics.
pub type ActorCounter = Arc<AtomicU64>;

/// How a supervisor lists its entities and starts the actor for one of them.
pub trait ChildFactory: Send + Sync + 'static {
    /// Entity kind, used in actor names (`connection:conn_…`) and logs.
    fn kind(&self) -> &'static str;
    /// Ids of the entities that should have an actor at start.
    fn initial_ids(&self) -> Vec<String>;
    /// Spawns the actor for `id`, linked to `supervisor`.
    fn spawn(&self, id: String, supervisor: ActorCell) -> BoxFuture<'static, Result<ActorCell, SpawnErr>>;
}

/// The ids of every stored `R`, for [`ChildFactory::initial_ids`]; a store error is logged and
/// leaves the supervisor empty rather than failing the daemon.
pub fn stored_ids<R: Record>(store: &Store, kind: &str) -> Vec<String> {
    // Keys only: decoding every record to learn its id would cost far more at start.
    match store.read(|rx| rx.keys_with_prefix(R::TABLE, "", usize::MAX)) {
        Ok(ids) => ids,
        Err(error) => {
            tracing::error!(kind, %error, "cannot list stored entities");
            Vec::new()
        }
    }
}

/// Spawns `actor` for entity `id`, linked to `supervisor`, for [`ChildFactory::spawn`].
pub fn spawn_child<A>(actor: A, id: String, supervisor: ActorCell) -> BoxFuture<'static, Result<ActorCell, SpawnErr>>
where
    A: Actor<Arguments = String>,
{
    Box::pin(async move {
        let (actor, _) = Actor::spawn_linked(None, actor, id, supervisor).await?;
        Ok(actor.get_cell())
    })
}

/// Factory for an entity kind whose actors are not built yet: it supervises nothing.
pub struct NoChildren(pub &'static str);

impl ChildFactory for NoChildren {
    fn kind(&self) -> &'static str {
        self.0
    }

    fn initial_ids(&self) -> Vec<String> {
        Vec::new()
    }

    fn spawn(&self, id: String, _supervisor: ActorCell) -> BoxFuture<'static, Result<ActorCell, SpawnErr>> {
        let kind = self.0;
        Box::pin(async move { Err(SpawnErr::StartupFailed(format!("no actor type for {kind} {id}").into())) })
    }
}

/// Messages to an [`EntitySupervisor`].
pub enum SupervisorMsg {
    /// Ensure an actor runs for this entity.
    Start(String),
    /// Stop the entity's actor (it was deleted) and reply when it has stopped.
    Stop(String, RpcReplyPort<()>),
    /// Internal: the backoff after a crash has passed.
    Restart(String),
}

/// Supervises one actor per entity of one kind.
pub struct EntitySupervisor;

/// Arguments of [`EntitySupervisor`].
pub struct SupervisorArgs {
    pub kind: SupervisedKind,
    pub factory: Arc<dyn ChildFactory>,
    pub live: ActorCounter,
    /// Counts the children restarted after a crash.
    pub restarts: ActorCounter,
    /// Where the children are registered while they run.
    pub directory: Directory,
}

pub struct SupervisorState {
    kind: SupervisedKind,
    factory: Arc<dyn ChildFactory>,
    live: ActorCounter,
    restarts: ActorCounter,
    directory: Directory,
    children: HashMap<String, ChildEntry>,
    by_actor: HashMap<ActorId, String>,
}

struct ChildEntry {
    cell: Option<ActorCell>,
    crashes: u32,
    started: Instant,
}

impl SupervisorState {
    async fn spawn_child(&mut self, myself: &ActorRef<SupervisorMsg>, id: &str) {
        let entry = self.children.entry(id.to_owned()).or_insert(ChildEntry {
            cell: None,
            crashes: 0,
            started: Instant::now(),
        });
        if entry.cell.is_some() {
            return;
        }
        match self.factory.spawn(id.to_owned(), myself.get_cell()).await {
            Ok(cell) => {
                self.by_actor.insert(cell.get_id(), id.to_owned());
                self.directory.insert(self.kind, id, cell.clone());
                if let Some(entry) = self.children.get_mut(id) {
                    entry.cell = Some(cell);
                    entry.started = Instant::now();
                }
                self.live.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                tracing::error!(kind = self.factory.kind(), id, %error, "actor failed to start; retrying");
                self.schedule_restart(myself, id);
            }
        }
    }

    fn schedule_restart(&mut self, myself: &ActorRef<SupervisorMsg>, id: &str) {
        let Some(entry) = self.children.get_mut(id) else { return };
        if entry.started.elapsed() >= STABLE_AFTER {
            entry.crashes = 0;
        }
        let delay = backoff(entry.crashes);
        entry.crashes += 1;
        let id = id.to_owned();
        myself.send_after(delay, move || SupervisorMsg::Restart(id));
    }

    /// Forgets the exited actor `cell`; returns its entity id if it was one of ours.
    fn forget(&mut self, cell: &ActorCell) -> Option<String> {
        let id = self.by_actor.remove(&cell.get_id())?;
        self.directory.remove(self.kind, &id, cell.get_id());
        if let Some(entry) = self.children.get_mut(&id) {
            entry.cell = None;
        }
        self.live.fetch_sub(1, Ordering::Relaxed);
        Some(id)
    }
}

/// Restart delay after `crashes` consecutive crashes.
fn backoff(crashes: u32) -> Duration {
    BASE_BACKOFF.saturating_mul(1u32 << crashes.min(16)).min(MAX_BACKOFF)
}

impl Actor for EntitySupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let mut state = SupervisorState {
            kind: args.kind,
            factory: args.factory,
            live: args.live,
            restarts: args.restarts,
            directory: args.directory,
            children: HashMap::new(),
            by_actor: HashMap::new(),
        };
        // In a cluster, actors start as their organization's lease is claimed instead.
        if !state.directory.ownership().is_clustered() {
            for id in state.factory.initial_ids() {
                state.spawn_child(&myself, &id).await;
            }
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        message: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::Start(id) => state.spawn_child(&myself, &id).await,
            SupervisorMsg::Restart(id) => {
                if state.children.contains_key(&id) {
                    state.spawn_child(&myself, &id).await;
                }
            }
            SupervisorMsg::Stop(id, reply) => {
                if let Some(ChildEntry { cell: Some(cell), .. }) = state.children.remove(&id) {
                    // The exit event arrives later; forget the child now so it is not restarted.
                    state.by_actor.remove(&cell.get_id());
                    state.directory.remove(state.kind, &id, cell.get_id());
                    state.live.fetch_sub(1, Ordering::Relaxed);
                    if let Err(error) = cell
                        .stop_and_wait(Some("entity deleted".into()), Some(Duration::from_secs(5)))
                        .await
                    {
                        tracing::warn!(kind = state.factory.kind(), id, %error, "actor did not stop in time");
                    }
                }
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, error) => {
                if let Some(id) = state.forget(&cell) {
                    let crashes = state.children.get(&id).map_or(0, |entry| entry.crashes);
                    tracing::error!(kind = state.factory.kind(), id, crashes = crashes + 1, %error, "actor crashed; restarting with backoff");
                    state.restarts.fetch_add(1, Ordering::Relaxed);
                    state.schedule_restart(&myself, &id);
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if let Some(id) = state.forget(&cell) {
                    tracing::info!(
                        kind = state.factory.kind(),
                        id,
                        reason = reason.as_deref().unwrap_or(""),
                        "actor stopped"
                    );
                    state.children.remove(&id);
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        state.live.fetch_sub(state.by_actor.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// A child that panics on `true` and counts its starts.
    struct Fragile {
        starts: Arc<AtomicU32>,
    }

    impl Actor for Fragile {
        type Msg = bool;
        type State = ();
        type Arguments = ();

        async fn pre_start(&self, _: ActorRef<bool>, _: ()) -> Result<(), ActorProcessingErr> {
            self.starts.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }

        async fn handle(&self, _: ActorRef<bool>, crash: bool, _: &mut ()) -> Result<(), ActorProcessingErr> {
            if crash {
                panic!("deliberate crash");
            }
            Ok(())
        }
    }

    struct FragileFactory {
        starts: Arc<AtomicU32>,
    }

    impl ChildFactory for FragileFactory {
        fn kind(&self) -> &'static str {
            "fragile"
        }
        fn initial_ids(&self) -> Vec<String> {
            vec!["a".into()]
        }
        fn spawn(&self, id: String, supervisor: ActorCell) -> BoxFuture<'static, Result<ActorCell, SpawnErr>> {
            let starts = self.starts.clone();
            Box::pin(async move {
                let (actor, _) = Actor::spawn_linked(None, Fragile { starts }, (), supervisor).await?;
                drop(id);
                Ok(actor.get_cell())
            })
        }
    }

    #[tokio::test]
    async fn crashed_child_is_restarted_and_deleted_child_is_not() {
        let starts = Arc::new(AtomicU32::new(0));
        let live = ActorCounter::default();
        let restarts = ActorCounter::default();
        let args = SupervisorArgs {
            kind: SupervisedKind::Mappings,
            factory: Arc::new(FragileFactory { starts: starts.clone() }),
            live: live.clone(),
            restarts: restarts.clone(),
            directory: Directory::default(),
        };
        let (supervisor, handle) = Actor::spawn(None, EntitySupervisor, args).await.unwrap();
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        assert_eq!(live.load(Ordering::SeqCst), 1);

        let child = supervisor.get_children().into_iter().next().unwrap();
        child.send_message(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while starts.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(starts.load(Ordering::SeqCst), 2, "crashed child restarted");
        assert_eq!(live.load(Ordering::SeqCst), 1);
        assert_eq!(restarts.load(Ordering::SeqCst), 1, "the restart is counted");

        ractor::call!(supervisor, |reply| SupervisorMsg::Stop("a".into(), reply)).unwrap();
        assert_eq!(live.load(Ordering::SeqCst), 0);
        tokio::time::sleep(BASE_BACKOFF * 2).await;
        assert_eq!(starts.load(Ordering::SeqCst), 2, "stopped child stays stopped");

        supervisor.stop(None);
        handle.await.unwrap();
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(0), BASE_BACKOFF);
        assert_eq!(backoff(1), BASE_BACKOFF * 2);
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
