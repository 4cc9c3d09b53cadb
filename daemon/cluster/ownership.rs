//! Which organizations' actors and sync jobs this node runs: every one on a single node; in
//! a cluster, those whose lease it holds (see `keeper`), with the lease generation their
//! writes are fenced by.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::store::Fence;

/// A held lease: its generation and when it was last renewed.
type Lease = (i64, Arc<Mutex<Instant>>);

/// Cheap to clone; every clone sees the same leases.
#[derive(Clone, Default)]
pub struct Ownership {
    /// `None` on a single node (it owns everything); else organization → lease.
    held: Option<Arc<RwLock<BTreeMap<String, Lease>>>>,
    /// Leases being handed back: no longer run here, but still renewed, so the writes of the
    /// work that is stopping still pass their fence until the release.
    releasing: Arc<RwLock<BTreeMap<String, Lease>>>,
    /// How long after a renewal a lease is counted on (two thirds of its term).
    trusted_for: Duration,
}

impl Ownership {
    /// A cluster node's ownership of leases with terms of `ttl`: nothing until its keeper
    /// claims some.
    pub fn clustered(ttl: Duration) -> Ownership {
        Ownership {
            held: Some(Arc::default()),
            releasing: Arc::default(),
            // A round starts every third of a term and may take a little: two thirds leave a
            // third of the term between the end of trust and the earliest expiry.
            trusted_for: ttl * 2 / 3,
        }
    }

    /// Whether this node shares its store with others.
    pub fn is_clustered(&self) -> bool {
        self.held.is_some()
    }

    /// Whether this node runs organization `org_id`'s actors and jobs.
    pub fn owns(&self, org_id: &str) -> bool {
        match &self.held {
            None => true,
            Some(held) => read(held).contains_key(org_id),
        }
    }

    /// The organizations whose leases this node holds (none on a single node).
    pub fn held(&self) -> BTreeSet<String> {
        self.held
            .as_ref()
            .map(|held| read(held).keys().cloned().collect())
            .unwrap_or_default()
    }

    /// What writes made for `org_id`'s work must be fenced by: its lease as held now (a
    /// generation no lease has when it is not held); nothing on a single node.
    pub fn fence(&self, org_id: &str) -> Option<Fence> {
        let held = self.held.as_ref()?;
        let (generation, renewed) = read(held)
            .get(org_id)
            .or(read(&self.releasing).get(org_id))
            .cloned()
            // Not held: a generation no lease has, and never fresh.
            .unwrap_or_else(|| {
                let long_ago = Instant::now()
                    .checked_sub(self.trusted_for)
                    .unwrap_or_else(Instant::now);
                (-1, Arc::new(Mutex::new(long_ago)))
            });
        Some(Fence {
            org_id: org_id.to_owned(),
            generation,
            renewed,
            trusted_for: self.trusted_for,
        })
    }

    /// Records that the lease of `org_id` was claimed at `generation` (at `at`), or is not
    /// held (`None`).
    pub(super) fn set(&self, org_id: &str, generation: Option<i64>, at: Instant) {
        if let Some(held) = &self.held {
            let mut held = held.write().unwrap_or_else(|poisoned| poisoned.into_inner());
            match generation {
                Some(generation) => held.insert(org_id.to_owned(), (generation, Arc::new(Mutex::new(at)))),
                None => held.remove(org_id),
            };
        }
    }

    /// Records that the lease of `org_id` was renewed by a round that started at `at`.
    pub(super) fn renewed(&self, org_id: &str, at: Instant) {
        let Some(held) = &self.held else { return };
        let lease = read(held).get(org_id).or(read(&self.releasing).get(org_id)).cloned();
        if let Some((_, renewed)) = lease {
            *renewed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = at;
        }
    }

    /// `org_id`'s work stops here, but its lease is renewed until [`Ownership::released`]:
    /// the stopping work's writes keep their fence.
    pub(super) fn hand_back(&self, org_id: &str) {
        let Some(held) = &self.held else { return };
        let lease = held
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(org_id);
        if let Some(lease) = lease {
            self.releasing
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(org_id.to_owned(), lease);
        }
    }

    /// The lease of `org_id` handed back has been released.
    pub(super) fn released(&self, org_id: &str) {
        self.releasing
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(org_id);
    }
}

fn read(held: &RwLock<BTreeMap<String, Lease>>) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Lease>> {
    // Single inserts and removes: a panic elsewhere cannot leave the map torn.
    held.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}
