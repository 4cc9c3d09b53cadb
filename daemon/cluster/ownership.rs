//! Which organizations' actors and sync jobs this node runs: every one on a single node; in
//! a cluster, those whose lease it holds (see `keeper`).

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

/// Cheap to clone; every clone sees the same leases.
#[derive(Clone, Default)]
pub struct Ownership {
    /// `None` on a single node (it owns everything).
    held: Option<Arc<RwLock<BTreeSet<String>>>>,
}

impl Ownership {
    /// A cluster node's ownership: nothing until its keeper claims leases.
    pub fn clustered() -> Ownership {
        Ownership {
            held: Some(Arc::default()),
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
            Some(held) => read(held).contains(org_id),
        }
    }

    /// The organizations whose leases this node holds (none on a single node).
    pub fn held(&self) -> BTreeSet<String> {
        self.held.as_ref().map(|held| read(held).clone()).unwrap_or_default()
    }

    /// Records that the lease of `org_id` is held (`true`) or not.
    pub(super) fn set(&self, org_id: &str, holds: bool) {
        if let Some(held) = &self.held {
            let mut held = held.write().unwrap_or_else(|poisoned| poisoned.into_inner());
            if holds {
                held.insert(org_id.to_owned());
            } else {
                held.remove(org_id);
            }
        }
    }
}

fn read(held: &RwLock<BTreeSet<String>>) -> std::sync::RwLockReadGuard<'_, BTreeSet<String>> {
    // Single inserts and removes: a panic elsewhere cannot leave the set torn.
    held.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}
