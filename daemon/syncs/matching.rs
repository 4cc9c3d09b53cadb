//! First-sync matching: an index, in the store, of the written side's records by their
//! normalized match-key value, so each incoming record finds an existing counterpart with a
//! local lookup instead of a provider search per record, at any record count.

use sha2::{Digest, Sha256};

use super::records::Flow;
use crate::connectors::{Connector, ConnectorError, ListQuery};
use crate::store::{IndexTable, Reader, Store, StoreError, Tx};

/// Records listed per page while indexing.
const PAGE: usize = 200;
/// Index keys removed per transaction while clearing.
const CLEAR_CHUNK: usize = 10_000;

/// Errors of index building.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Trimmed and lowercased: emails and names compare this way.
pub fn normalize(value: &str) -> String {
    value.trim().to_lowercase()
}

fn prefix(mapping_id: &str, flow: Flow, value: &str) -> String {
    let digest = hex::encode(&Sha256::digest(normalize(value).as_bytes())[..12]);
    format!("{mapping_id}/{}/{digest}/", flow.as_str())
}

/// Records `id` on the side `flow` writes to as having `value`.
pub fn add(tx: &mut Tx<'_>, mapping_id: &str, flow: Flow, value: &str, id: &str) -> Result<(), StoreError> {
    if normalize(value).is_empty() {
        return Ok(());
    }
    tx.index_insert(
        IndexTable::MatchIndex,
        &format!("{}{id}", prefix(mapping_id, flow, value)),
    )
}

/// A record of the written side whose match key equals `value`.
pub fn lookup(rx: &impl Reader, mapping_id: &str, flow: Flow, value: &str) -> Result<Option<String>, StoreError> {
    if normalize(value).is_empty() {
        return Ok(None);
    }
    let prefix = prefix(mapping_id, flow, value);
    Ok(rx
        .index_keys(IndexTable::MatchIndex, &prefix, 1)?
        .first()
        .map(|key| key[prefix.len()..].to_owned()))
}

/// Removes every index entry of `mapping_id` for `flow`, a chunk per transaction.
async fn clear(store: &Store, mapping_id: &str, flow: Flow) -> Result<(), StoreError> {
    let prefix = format!("{mapping_id}/{}/", flow.as_str());
    loop {
        let keys = store.read(|rx| rx.index_keys(IndexTable::MatchIndex, &prefix, CLEAR_CHUNK))?;
        if keys.is_empty() {
            return Ok(());
        }
        store
            .write(move |tx| {
                keys.iter()
                    .try_for_each(|key| tx.index_remove(IndexTable::MatchIndex, key))
            })
            .await?;
    }
}

/// Rebuilds the index of the side `flow` writes to, listing all of `object` on `connector`
/// and indexing `field`. Returns how many records were indexed.
pub async fn build(
    store: &Store,
    connector: &Connector,
    mapping_id: &str,
    flow: Flow,
    object: &str,
    field: &str,
) -> Result<u64, MatchError> {
    clear(store, mapping_id, flow).await?;
    let fields = [field.to_owned()];
    let mut cursor: Option<String> = None;
    let mut indexed = 0;
    loop {
        let page = connector
            .list_changed(&ListQuery {
                object,
                since: None,
                cursor: cursor.as_deref(),
                limit: PAGE,
                fields: &fields,
                filter: None,
            })
            .await?;
        indexed += page.records.len() as u64;
        let entries: Vec<(String, String)> = page
            .records
            .into_iter()
            .filter_map(|mut record| Some((record.fields.remove(field)?, record.id)))
            .collect();
        let mapping = mapping_id.to_owned();
        store
            .write(move |tx| {
                entries
                    .iter()
                    .try_for_each(|(value, id)| add(tx, &mapping, flow, value, id))
            })
            .await?;
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(indexed),
        }
    }
}
