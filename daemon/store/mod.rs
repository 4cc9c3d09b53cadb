//! The redb store: typed records, secrets sealed under the master key, and the transaction
//! boundary every multi-record change goes through.
//!
//! All state lives in one file, `<data-dir>/fluxd.redb`. Records are JSON values in per-kind
//! tables keyed by their prefixed id; secondary orderings live in index tables whose values are
//! empty. A change and the events it emits commit in one [`Tx`], run by the writer thread
//! (see `writer`: group commit, nothing on async workers); once it is durable, its events are
//! broadcast in-process and the webhook endpoints that got new deliveries are woken. Reads are
//! snapshots that never wait for a writer.

mod schema;
mod tables;
mod writer;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::clock::Clock;
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
    #[error("the change was committed but could not be made durable: {0}")]
    NotDurable(String),
    #[error("the store is closed")]
    Closed,
    #[error("the change failed unexpectedly and was rolled back")]
    ChangePanicked,
    #[error("the change was rolled back with its transaction: {0}")]
    GroupFailed(String),
    #[error("database file: {0}")]
    Io(String),
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

/// Shared handle to the database; cheap to clone. The last clone to drop stops the writer
/// thread and closes the file.
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    shared: Arc<Shared>,
    /// Changes for the writer thread; `None` once closing, and in a test store that commits
    /// on the caller's thread.
    queue: Option<mpsc::Sender<Box<dyn writer::Change>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the writer thread and the readers share.
struct Shared {
    db: Database,
    key: MasterKey,
    clock: Clock,
    events: broadcast::Sender<Arc<EventRecord>>,
    /// Called after a flush for each webhook endpoint that got new due deliveries.
    wake_endpoint: OnceLock<WakeHook>,
    /// The first write the database could not make (a full disk, an I/O error): redb refuses
    /// every later one until the file is opened again. Watched, so the daemon stops at once.
    failure: watch::Sender<Option<String>>,
}

impl Shared {
    /// Records that the database failed to write.
    pub(super) fn failed(&self, what: &str, error: &dyn std::fmt::Display) {
        self.failure.send_if_modified(|failure| {
            if failure.is_some() {
                return false;
            }
            tracing::error!(%error, what, "the store cannot write");
            *failure = Some(format!("{what}: {error}"));
            true
        });
    }
}

