//! The redb store: typed records, secrets sealed under the master key, and the transaction
//! boundary every multi-record change goes through.
//!
//! All state lives in one file, `<data-dir>/fluxd.redb`. Records are JSON values in per-kind
//! tables keyed by their prefixed id; secondary orderings live in index tables whose values are
//! empty. A change and the events it emits commit in one [`Tx`]; after the commit, committed
//! events are broadcast in-process and the webhook endpoints that got new deliveries are woken.

mod schema;
mod tables;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;

use crate::crypto::{CryptoError, MasterKey, Secret};
use crate::events::EventRecord;

pub use schema::SCHEMA_VERSION;
pub use tables::*;

/// redb's page cache; the OS page cache serves the rest.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Name of the database file inside the data dir.
pub const DB_FILE: &str = "fluxd.redb";

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] redb::Error),
    #[error("stored record {table}/{key} is not valid: {error}")]
    Corrupt {
        table: String,
        key: String,
        error: serde_json::Error,
    },
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("the master key does not match the one this database was created with")]
    WrongMasterKey,
    #[error("database schema version {found} is newer than this fluxd supports ({supported})")]
    SchemaTooNew { found: u32, supported: u32 },
}

macro_rules! redb_error_from {
    ($($ty:ty),*) => {$(
        impl From<$ty> for StoreError {
            fn from(error: $ty) -> Self {
                StoreError::Database(redb::Error::from(error))
            }
        }
    )*};
}
redb_error_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A JSON record stored in its own table under its id.
pub trait Record: Serialize + DeserializeOwned {
    /// The table holding records of this kind.
    const TABLE: TableDefinition<'static, &'static str, &'static [u8]>;
    /// The record's primary key.
    fn id(&self) -> &str;
}

type WakeHook = Box<dyn Fn(&str) + Send + Sync>;

/// Shared handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    db: Database,
    key: MasterKey,
    events: broadcast::Sender<Arc<EventRecord>>,
    /// Called after a commit for each webhook endpoint that got new due deliveries.
    wake_endpoint: OnceLock<WakeHook>,
}

impl Store {
    /// Opens (or creates) `<data_dir>/fluxd.redb`, migrates it to the current schema and checks
    /// that `key` is the key the database was created with.
    pub fn open(data_dir: &Path, key: MasterKey) -> Result<Self, StoreError> {
        // A bounded page cache keeps memory flat however large the database grows.
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(data_dir.join(DB_FILE))?;
        schema::migrate(&db, &key)?;
        let (events, _) = broadcast::channel(4096);
        Ok(Store {
            inner: Arc::new(StoreInner {
                db,
                key,
                events,
                wake_endpoint: OnceLock::new(),
            }),
        })
    }

    /// Runs `change` in one write transaction; commits when it returns `Ok`.
    pub fn write<T, E>(&self, change: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let txn = self.inner.db.begin_write().map_err(StoreError::from)?;
        let mut tx = Tx {
            txn,
            key: &self.inner.key,
            events: Vec::new(),
            woken: BTreeSet::new(),
        };
        let value = change(&mut tx)?;
        let Tx { txn, events, woken, .. } = tx;
        txn.commit().map_err(StoreError::from)?;
        for event in events {
            // No receivers is fine: nobody is waiting for events right now.
            let _ = self.inner.events.send(event);
        }
        if let Some(wake) = self.inner.wake_endpoint.get() {
            woken.iter().for_each(|endpoint| wake(endpoint));
        }
        Ok(value)
    }

    /// Runs `query` against a consistent snapshot.
    pub fn read<T, E>(&self, query: impl FnOnce(&Rx) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let txn = self.inner.db.begin_read().map_err(StoreError::from)?;
        query(&Rx {
            txn,
            key: &self.inner.key,
        })
    }

    /// Committed events, as they commit.
    pub fn subscribe_events(&self) -> broadcast::Receiver<Arc<EventRecord>> {
        self.inner.events.subscribe()
    }

    /// Installs the hook that wakes a webhook endpoint's actor after new deliveries commit.
    pub fn set_wake_endpoint_hook(&self, hook: impl Fn(&str) + Send + Sync + 'static) {
        let _ = self.inner.wake_endpoint.set(Box::new(hook));
    }

