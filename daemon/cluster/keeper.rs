//! The lease keeper: one task per node that heartbeats, renews the leases it holds well
//! inside their term, claims unowned or expired ones up to a fair share, hands back what it
//! holds above that share, and stops an organization's actors before its lease can pass to
//! another node.
//!
//! Timing: a round every third of the lease term. A lease that could not be renewed is let go
//! here once half its term has passed since the last successful renewal, so the actors stop
//! while the lease is still ours; another node can claim it only after the whole term.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
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
    stop: CancellationToken,
    task: JoinHandle<()>,
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
        let stop = CancellationToken::new();
        let task = tokio::spawn(
            Rounds {
                store,
                node,
                ttl,
                ownership,
                placement,
            }
            .run(stop.clone()),
        );
        Keeper { stop, task }
    }

    /// Stops the rounds; then the node's actors stop (the daemon's shutdown) and
    /// [`Keeper::leave`] hands the leases back.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
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

struct Rounds {
    store: Store,
    node: NodeInfo,
    ttl: Duration,
    ownership: Ownership,
    placement: Arc<dyn Placement>,
}

/// What one round found.
struct Round {
    /// Held before and renewed.
    kept: BTreeSet<String>,
    /// Newly claimed, with their generations.
    claimed: Vec<Held>,
    /// Held above the fair share: to stop, then release.
    excess: Vec<String>,
}

impl Rounds {
    async fn run(self, stop: CancellationToken) {
        let mut renewed_at = Instant::now();
        loop {
            let held = self.ownership.held();
            // Renewals count from when the round started (the database's clock may have
            // started the term a little later, never earlier).
            let started = Instant::now();
            match self.round(held.clone()).await {
                Ok(round) => {
                    renewed_at = started;
                    for org in &round.kept {
                        self.ownership.renewed(org, started.into_std());
                    }
                    for org in held.difference(&round.kept) {
                        tracing::warn!(org_id = %org, "lost the lease of an organization; stopping its actors");
                        self.let_go(org).await;
                    }
                    for lease in round.claimed {
                        tracing::info!(org_id = %lease.org_id, generation = lease.generation, "claimed the lease of an organization");
                        self.ownership
                            .set(&lease.org_id, Some(lease.generation), started.into_std());
                        self.placement.gained(lease.org_id).await;
                    }
                    if !round.excess.is_empty() {
                        self.hand_back(round.excess).await;
                    }
                    self.placement.tick().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "could not renew this node's leases");
                    if renewed_at.elapsed() > self.ttl / 2 {
                        for org in &held {
                            tracing::warn!(org_id = %org, "letting an organization go: its lease may lapse");
                            self.let_go(org).await;
                        }
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.ttl / 3) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Stops running `org_id` here.
    async fn let_go(&self, org_id: &str) {
        self.ownership.set(org_id, None, std::time::Instant::now());
        self.placement.lost(org_id.to_owned()).await;
    }

    /// Stops the organizations in `excess`, then releases their leases for other nodes.
    async fn hand_back(&self, excess: Vec<String>) {
        for org in &excess {
            tracing::info!(org_id = %org, "handing an organization to a less loaded node");
            self.let_go(org).await;
        }
        let (store, node_id) = (self.store.clone(), self.node.node_id.clone());
        let released = tokio::task::spawn_blocking(move || {
            let db = store.postgres().ok_or(StoreError::Closed)?;
            leases::release(&mut *db.connection()?, &node_id, &excess)
        })
        .await;
        if !matches!(released, Ok(Ok(()))) {
            tracing::warn!("could not release leases; they expire instead");
        }
    }

    /// Heartbeat, renewal and claims, on the blocking pool (database round trips).
    async fn round(&self, held: BTreeSet<String>) -> Result<Round, StoreError> {
        let (store, node, ttl) = (self.store.clone(), self.node.clone(), self.ttl);
        tokio::task::spawn_blocking(move || {
            let orgs = store.read(|rx| rx.keys_with_prefix(ORGANIZATIONS, "", usize::MAX))?;
            let db = store.postgres().ok_or(StoreError::Closed)?;
            let mut conn = db.connection()?;
            leases::heartbeat(&mut conn, &node)?;
            leases::ensure(&mut conn, &orgs)?;
            let held: Vec<String> = held.into_iter().collect();
            let kept: BTreeSet<String> = leases::renew(&mut conn, &node.node_id, ttl, &held)?
                .into_iter()
                .map(|lease| lease.org_id)
                .collect();
            let (live, total) = leases::census(&mut conn, ttl)?;
            let share = fair_share(total, live);
            let have = i64::try_from(kept.len()).unwrap_or(i64::MAX);
            let mut round = Round {
                kept,
                claimed: Vec::new(),
                excess: Vec::new(),
            };
            if have < share {
                round.claimed = leases::claim(&mut conn, &node.node_id, ttl, share - have)?;
            } else if have > share {
                let extra = usize::try_from(have - share).unwrap_or(0);
                round.excess = round.kept.iter().rev().take(extra).cloned().collect();
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