impl Drop for StoreInner {
    fn drop(&mut self) {
        // Closing the queue ends the writer once it has flushed what it holds; waiting for it
        // releases the file, so the same process can open it again.
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Store {
    /// Opens (or creates) `<data_dir>/fluxd.redb`, migrates it to the current schema, checks
    /// that `key` is the key the database was created with, and starts the writer thread.
    pub fn open(data_dir: &Path, key: MasterKey) -> Result<Self, StoreError> {
        let shared = Self::open_shared(data_dir, key, Clock::System)?;
        let (queue, changes) = mpsc::channel(writer::QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("fluxd-store-writer".into())
            .spawn({
                let shared = shared.clone();
                move || writer::run(shared, changes)
            })
            .map_err(|error| StoreError::Io(error.to_string()))?;
        Ok(Store {
            inner: Arc::new(StoreInner {
                shared,
                queue: Some(queue),
                thread: Some(thread),
            }),
        })
    }

    /// A store whose changes commit on the calling task instead of the writer thread, with
    /// `clock` for the times changes schedule by: for tests on tokio's paused time, where a
    /// write must never leave the runtime idle (paused time would jump ahead while the disk
    /// works).
    #[cfg(test)]
    pub fn open_on_caller(data_dir: &Path, key: MasterKey, clock: Clock) -> Result<Self, StoreError> {
        Ok(Store {
            inner: Arc::new(StoreInner {
                shared: Self::open_shared(data_dir, key, clock)?,
                queue: None,
                thread: None,
            }),
        })
    }

    fn open_shared(data_dir: &Path, key: MasterKey, clock: Clock) -> Result<Arc<Shared>, StoreError> {
        // A bounded page cache keeps memory flat however large the database grows.
        let path = data_dir.join(DB_FILE);
        let db = Database::builder().set_cache_size(CACHE_BYTES).create(&path)?;
        restrict_mode(&path)?;
        schema::migrate(&db, &key)?;
        let (events, _) = broadcast::channel(4096);
        Ok(Arc::new(Shared {
            db,
            key,
            clock,
            events,
            wake_endpoint: OnceLock::new(),
            failure: watch::Sender::new(None),
        }))
    }

    /// Hands `change` to the writer thread (or, in a test store without one, commits it here).
    async fn enqueue(&self, change: Box<dyn writer::Change>) -> Result<(), StoreError> {
        match &self.inner.queue {
            Some(queue) => queue.send(change).await.map_err(|_| StoreError::Closed),
            None => {
                writer::commit_group(&self.inner.shared, vec![change]);
                Ok(())
            }
        }
    }

    /// Runs `change` in a write transaction of its own on the writer thread; resolves once it
    /// is durable (or rolled back, when it returns `Err`). Its events are broadcast and the
    /// endpoints it queued deliveries for are woken before this returns.
    pub async fn write<T, E, F>(&self, change: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.submit(change, false).await
    }

    /// [`Store::write`] for a change that fails only when the store does (its only errors are
    /// [`StoreError`]s): it may share a transaction with other such changes, and then commits
    /// or rolls back with them. Many small writes a second (delivery outcomes, accepted
    /// inbound webhooks) cost one transaction per group instead of one each.
    pub async fn write_shared<T, F>(&self, change: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.submit(change, true).await
    }

    async fn submit<T, E, F>(&self, change: F, shared: bool) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Box::new(writer::Pending { change, reply, shared }))
            .await?;
        answer.await.map_err(|_| StoreError::ChangePanicked)?
    }

    /// [`Store::write`] for code that is not async (start-up, command-line tools, tests):
    /// blocks the calling thread. Never call it on an async worker.
    pub fn write_blocking<T, E, F>(&self, change: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let change = Box::new(writer::Pending {
            change,
            reply,
            shared: false,
        });
        match &self.inner.queue {
            Some(queue) => queue.blocking_send(change).map_err(|_| StoreError::Closed)?,
            None => writer::commit_group(&self.inner.shared, vec![change]),
        }
        answer.blocking_recv().map_err(|_| StoreError::ChangePanicked)?
    }

    /// Runs `query` against a consistent snapshot, on the calling thread. Snapshots never wait
    /// for a commit; keep these to point lookups and bounded range scans, and use
    /// [`Store::scan`] for reads that may touch many records.
    pub fn read<T, E>(&self, query: impl FnOnce(&Rx) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let txn = self.inner.shared.db.begin_read().map_err(StoreError::from)?;
        query(&Rx {
            txn,
            key: &self.inner.shared.key,
        })
    }

    /// [`Store::read`] on the blocking pool, for reads of unbounded size.
    pub async fn scan<T, E, F>(&self, query: F) -> Result<T, E>
    where
        F: FnOnce(&Rx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read(query))
            .await
            .map_err(|_| StoreError::ChangePanicked)?
    }

    /// The clock scheduling decisions use.
    pub fn clock(&self) -> Clock {
        self.inner.shared.clock
    }

    /// Why the database can no longer write, once it cannot (until it is opened again).
    pub fn failure(&self) -> Option<String> {
        self.inner.shared.failure.borrow().clone()
    }