    /// Re-encrypts every secret under `new_key` in one transaction and records the new key check.
    pub fn rotate_master_key(&self, new_key: &MasterKey) -> Result<usize, StoreError> {
        let txn = self.inner.db.begin_write()?;
        let count = schema::reseal_all(&txn, &self.inner.key, new_key)?;
        txn.commit()?;
        Ok(count)
    }
}

/// Reads shared by [`Tx`] and [`Rx`].
pub trait Reader {
    /// The record `id` of kind `R`, if present.
    fn get<R: Record>(&self, id: &str) -> Result<Option<R>, StoreError>;
    /// Every record of kind `R`, in id order.
    fn list<R: Record>(&self) -> Result<Vec<R>, StoreError>;
    /// Number of records of kind `R`.
    fn count<R: Record>(&self) -> Result<u64, StoreError>;
    /// Number of records in `table` that belong to organization `org_id`.
    fn count_in_org(&self, table: BytesTable, org_id: &str) -> Result<u64, StoreError>;
    /// Keys of record table `table` that start with `prefix`, in order, at most `limit`.
    fn keys_with_prefix(&self, table: BytesTable, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError>;
    /// Keys of `index` that start with `prefix`, in order, at most `limit`.
    fn index_keys(&self, index: IndexTable, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError>;
    /// The secret `name` of record `owner`, decrypted.
    fn secret(&self, owner: &str, name: &str) -> Result<Option<Secret>, StoreError>;
    /// A value of the `meta` table.
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
}

/// A write transaction. Dropping it without [`Store::write`] returning `Ok` aborts it.
pub struct Tx<'s> {
    txn: redb::WriteTransaction,
    key: &'s MasterKey,
    events: Vec<Arc<EventRecord>>,
    woken: BTreeSet<String>,
}

/// A read snapshot.
pub struct Rx<'s> {
    txn: redb::ReadTransaction,
    key: &'s MasterKey,
}

impl Tx<'_> {
    /// Inserts or replaces `record`.
    pub fn put<R: Record>(&mut self, record: &R) -> Result<(), StoreError> {
        let bytes = encode(record);
        self.txn.open_table(R::TABLE)?.insert(record.id(), bytes.as_slice())?;
        Ok(())
    }

    /// Removes record `id`, returning it if it existed.
    pub fn remove<R: Record>(&mut self, id: &str) -> Result<Option<R>, StoreError> {
        let mut table = self.txn.open_table(R::TABLE)?;
        let removed = table.remove(id)?;
        removed.map(|guard| decode(R::TABLE, id, guard.value())).transpose()
    }

    /// Adds `key` to `index`.
    pub fn index_insert(&mut self, index: IndexTable, key: &str) -> Result<(), StoreError> {
        self.txn.open_table(index.definition())?.insert(key, [].as_slice())?;
        Ok(())
    }

    /// Removes `key` from `index`.
    pub fn index_remove(&mut self, index: IndexTable, key: &str) -> Result<(), StoreError> {
        self.txn.open_table(index.definition())?.remove(key)?;
        Ok(())
    }

    /// Seals and stores secret `name` of record `owner`.
    pub fn put_secret(&mut self, owner: &str, name: &str, secret: &Secret) -> Result<(), StoreError> {
        let key = secret_key(owner, name);
        let sealed = self.key.seal(&key, secret.expose().as_bytes())?;
        self.txn.open_table(SECRETS)?.insert(key.as_str(), sealed.as_slice())?;
        Ok(())
    }

    /// Removes secret `name` of record `owner`.
    pub fn remove_secret(&mut self, owner: &str, name: &str) -> Result<(), StoreError> {
        self.txn.open_table(SECRETS)?.remove(secret_key(owner, name).as_str())?;
        Ok(())
    }

    /// Removes the record at `key` of `table`, whatever its kind.
    pub fn remove_key(&mut self, table: BytesTable, key: &str) -> Result<(), StoreError> {
        self.txn.open_table(table)?.remove(key)?;
        Ok(())
    }

    /// Sets a value of the `meta` table.
    pub fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.txn.open_table(META)?.insert(key, value)?;
        Ok(())
    }

    /// Queues `event` to be broadcast in-process once this transaction commits.
    pub(crate) fn after_commit_broadcast(&mut self, event: Arc<EventRecord>) {
        self.events.push(event);
    }

    /// Wakes endpoint `id`'s actor once this transaction commits.
    pub(crate) fn after_commit_wake(&mut self, endpoint_id: &str) {
        self.woken.insert(endpoint_id.to_owned());
    }
}

