//! The lease keeper: per node, a loop that heartbeats, renews the leases it holds well inside
//! their term, claims unowned or expired ones up to a fair share and hands back what it holds
//! above that share; and a worker that starts and stops the organizations' work as leases
//! come and go. The two are apart so that stopping slow actors never delays a renewal.
//!
//! Timing: a round every third of the lease term, each given at most half the term. A lease that
//! could not be renewed is let go once half its term has passed since the last successful
//! renewal, so the work stops while the lease is still ours; another node can claim it only
//! after the whole term. A lease handed back is renewed until its work has stopped, then
//! released.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::panic::AssertUnwindSafe;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::leases::{self, Held, NodeInfo};
use super::ownership::Ownership;
use crate::store::{ORGANIZATIONS, Reader, Store, StoreError};

/// What runs an organization's work on this node.
pub trait Placement: Send + Sync + 'static {
    /// The lease of `org_id` was claimed: start its actors and resume its jobs.
    fn gained(&self, org_id: String) -> BoxFuture<'static, ()>;
    /// The lease of `org_id` is being given up: stop its actors and interrupt its jobs (they
    /// resume on the next owner), returning once they have stopped.
    fn lost(&self, org_id: String) -> BoxFuture<'static, ()>;
    /// A round passed: make sure everything of the held organizations runs (entities created
    /// through other nodes, jobs and changes other nodes queued).
    fn tick(&self) -> BoxFuture<'static, ()>;
}

/// A running keeper.
pub struct Keeper {
    /// No more claims or ticks (the node is stopping); renewals go on.
    draining: CancellationToken,
    stop: CancellationToken,
    rounds: JoinHandle<()>,
    worker: JoinHandle<()>,
}

impl Keeper {
    /// Starts keeping `node`'s leases on `store`'s database with terms of `ttl`.
    pub fn start(
        store: Store,
        node: NodeInfo,
        ttl: Duration,
        ownership: Ownership,
        placement: Arc<dyn Placement>,
    ) -> Keeper {
        let (draining, stop) = (CancellationToken::new(), CancellationToken::new());
        let (work, queue) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            store,
            node,
            ownership,
            releasing: Mutex::default(),
            tick_queued: AtomicBool::new(false),
        });
        let worker = tokio::spawn(shared.clone().work(placement, queue));
        let rounds = tokio::spawn(
            Rounds {
                shared,
                ttl,
                work,
                draining: draining.clone(),
            }
            .run(stop.clone()),
        );
        Keeper {
            draining,
            stop,
            rounds,
            worker,
        }
    }

    /// Stops claiming (the node is stopping); the leases it holds are still renewed while
    /// its actors and jobs stop.
    pub fn drain(&self) {
        self.draining.cancel();
    }

    /// Stops the rounds and the worker; [`leave`] then hands the leases back.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.rounds.await;
        // The rounds held the only sender: the worker ends after what is queued.
        let _ = self.worker.await;
    }
}

/// Marks `node_id` stopped and releases its leases, once its actors have stopped.
pub async fn leave(store: &Store, node_id: &str) {
    let (store, node_id) = (store.clone(), node_id.to_owned());
    let left = tokio::task::spawn_blocking(move || {
        let db = store.postgres().ok_or(StoreError::Closed)?;
        leases::leave(&mut *db.connection()?, &node_id)
    })
    .await;
    match left {
        Ok(Ok(())) => tracing::info!("released this node's leases"),
        Ok(Err(error)) => tracing::warn!(%error, "could not release this node's leases; they expire instead"),
        Err(error) => tracing::warn!(%error, "could not release this node's leases; they expire instead"),
    }
}

/// Start or stop an organization's work.
enum Work {
    Gained(Held),
    /// The lease is gone (or may be): stop.
    LetGo {
        org_id: String,
        generation: i64,
    },
    /// Above the fair share: stop, then release (renewed meanwhile).
    HandBack {
        org_id: String,
        generation: i64,
    },
    Tick,
}

/// What the rounds and the worker share.
struct Shared {
    store: Store,
    node: NodeInfo,
    ownership: Ownership,
    /// Leases handed back whose work is still stopping: renewed until released.
    releasing: Mutex<BTreeSet<String>>,
    /// A tick is queued and not yet done (rounds do not queue another).
    tick_queued: AtomicBool,
}