    /// Resolves, with why, once the database cannot write (never, while it can).
    pub async fn failed(&self) -> String {
        let mut failures = self.inner.shared.failure.subscribe();
        match failures.wait_for(Option::is_some).await {
            Ok(failure) => failure.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }

    /// Committed events, as they become durable.
    pub fn subscribe_events(&self) -> broadcast::Receiver<Arc<EventRecord>> {
        self.inner.shared.events.subscribe()
    }

    /// Installs the hook that wakes a webhook endpoint's actor after new deliveries commit.
    pub fn set_wake_endpoint_hook(&self, hook: impl Fn(&str) + Send + Sync + 'static) {
        let _ = self.inner.shared.wake_endpoint.set(Box::new(hook));
    }

    /// Re-encrypts every secret under `new_key` in one transaction and records the new key
    /// check. For `fluxd rotate-key`, with the daemon stopped.
    pub fn rotate_master_key(&self, new_key: &MasterKey) -> Result<usize, StoreError> {
        let txn = self.inner.shared.db.begin_write()?;
        let count = schema::reseal_all(&txn, &self.inner.shared.key, new_key)?;
        txn.commit()?;
        Ok(count)
    }
}

/// Makes the database file readable by its owner only (it holds sealed secrets and every
/// record).
fn restrict_mode(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|error| StoreError::Io(error.to_string()))
}