macro_rules! impl_reader {
    ($ty:ident) => {
        impl Reader for $ty<'_> {
            fn get<R: Record>(&self, id: &str) -> Result<Option<R>, StoreError> {
                let table = self.txn.open_table(R::TABLE)?;
                let found = table.get(id)?;
                found.map(|guard| decode(R::TABLE, id, guard.value())).transpose()
            }

            fn list<R: Record>(&self) -> Result<Vec<R>, StoreError> {
                let table = self.txn.open_table(R::TABLE)?;
                let mut out = Vec::new();
                for entry in table.iter()? {
                    let (key, value) = entry?;
                    out.push(decode(R::TABLE, key.value(), value.value())?);
                }
                Ok(out)
            }

            fn count<R: Record>(&self) -> Result<u64, StoreError> {
                Ok(self.txn.open_table(R::TABLE)?.len()?)
            }

            fn count_in_org(&self, table: BytesTable, org_id: &str) -> Result<u64, StoreError> {
                #[derive(serde::Deserialize)]
                struct OrgScoped<'a> {
                    #[serde(borrow)]
                    org_id: std::borrow::Cow<'a, str>,
                }
                let table_handle = self.txn.open_table(table)?;
                let mut count = 0;
                for entry in table_handle.iter()? {
                    let (key, value) = entry?;
                    let scoped: OrgScoped<'_> = decode(table, key.value(), value.value())?;
                    count += u64::from(scoped.org_id == org_id);
                }
                Ok(count)
            }

            fn keys_with_prefix(
                &self,
                table: BytesTable,
                prefix: &str,
                limit: usize,
            ) -> Result<Vec<String>, StoreError> {
                prefix_keys(&self.txn.open_table(table)?, prefix, limit)
            }

            fn index_keys(&self, index: IndexTable, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
                prefix_keys(&self.txn.open_table(index.definition())?, prefix, limit)
            }

            fn secret(&self, owner: &str, name: &str) -> Result<Option<Secret>, StoreError> {
                let key = secret_key(owner, name);
                let table = self.txn.open_table(SECRETS)?;
                let Some(sealed) = table.get(key.as_str())? else {
                    return Ok(None);
                };
                let plain = self.key.open(&key, sealed.value())?;
                let text = String::from_utf8(plain.to_vec()).map_err(|_| CryptoError::Open { owner: key })?;
                Ok(Some(Secret::new(text)))
            }

            fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
                let table = self.txn.open_table(META)?;
                Ok(table.get(key)?.map(|guard| guard.value().to_vec()))
            }
        }
    };
}
impl_reader!(Tx);
impl_reader!(Rx);

/// Keys of `table` starting with `prefix`, in order, at most `limit`.
fn prefix_keys<T>(table: &T, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError>
where
    T: ReadableTable<&'static str, &'static [u8]>,
{
    let mut out = Vec::new();
    for entry in table.range(prefix..)? {
        let (key, _) = entry?;
        let key = key.value();
        if !key.starts_with(prefix) || out.len() >= limit {
            break;
        }
        out.push(key.to_owned());
    }
    Ok(out)
}

fn secret_key(owner: &str, name: &str) -> String {
    format!("{owner}/{name}")
}

fn encode<R: Serialize>(record: &R) -> Vec<u8> {
    // Invariant: records are plain structs of strings, numbers and maps with string keys,
    // which serde_json always serializes.
    serde_json::to_vec(record).expect("records serialize to JSON")
}

fn decode<'b, R: serde::Deserialize<'b>>(
    table: TableDefinition<'static, &'static str, &'static [u8]>,
    key: &str,
    bytes: &'b [u8],
) -> Result<R, StoreError> {
    serde_json::from_slice(bytes).map_err(|error| StoreError::Corrupt {
        table: redb::TableHandle::name(&table).to_owned(),
        key: key.to_owned(),
        error,
    })
}

#[cfg(test)]
mod tests;
