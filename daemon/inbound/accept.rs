//! Accepting inbound events, in one transaction before the provider gets its 2xx: a
//! redelivered event (same connection and event key) is dropped, a new one is remembered and
//! queued as a record change for every active mapping that syncs its connection and object
//! (either side of a two-way mapping). Mappings whose first sync never completed get nothing:
//! that sync reads every record anyway.

use crate::orgs::usage::{self, Usage};
use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::event::ProviderEvent;
use crate::mappings::MappingRecord;
use crate::mappings::spec::Direction;
use crate::store::{BytesTable, INBOUND_SEEN, IndexTable, Reader, Record, StoreError, Tx};
use crate::syncs::changes::{self, PendingChange, RecordChange};
use crate::syncs::records::{Flow, SyncStateRecord};

/// Record changes waiting across all mappings before webhooks are refused (503, which every
/// provider retries).
pub const MAX_PENDING: u64 = 200_000;

/// An accepted event, remembered under `<connection>/<event key>` to drop redeliveries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SeenEvent {
    pub key: String,
    pub received_at_ms: i64,
}

impl Record for SeenEvent {
    const TABLE: BytesTable = INBOUND_SEEN;
    fn id(&self) -> &str {
        &self.key
    }
}

/// What became of a request's events.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Events queued as record changes.
    pub queued: u64,
    /// Redeliveries of events already accepted.
    pub duplicates: u64,
    /// Events no mapping syncs.
    pub ignored: u64,
    /// Mappings with new changes queued.
    pub mappings: BTreeSet<String>,
}

/// Why events could not be accepted; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("{0} record changes are waiting already")]
    Backlogged(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn seen_time_key(received_at_ms: i64, seen_key: &str) -> String {
    format!("{received_at_ms:020}/{seen_key}")
}

/// The directions of `mapping` that read `object` on `connection`.
fn flows(mapping: &MappingRecord, connection: &str, object: &str) -> Vec<Flow> {
    let spec = &mapping.spec;
    let mut flows = Vec::new();
    if spec.source.connection == connection
        && spec.source.object.eq_ignore_ascii_case(object)
        && spec.direction != Direction::TargetToSource
    {
        flows.push(Flow::Forward);
    }
    if spec.target.connection == connection
        && spec.target.object.eq_ignore_ascii_case(object)
        && spec.direction != Direction::SourceToTarget
    {
        flows.push(Flow::Backward);
    }
    flows
}

/// The active mappings of `connection` whose first sync completed.
fn live_mappings(tx: &Tx<'_>, connection: &str) -> Result<Vec<MappingRecord>, StoreError> {
    let prefix = format!("{connection}/");
    let mut live = Vec::new();
    for key in tx.index_keys(IndexTable::ConnectionMappings, &prefix, 10_000)? {
        let id = &key[prefix.len()..];
        let Some(mapping) = tx.get::<MappingRecord>(id)?.filter(|m| m.active) else {
            continue;
        };
        if tx.get::<SyncStateRecord>(id)?.is_some_and(|state| state.succeeded_once) {
            live.push(mapping);
        }
    }
    Ok(live)
}

/// Accepts `events` received by each connection at `now_ms`.
pub fn accept(
    tx: &mut Tx<'_>,
    deliveries: &[(String, Vec<ProviderEvent>)],
    now_ms: i64,
) -> Result<Accepted, AcceptError> {
    let waiting = tx.count::<PendingChange>()?;
    if waiting >= MAX_PENDING {
        return Err(AcceptError::Backlogged(waiting));
    }
    let mut accepted = Accepted::default();
    let mut mappings_of: HashMap<&str, Vec<MappingRecord>> = HashMap::new();
    for (connection, events) in deliveries {
        let mut fresh = 0;
        for event in events {
            let seen_key = format!("{connection}/{}", event.key);
            if tx.get::<SeenEvent>(&seen_key)?.is_some() {
                accepted.duplicates += 1;
                continue;
            }
            fresh += 1;
            tx.put(&SeenEvent {
                key: seen_key.clone(),
                received_at_ms: now_ms,
            })?;
            tx.index_insert(IndexTable::InboundSeenByTime, &seen_time_key(now_ms, &seen_key))?;
            if !mappings_of.contains_key(connection.as_str()) {
                let live = live_mappings(tx, connection)?;
                mappings_of.insert(connection, live);
            }
            let mut queued = false;
            for mapping in &mappings_of[connection.as_str()] {
                for flow in flows(mapping, connection, &event.object) {
                    let change = RecordChange {
                        flow,
                        record_id: event.record_id.clone(),
                        change: event.change.clone(),
                        occurred_at_ms: event.occurred_at_ms,
                    };
                    changes::queue(tx, &mapping.id, change)?;
                    accepted.mappings.insert(mapping.id.clone());
                    queued = true;
                }
            }
            if queued {
                accepted.queued += 1;
            } else {
                accepted.ignored += 1;
            }
        }
        if fresh > 0
            && let Some(record) = tx.get::<crate::connections::records::ConnectionRecord>(connection)?
        {
            let counted = Usage {
                inbound_webhooks: fresh,
                ..Usage::default()
            };
            usage::count(tx, &record.org_id, counted)?;
        }
    }
    Ok(accepted)
}

/// Forgets the keys of events accepted before `before_ms` (providers stop redelivering long
/// before), at most `limit` per call; returns how many.
pub fn forget_seen(tx: &mut Tx<'_>, before_ms: i64, limit: usize) -> Result<usize, StoreError> {
    let end = format!("{before_ms:020}");
    let keys = tx.index_keys(IndexTable::InboundSeenByTime, "", limit)?;
    let mut forgotten = 0;
    for key in keys.into_iter().take_while(|key| key.as_str() < end.as_str()) {
        if let Some((_, seen_key)) = key.split_once('/') {
            tx.remove_key(INBOUND_SEEN, seen_key)?;
        }
        tx.index_remove(IndexTable::InboundSeenByTime, &key)?;
        forgotten += 1;
    }
    Ok(forgotten)
}