/// Reads shared by [`Tx`] and [`Rx`].
pub trait Reader {
    /// The record `id` of kind `R`, if present.
    fn get<R: Record>(&self, id: &str) -> Result<Option<R>, StoreError>;
    /// Every record of kind `R`, in id order.
    fn list<R: Record>(&self) -> Result<Vec<R>, StoreError>;
    /// Number of records of kind `R`.
    fn count<R: Record>(&self) -> Result<u64, StoreError>;
    /// Keys of record table `table` that start with `prefix`, in order, at most `limit`.
    fn keys_with_prefix(&self, table: BytesTable, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError>;
    /// Keys of record table `table` that start with `prefix` and sort after `after` (all when
    /// `None`), in order, at most `limit`.
    fn keys_after(
        &self,
        table: BytesTable,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;
    /// Keys of `index` that start with `prefix`, in order, at most `limit`.
    fn index_keys(&self, index: IndexTable, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError>;
    /// Number of keys of `index` that start with `prefix`.
    fn index_count(&self, index: IndexTable, prefix: &str) -> Result<u64, StoreError>;
    /// Keys of `index` that start with `prefix`, last first, at most `limit`; with `before`,
    /// only keys sorting before it.
    fn index_keys_rev(
        &self,
        index: IndexTable,
        prefix: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;
    /// Ids of organization `org_id`'s entities of `kind`, in id order, after `after` (an id)
    /// when given, at most `limit`.
    fn org_ids(
        &self,
        kind: OrgKind,
        org_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let prefix = kind.prefix(org_id);
        let start = match after {
            // The first key after `after`: the same key with the lowest character appended.
            Some(after) => format!("{prefix}{after}\u{0}"),
            None => prefix.clone(),
        };
        Ok(self
            .index_keys_from(IndexTable::Org, &prefix, &start, limit)?
            .into_iter()
            .map(|key| key[prefix.len()..].to_owned())
            .collect())
    }
    /// Organization `org_id`'s records of `kind`, in id order, after `after` when given, at
    /// most `limit`.
    fn org_records<R: Record>(
        &self,
        kind: OrgKind,
        org_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<R>, StoreError> {
        let mut records = Vec::new();
        for id in self.org_ids(kind, org_id, after, limit)? {
            records.extend(self.get::<R>(&id)?);
        }
        Ok(records)
    }
    /// How many entities of `kind` organization `org_id` has.
    fn org_count(&self, kind: OrgKind, org_id: &str) -> Result<u64, StoreError> {
        self.index_count(IndexTable::Org, &kind.prefix(org_id))
    }
    /// Keys of `index` that start with `prefix`, from `start` on, in order, at most `limit`.
    fn index_keys_from(
        &self,
        index: IndexTable,
        prefix: &str,
        start: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;
    /// The secret `name` of record `owner`, decrypted.
    fn secret(&self, owner: &str, name: &str) -> Result<Option<Secret>, StoreError>;
    /// A value of the `meta` table.
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
}

/// A write transaction. Dropping it without [`Store::write`] returning `Ok` aborts it.
pub struct Tx<'s> {
    txn: redb::WriteTransaction,
    key: &'s MasterKey,
    clock: Clock,
    events: Vec<Arc<EventRecord>>,
    woken: BTreeSet<String>,
}

/// A read snapshot.
pub struct Rx<'s> {
    txn: redb::ReadTransaction,
    key: &'s MasterKey,
}

impl Tx<'_> {
    /// The store's clock, for times a change schedules by.
    pub fn clock(&self) -> Clock {
        self.clock
    }

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

    /// Lists entity `id` among organization `org_id`'s entities of `kind`.
    pub fn index_org(&mut self, kind: OrgKind, org_id: &str, id: &str) -> Result<(), StoreError> {
        self.index_insert(IndexTable::Org, &format!("{}{id}", kind.prefix(org_id)))
    }

    /// Takes entity `id` off organization `org_id`'s list of `kind`.
    pub fn unindex_org(&mut self, kind: OrgKind, org_id: &str, id: &str) -> Result<(), StoreError> {
        self.index_remove(IndexTable::Org, &format!("{}{id}", kind.prefix(org_id)))
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

            fn keys_with_prefix(
                &self,
                table: BytesTable,
                prefix: &str,
                limit: usize,
            ) -> Result<Vec<String>, StoreError> {
                prefix_keys(&self.txn.open_table(table)?, prefix, prefix, limit)
            }

            fn keys_after(
                &self,
                table: BytesTable,
                prefix: &str,
                after: Option<&str>,
                limit: usize,
            ) -> Result<Vec<String>, StoreError> {
                // The first key after `after`: the same key with the lowest character appended.
                let start = after.map_or_else(|| prefix.to_owned(), |after| format!("{after}\u{0}"));
                prefix_keys(&self.txn.open_table(table)?, prefix, &start, limit)
            }

            fn index_keys(&self, index: IndexTable, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
                prefix_keys(&self.txn.open_table(index.definition())?, prefix, prefix, limit)
            }

            fn index_keys_from(
                &self,
                index: IndexTable,
                prefix: &str,
                start: &str,
                limit: usize,
            ) -> Result<Vec<String>, StoreError> {
                prefix_keys(&self.txn.open_table(index.definition())?, prefix, start, limit)
            }

            fn index_count(&self, index: IndexTable, prefix: &str) -> Result<u64, StoreError> {
                let table = self.txn.open_table(index.definition())?;
                let mut count = 0;
                for entry in table.range(prefix..)? {
                    if !entry?.0.value().starts_with(prefix) {
                        break;
                    }
                    count += 1;
                }
                Ok(count)
            }

            fn index_keys_rev(
                &self,
                index: IndexTable,
                prefix: &str,
                before: Option<&str>,
                limit: usize,
            ) -> Result<Vec<String>, StoreError> {
                prefix_keys_rev(&self.txn.open_table(index.definition())?, prefix, before, limit)
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

/// Keys of `table` starting with `prefix`, from `start` on, in order, at most `limit`.
fn prefix_keys<T>(table: &T, prefix: &str, start: &str, limit: usize) -> Result<Vec<String>, StoreError>
where
    T: ReadableTable<&'static str, &'static [u8]>,
{
    let mut out = Vec::new();
    for entry in table.range(start.max(prefix)..)? {
        let (key, _) = entry?;
        let key = key.value();
        if !key.starts_with(prefix) || out.len() >= limit {
            break;
        }
        out.push(key.to_owned());
    }
    Ok(out)
}

/// Keys of `table` starting with `prefix` (and before `before`, when given), last first, at
/// most `limit`.
fn prefix_keys_rev<T>(table: &T, prefix: &str, before: Option<&str>, limit: usize) -> Result<Vec<String>, StoreError>
where
    T: ReadableTable<&'static str, &'static [u8]>,
{
    // Every key with the prefix sorts below the prefix followed by the highest code point.
    let end = match before {
        Some(before) if before.starts_with(prefix) => before.to_owned(),
        _ => format!("{prefix}\u{10FFFF}"),
    };
    let mut out = Vec::new();
    for entry in table.range(prefix..end.as_str())?.rev() {
        if out.len() >= limit {
            break;
        }
        out.push(entry?.0.value().to_owned());
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
