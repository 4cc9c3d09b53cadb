//! Record changes waiting for a record-level sync: what inbound webhooks queue per mapping
//! and direction (a burst of events for one record coalesces into one entry), and what a
//! record-level job takes from that queue and keeps with itself, so a crash at any point
//! loses none and syncs none twice.

use serde::{Deserialize, Serialize};

use super::records::Flow;
use crate::store::{BytesTable, JOB_CHANGES, PENDING_CHANGES, Reader, Record, StoreError, Tx};

/// Changes one record-level job takes at most; the rest wait for the next one.
pub const CHANGES_PER_JOB: usize = 500;

/// How a record changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Change {
    /// Created, updated or restored: read again and synced.
    Changed,
    /// Deleted at the provider: recorded, never propagated.
    Deleted,
    /// Merged into record `into` and gone: recorded, never propagated.
    Merged { into: String },
}

/// One record to sync in one direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordChange {
    pub flow: Flow,
    pub record_id: String,
    pub change: Change,
    /// When the provider says the earliest of the coalesced changes happened (Unix ms).
    pub occurred_at_ms: i64,
}

/// A change waiting for its mapping's next record-level job, keyed
/// `<mapping>/<flow>/<record id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    pub key: String,
    pub mapping_id: String,
    pub change: RecordChange,
    /// Provider events coalesced into it.
    pub events: u32,
}

impl Record for PendingChange {
    const TABLE: BytesTable = PENDING_CHANGES;
    fn id(&self) -> &str {
        &self.key
    }
}

/// The changes a record-level job syncs, keyed by the job's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobChanges {
    pub job_id: String,
    pub changes: Vec<RecordChange>,
}

impl Record for JobChanges {
    const TABLE: BytesTable = JOB_CHANGES;
    fn id(&self) -> &str {
        &self.job_id
    }
}

fn pending_key(mapping_id: &str, flow: Flow, record_id: &str) -> String {
    format!("{mapping_id}/{}/{record_id}", flow.as_str())
}

/// Queues `change` for `mapping_id`, coalescing with a change of the same record already
/// waiting: the later change's kind wins, the earlier time stays (it is how long the record
/// has been out of step).
pub fn queue(tx: &mut Tx<'_>, mapping_id: &str, change: RecordChange) -> Result<(), StoreError> {
    let key = pending_key(mapping_id, change.flow, &change.record_id);
    let pending = match tx.get::<PendingChange>(&key)? {
        Some(mut waiting) => {
            if change.occurred_at_ms >= waiting.change.occurred_at_ms {
                waiting.change.change = change.change;
            }
            waiting.change.occurred_at_ms = waiting.change.occurred_at_ms.min(change.occurred_at_ms);
            waiting.events = waiting.events.saturating_add(1);
            waiting
        }
        None => PendingChange {
            key,
            mapping_id: mapping_id.to_owned(),
            change,
            events: 1,
        },
    };
    tx.put(&pending)
}

/// Moves up to [`CHANGES_PER_JOB`] of `mapping_id`'s waiting changes to job `job_id`;
/// returns how many.
pub fn take(tx: &mut Tx<'_>, mapping_id: &str, job_id: &str) -> Result<usize, StoreError> {
    let keys = tx.keys_with_prefix(PENDING_CHANGES, &format!("{mapping_id}/"), CHANGES_PER_JOB)?;
    let mut changes = Vec::with_capacity(keys.len());
    for key in keys {
        if let Some(pending) = tx.remove::<PendingChange>(&key)? {
            changes.push(pending.change);
        }
    }
    let taken = changes.len();
    if taken > 0 {
        tx.put(&JobChanges {
            job_id: job_id.to_owned(),
            changes,
        })?;
    }
    Ok(taken)
}

/// Whether `mapping_id` has changes waiting.
pub fn has_pending(rx: &impl Reader, mapping_id: &str) -> Result<bool, StoreError> {
    Ok(!rx
        .keys_with_prefix(PENDING_CHANGES, &format!("{mapping_id}/"), 1)?
        .is_empty())
}

/// The mappings with changes waiting, each once.
pub fn mappings_with_pending(rx: &impl Reader) -> Result<Vec<String>, StoreError> {
    let mut mappings: Vec<String> = Vec::new();
    // Keys sort by mapping first: one pass, each mapping's run of keys after the other.
    for pending in rx.list::<PendingChange>()? {
        if mappings.last() != Some(&pending.mapping_id) {
            mappings.push(pending.mapping_id);
        }
    }
    Ok(mappings)
}
