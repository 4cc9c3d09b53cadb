//! Where one daemon's actors are: its entity supervisors and every running entity actor, by
//! kind and id. ractor's registry is process-wide (a name can exist once per process), so
//! each daemon keeps its own directory and two daemons can share a process.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use ractor::{ActorCell, ActorId, ActorRef, Message};

use super::root::SupervisedKind;
use super::supervisor::SupervisorMsg;
use crate::cluster::Ownership;

/// How long a deleted entity's actor gets to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Tells the node running an entity's actor that the entity changed (`false`) or that the
/// actor is to stop (`true`) (cluster mode).
type Announcer = Box<dyn Fn(SupervisedKind, &str, bool) + Send + Sync>;

/// Cheap to clone; every clone sees the same actors.
#[derive(Clone, Default)]
pub struct Directory {
    inner: Arc<RwLock<Entries>>,
    /// Which organizations' actors run here.
    ownership: Ownership,
    announcer: Arc<OnceLock<Announcer>>,
}

#[derive(Default)]
struct Entries {
    supervisors: HashMap<SupervisedKind, ActorRef<SupervisorMsg>>,
    actors: HashMap<(SupervisedKind, String), ActorCell>,
}

impl Directory {
    /// A directory of a node that runs the actors of the organizations `ownership` holds.
    pub fn new(ownership: Ownership) -> Directory {
        Directory {
            inner: Arc::default(),
            ownership,
            announcer: Arc::default(),
        }
    }

    /// Installs how entity changes reach the actors other nodes run.
    pub fn set_announcer(&self, announce: impl Fn(SupervisedKind, &str, bool) + Send + Sync + 'static) {
        let _ = self.announcer.set(Box::new(announce));
    }

    /// Entity `id` changed: sends `reload` to its actor here, or tells the node running it.
    pub fn changed<M: Message>(&self, kind: SupervisedKind, id: &str, reload: M) {
        match self.actor::<M>(kind, id) {
            Some(actor) => {
                let _ = actor.send_message(reload);
            }
            None => self.announce(kind, id, false),
        }
    }

    fn announce(&self, kind: SupervisedKind, id: &str, stop: bool) {
        if let Some(announce) = self.announcer.get() {
            announce(kind, id, stop);
        }
    }

    /// Which organizations' actors run here.
    pub fn ownership(&self) -> &Ownership {
        &self.ownership
    }

    fn read(&self) -> RwLockReadGuard<'_, Entries> {
        // Entries are single inserts and removes: a panic elsewhere cannot leave them torn.
        self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Entries> {
        self.inner.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The running actor of entity `id`, typed by the message it takes.
    pub fn actor<M: Message>(&self, kind: SupervisedKind, id: &str) -> Option<ActorRef<M>> {
        self.read()
            .actors
            .get(&(kind, id.to_owned()))
            .cloned()
            .map(ActorRef::from)
    }

    /// Whether entity `id` has a running actor here.
    fn runs_here(&self, kind: SupervisedKind, id: &str) -> bool {
        self.read().actors.contains_key(&(kind, id.to_owned()))
    }

    /// How many of `ids` have a running actor of `kind`.
    pub fn running(&self, kind: SupervisedKind, ids: &[String]) -> u64 {
        let entries = self.read();
        ids.iter()
            .filter(|id| entries.actors.contains_key(&(kind, (*id).clone())))
            .count() as u64
    }

    /// Sends `message` to entity `id`'s actor, if it runs.
    pub fn send<M: Message>(&self, kind: SupervisedKind, id: &str, message: M) {
        if let Some(actor) = self.actor::<M>(kind, id) {
            let _ = actor.send_message(message);
        }
    }

    /// Asks the supervisor of `kind` to run an actor for entity `id` of organization
    /// `org_id`, if this node runs that organization's actors.
    pub fn start_child(&self, kind: SupervisedKind, org_id: &str, id: &str) {
        if !self.ownership.owns(org_id) {
            return;
        }
        match self.read().supervisors.get(&kind) {
            Some(supervisor) => {
                let _ = supervisor.send_message(SupervisorMsg::Start(id.to_owned()));
            }
            None => tracing::error!(?kind, id, "no supervisor to start the actor"),
        }
    }

    /// Stops the actor of entity `id` and waits until it has stopped (on another node, it is
    /// told to stop it).
    pub async fn stop_child(&self, kind: SupervisedKind, id: &str) {
        if !self.runs_here(kind, id) {
            self.announce(kind, id, true);
        }
        self.stop_here(kind, id).await;
    }

    /// Stops the actor of entity `id` if it runs on this node, and waits until it has.
    pub async fn stop_here(&self, kind: SupervisedKind, id: &str) {
        let supervisor = self.read().supervisors.get(&kind).cloned();
        if let Some(supervisor) = supervisor {
            let stopped = ractor::call_t!(
                supervisor,
                |reply| SupervisorMsg::Stop(id.to_owned(), reply),
                u64::try_from(STOP_TIMEOUT.as_millis()).unwrap_or(u64::MAX)
            );
            if let Err(error) = stopped {
                tracing::warn!(?kind, id, %error, "the actor's supervisor did not confirm the stop");
            }
        }
    }

    /// The supervisors, for shutdown.
    pub(super) fn supervisors(&self) -> Vec<ActorRef<SupervisorMsg>> {
        self.read().supervisors.values().cloned().collect()
    }

    pub(super) fn set_supervisor(&self, kind: SupervisedKind, supervisor: ActorRef<SupervisorMsg>) {
        self.write().supervisors.insert(kind, supervisor);
    }

    pub(super) fn insert(&self, kind: SupervisedKind, id: &str, cell: ActorCell) {
        self.write().actors.insert((kind, id.to_owned()), cell);
    }

    /// Forgets entity `id`'s actor if it is still `actor` (a restarted one stays).
    pub(super) fn remove(&self, kind: SupervisedKind, id: &str, actor: ActorId) {
        let mut entries = self.write();
        let key = (kind, id.to_owned());
        if entries.actors.get(&key).is_some_and(|cell| cell.get_id() == actor) {
            entries.actors.remove(&key);
        }
    }
}
