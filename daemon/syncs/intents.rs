//! Create intents: before a batch of creates is sent, the records it creates are noted
//! durably. A crash between the provider's write and the checkpoint leaves the note; when the
//! resumed job finds such a record through the match index, it knows the record is its own
//! creation, so it counts it as created and announces `record.created` — the event a
//! subscriber is waiting for — instead of an update. Notes go with the page's checkpoint.

use serde::{Deserialize, Serialize};

use super::records::Flow;
use crate::store::{BytesTable, CREATE_INTENTS, Reader, Record, StoreError, Tx};

/// A create about to be sent, stored under `<mapping>/<flow>/<record id>`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CreateIntent {
    pub key: String,
    pub job_id: String,
}

impl Record for CreateIntent {
    const TABLE: BytesTable = CREATE_INTENTS;
    fn id(&self) -> &str {
        &self.key
    }
}

fn key(mapping_id: &str, flow: Flow, record_id: &str) -> String {
    format!("{mapping_id}/{}/{record_id}", flow.as_str())
}

/// Notes that `job_id` is about to create the records of `record_ids`.
pub fn note(
    tx: &mut Tx<'_>,
    mapping_id: &str,
    flow: Flow,
    job_id: &str,
    record_ids: &[String],
) -> Result<(), StoreError> {
    for record_id in record_ids {
        tx.put(&CreateIntent {
            key: key(mapping_id, flow, record_id),
            job_id: job_id.to_owned(),
        })?;
    }
    Ok(())
}

/// Whether a create of `record_id` was sent and perhaps not checkpointed.
pub fn noted(rx: &impl Reader, mapping_id: &str, flow: Flow, record_id: &str) -> Result<bool, StoreError> {
    Ok(rx.get::<CreateIntent>(&key(mapping_id, flow, record_id))?.is_some())
}

/// Forgets the notes of `record_ids`, their outcome now checkpointed.
pub fn forget(tx: &mut Tx<'_>, mapping_id: &str, flow: Flow, record_ids: &[String]) -> Result<(), StoreError> {
    for record_id in record_ids {
        tx.remove_key(CREATE_INTENTS, &key(mapping_id, flow, record_id))?;
    }
    Ok(())
}
