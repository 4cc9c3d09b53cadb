//! Identity links: (mapping, source id) ↔ target id, with hashes of the values last synced on
//! each side, field by field (so unchanged records and our own echoes are skipped, and a field
//! changed on both sides since is told from one changed on one side).

use serde::{Deserialize, Serialize};

use super::plan::FieldHashes;
use super::records::Flow;
use crate::store::{BytesTable, LINKS, Reader, Record, StoreError, Tx};

/// A link, stored under `<mapping>/s/<source id>`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct LinkRecord {
    pub key: String,
    pub source_id: String,
    pub target_id: String,
    /// Hash of all mapped source-side values as last synced (links written before per-field
    /// hashes; empty since).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source_hash: String,
    /// Hash of all mapped target-side values as last synced (older links).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target_hash: String,
    /// The source side's mapped values as last synced, field by field.
    #[serde(default, skip_serializing_if = "FieldHashes::is_empty")]
    pub source_values: FieldHashes,
    /// The target side's mapped values as last synced, field by field.
    #[serde(default, skip_serializing_if = "FieldHashes::is_empty")]
    pub target_values: FieldHashes,
}

impl LinkRecord {
    /// The id linked on the side `flow` writes, the record-level hash of an older link, and
    /// the per-field hashes of that side.
    pub fn written_side(&self, flow: Flow) -> (&str, &str, &FieldHashes) {
        match flow {
            Flow::Forward => (&self.target_id, &self.target_hash, &self.target_values),
            Flow::Backward => (&self.source_id, &self.source_hash, &self.source_values),
        }
    }

    /// The per-field hashes of the side `flow` reads: the values the opposite flow maps from
    /// the side `flow` writes, as of the last sync.
    pub fn read_side_values(&self, flow: Flow) -> &FieldHashes {
        match flow {
            Flow::Forward => &self.source_values,
            Flow::Backward => &self.target_values,
        }
    }

    /// The record-level hash of an older link for the side `flow` reads.
    pub fn read_side_hash(&self, flow: Flow) -> &str {
        match flow {
            Flow::Forward => &self.source_hash,
            Flow::Backward => &self.target_hash,
        }
    }

    /// Whether the link predates per-field hashes (only record-level hashes compare).
    pub fn is_legacy(&self) -> bool {
        self.source_values.is_empty()
            && self.target_values.is_empty()
            && !(self.target_hash.is_empty() && self.source_hash.is_empty())
    }
}

impl Record for LinkRecord {
    const TABLE: BytesTable = LINKS;
    fn id(&self) -> &str {
        &self.key
    }
}

/// The reverse pointer, stored under `<mapping>/t/<target id>`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LinkPointer {
    pub key: String,
    pub source_id: String,
}

impl Record for LinkPointer {
    const TABLE: BytesTable = LINKS;
    fn id(&self) -> &str {
        &self.key
    }
}

fn source_key(mapping_id: &str, source_id: &str) -> String {
    format!("{mapping_id}/s/{source_id}")
}

fn target_key(mapping_id: &str, target_id: &str) -> String {
    format!("{mapping_id}/t/{target_id}")
}

/// The link of a record read in `flow` (a source record going forward, a target record
/// going backward).
pub fn find(rx: &impl Reader, mapping_id: &str, flow: Flow, record_id: &str) -> Result<Option<LinkRecord>, StoreError> {
    match flow {
        Flow::Forward => rx.get::<LinkRecord>(&source_key(mapping_id, record_id)),
        Flow::Backward => match rx.get::<LinkPointer>(&target_key(mapping_id, record_id))? {
            Some(pointer) => rx.get::<LinkRecord>(&source_key(mapping_id, &pointer.source_id)),
            None => Ok(None),
        },
    }
}

/// Whether `target_id` is already linked (to a different source) in `mapping_id`.
pub fn target_linked(rx: &impl Reader, mapping_id: &str, target_id: &str) -> Result<Option<String>, StoreError> {
    Ok(rx
        .get::<LinkPointer>(&target_key(mapping_id, target_id))?
        .map(|p| p.source_id))
}

/// Stores `link` and its reverse pointer.
pub fn save(tx: &mut Tx<'_>, mapping_id: &str, link: &LinkRecord) -> Result<(), StoreError> {
    let mut stored = link.clone();
    stored.key = source_key(mapping_id, &link.source_id);
    tx.put(&stored)?;
    tx.put(&LinkPointer {
        key: target_key(mapping_id, &link.target_id),
        source_id: link.source_id.clone(),
    })
}