impl Shared {
    fn releasing(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        // Single inserts and removes: a panic elsewhere cannot leave the set torn.
        self.releasing.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs queued work in order until the rounds end; a panic in one item is logged and the
    /// next goes on.
    async fn work(self: Arc<Self>, placement: Arc<dyn Placement>, mut queue: mpsc::UnboundedReceiver<Work>) {
        while let Some(work) = queue.recv().await {
            let done = AssertUnwindSafe(self.do_work(&placement, work)).catch_unwind().await;
            if done.is_err() {
                tracing::error!("starting or stopping an organization's work panicked; going on");
                self.tick_queued.store(false, Ordering::Release);
            }
        }
    }

    async fn do_work(&self, placement: &Arc<dyn Placement>, work: Work) {
        {
            match work {
                Work::Gained(lease) => {
                    tracing::info!(org_id = %lease.org_id, generation = lease.generation, "claimed the lease of an organization");
                    // Logged before anything starts, and "stopped" after everything stopped:
                    // the log's intervals contain the real ones.
                    self.log_run(&lease.org_id, lease.generation, "started").await;
                    placement.gained(lease.org_id).await;
                }
                Work::LetGo { org_id, generation } => {
                    tracing::warn!(org_id = %org_id, "lost (or may lose) the lease of an organization; stopping its actors");
                    placement.lost(org_id.clone()).await;
                    self.log_run(&org_id, generation, "stopped").await;
                }
                Work::HandBack { org_id, generation } => {
                    tracing::info!(org_id = %org_id, "handing an organization to a less loaded node");
                    placement.lost(org_id.clone()).await;
                    self.log_run(&org_id, generation, "stopped").await;
                    self.release(&org_id).await;
                }
                Work::Tick => {
                    placement.tick().await;
                    self.tick_queued.store(false, Ordering::Release);
                }
            }
        }
    }

    /// Releases the lease of `org_id` (its work has stopped).
    async fn release(&self, org_id: &str) {
        let (store, node_id, org) = (self.store.clone(), self.node.node_id.clone(), vec![org_id.to_owned()]);
        let released = tokio::task::spawn_blocking(move || {
            let db = store.postgres().ok_or(StoreError::Closed)?;
            leases::release(&mut *db.connection()?, &node_id, &org)
        })
        .await;
        if !matches!(released, Ok(Ok(()))) {
            tracing::warn!(org_id, "could not release a lease; it expires instead");
        }
        self.ownership.released(org_id);
        self.releasing().remove(org_id);
    }

    /// Records in the lease log that this node started or stopped running `org_id`.
    async fn log_run(&self, org_id: &str, generation: i64, event: &'static str) {
        let (store, node_id, org_id) = (self.store.clone(), self.node.node_id.clone(), org_id.to_owned());
        let logged = tokio::task::spawn_blocking(move || {
            let db = store.postgres().ok_or(StoreError::Closed)?;
            leases::log_run(&mut *db.connection()?, &org_id, &node_id, generation, event)
        })
        .await;
        if !matches!(logged, Ok(Ok(()))) {
            tracing::warn!(event, "could not log a lease event");
        }
    }
}

struct Rounds {
    shared: Arc<Shared>,
    ttl: Duration,
    work: mpsc::UnboundedSender<Work>,
    draining: CancellationToken,
}

/// What one round found.
struct Round {
    /// Held (or being released) before, and renewed.
    kept: BTreeSet<String>,
    /// Newly claimed.
    claimed: Vec<Held>,
    /// Held above the fair share: to stop, then release.
    excess: Vec<String>,
}

impl Rounds {
    async fn run(self, stop: CancellationToken) {
        let mut renewed_at = Instant::now();
        loop {
            let held = self.shared.ownership.held();
            let releasing = self.shared.releasing().clone();
            // Renewals count from when the round started (the database started the term a
            // little later, never earlier).
            let started = Instant::now();
            let renew: BTreeSet<String> = held.union(&releasing).cloned().collect();
            let round = tokio::time::timeout(self.ttl / 2, self.round(renew)).await;
            match round {
                Ok(Ok(round)) => {
                    renewed_at = started;
                    for org in &round.kept {
                        self.shared.ownership.renewed(org, started.into_std());
                    }
                    for org in held.difference(&round.kept) {
                        self.let_go(org, false);
                    }
                    for lease in round.claimed {
                        self.shared
                            .ownership
                            .set(&lease.org_id, Some(lease.generation), started.into_std());
                        let _ = self.work.send(Work::Gained(lease));
                    }
                    for org in &round.excess {
                        self.let_go(org, true);
                    }
                    let idle = !self.shared.tick_queued.swap(true, Ordering::AcqRel);
                    if idle && !self.draining.is_cancelled() {
                        let _ = self.work.send(Work::Tick);
                    } else if idle {
                        self.shared.tick_queued.store(false, Ordering::Release);
                    }
                }
                Ok(Err(error)) => self.not_renewed(&held, renewed_at, &error.to_string()),
                Err(_) => self.not_renewed(&held, renewed_at, "the database did not answer in time"),
            }
            tokio::select! {
                () = tokio::time::sleep_until(started + self.ttl / 3) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// A round failed: past half a term since the last renewal, every held lease may lapse
    /// before the next one, so their work stops now.
    fn not_renewed(&self, held: &BTreeSet<String>, renewed_at: Instant, why: &str) {
        tracing::warn!(why, "could not renew this node's leases");
        if renewed_at.elapsed() > self.ttl / 2 {
            for org in held {
                self.let_go(org, false);
            }
        }
    }

    /// Stops running `org_id` here (nothing new starts at once; the worker stops what runs),
    /// releasing the lease afterwards when `hand_back`.
    fn let_go(&self, org_id: &str, hand_back: bool) {
        let generation = self.shared.ownership.fence(org_id).map_or(-1, |fence| fence.generation);
        let org_id = org_id.to_owned();
        let work = if hand_back {
            self.shared.ownership.hand_back(&org_id);
            self.shared.releasing().insert(org_id.clone());
            Work::HandBack { org_id, generation }
        } else {
            self.shared.ownership.set(&org_id, None, std::time::Instant::now());
            Work::LetGo { org_id, generation }
        };
        let _ = self.work.send(work);
    }

    /// Heartbeat, renewal and claims, on the blocking pool (database round trips).
    async fn round(&self, renew: BTreeSet<String>) -> Result<Round, StoreError> {
        let (shared, ttl, draining) = (self.shared.clone(), self.ttl, self.draining.is_cancelled());
        tokio::task::spawn_blocking(move || {
            let orgs = shared
                .store
                .read(|rx| rx.keys_with_prefix(ORGANIZATIONS, "", usize::MAX))?;
            let db = shared.store.postgres().ok_or(StoreError::Closed)?;
            let mut conn = db.connection()?;
            let node = &shared.node;
            leases::heartbeat(&mut conn, node)?;
            leases::ensure(&mut conn, &orgs)?;
            let renew: Vec<String> = renew.into_iter().collect();
            let kept: BTreeSet<String> = leases::renew(&mut conn, &node.node_id, ttl, &renew)?
                .into_iter()
                .map(|lease| lease.org_id)
                .collect();
            let mut round = Round {
                kept,
                claimed: Vec::new(),
                excess: Vec::new(),
            };
            if draining {
                return Ok(round);
            }
            let (live, total) = leases::census(&mut conn, ttl)?;
            let share = fair_share(total, live);
            // Leases being handed back do not count toward this node's share.
            let releasing = shared.releasing().clone();
            let owned = round.kept.iter().filter(|org| !releasing.contains(*org)).count();
            let have = i64::try_from(owned).unwrap_or(i64::MAX);
            if have < share {
                round.claimed = leases::claim(&mut conn, &node.node_id, ttl, share - have)?;
            } else if have > share {
                let extra = usize::try_from(have - share).unwrap_or(0);
                round.excess = round
                    .kept
                    .iter()
                    .rev()
                    .filter(|org| !releasing.contains(*org))
                    .take(extra)
                    .cloned()
                    .collect();
            }
            Ok(round)
        })
        .await
        .map_err(|_| StoreError::ChangePanicked)?
    }
}

/// Leases per live node, rounded up (every lease finds a holder).
fn fair_share(leases: i64, live_nodes: i64) -> i64 {
    if live_nodes <= 0 {
        return leases;
    }
    (leases + live_nodes - 1) / live_nodes
}

#[cfg(test)]
mod tests {
    use super::fair_share;

    #[test]
    fn fair_shares_cover_every_lease() {
        assert_eq!(fair_share(3, 2), 2);
        assert_eq!(fair_share(4, 2), 2);
        assert_eq!(fair_share(1, 3), 1);
        assert_eq!(fair_share(0, 3), 0);
        assert_eq!(fair_share(5, 0), 5);
    }
}
