//! The store: typed records, secrets sealed under the master key, and the transaction
//! boundary every multi-record change goes through, on either engine — one redb file
//! (`<data-dir>/fluxd.redb`, the default) or a PostgreSQL database many nodes share.
//!
//! Records are JSON values in per-kind tables keyed by their prefixed id; secondary orderings
//! live in index tables whose values are empty. A change and the events it emits commit in
//! one [`Tx`], run by the writer thread (see `writer`: group commit, nothing on async
//! workers); once it is durable, its events are broadcast in-process and the webhook
//! endpoints that got new deliveries are woken (on every node). Reads are snapshots that
//! never wait for a writer.

mod embedded;
pub mod postgres;
mod raw;
mod schema;
mod tables;
mod writer;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use redb::TableDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::clock::Clock;
use crate::crypto::{CryptoError, MasterKey, Secret};
use crate::events::EventRecord;

pub use embedded::DB_FILE;
use raw::{RawRead, RawWrite, Start, prefix_end};
pub use schema::SCHEMA_VERSION;
pub use tables::*;

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
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    #[error("this node no longer holds the lease of organization {0}: the write was refused")]
    Fenced(String),
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
type JobNewsHook = Box<dyn Fn(postgres::Notice, &str) + Send + Sync>;
type EntityNewsHook = Box<dyn Fn(&str) + Send + Sync>;

/// Shared handle to the database; cheap to clone. The last clone to drop stops the writer
/// thread and closes the file.
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
    /// Writes through this handle commit only while this lease holds (see [`Store::fenced`]).
    fence: Option<Arc<Fence>>,
}

/// A lease the writes of an organization's work are made under (cluster mode): they commit
/// only while the organization's lease is still this node's, at this generation, and
/// unexpired — a node that lost it (paused past its term, cut off) cannot overwrite what the
/// new owner does.
#[derive(Debug, Clone)]
pub struct Fence {
    pub org_id: String,
    pub generation: i64,
    /// When this node last renewed the lease (its keeper updates it) …
    pub renewed: Arc<std::sync::Mutex<std::time::Instant>>,
    /// … and how long after that it counts on still holding it (two thirds of the term).
    pub trusted_for: std::time::Duration,
}

impl Fence {
    /// Whether this node may still count on the lease by its own clock: a node frozen past
    /// that (paused, cut off) stops before its next provider write, not only at its next
    /// store write.
    pub fn fresh(&self) -> bool {
        let renewed = *self.renewed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        renewed.elapsed() < self.trusted_for
    }
}

struct StoreInner {
    shared: Arc<Shared>,
    /// Changes for the writer thread; `None` once closing, and in a test store that commits
    /// on the caller's thread.
    queue: Option<mpsc::Sender<Box<dyn writer::Change>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Where the state lives.
pub(crate) enum Engine {
    Embedded(redb::Database),
    Postgres(Box<postgres::Database>),
}

/// Where to open the store: a data dir's redb file, or a PostgreSQL URL.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Embedded(std::path::PathBuf),
    /// The URL (it may carry a password: never printed).
    Postgres(String),
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Embedded(dir) => f.debug_tuple("Embedded").field(dir).finish(),
            Location::Postgres(_) => f.write_str("Postgres(<url>)"),
        }
    }
}

impl Engine {
    fn begin_read(&self) -> Result<Box<dyn RawRead>, StoreError> {
        Ok(match self {
            Engine::Embedded(db) => Box::new(embedded::begin_read(db)?),
            Engine::Postgres(db) => Box::new(db.begin_read()?),
        })
    }

    fn begin_write(&self, durable: bool) -> Result<Box<dyn RawWrite>, StoreError> {
        Ok(match self {
            Engine::Embedded(db) => Box::new(embedded::begin_write(db, durable)?),
            // Every PostgreSQL commit is durable (synchronous_commit as the server has it).
            Engine::Postgres(db) => Box::new(db.begin_write()?),
        })
    }

    /// Makes every change committed so far durable.
    fn flush(&self) -> Result<(), StoreError> {
        match self {
            Engine::Embedded(db) => embedded::flush(db),
            Engine::Postgres(_) => Ok(()),
        }
    }
}

/// A handle that does not keep the store open (for hooks the store itself holds).
#[derive(Clone)]
pub struct WeakStore {
    inner: std::sync::Weak<StoreInner>,
}

impl WeakStore {
    /// The store, while it is open.
    pub fn upgrade(&self) -> Option<Store> {
        self.inner.upgrade().map(|inner| Store { inner, fence: None })
    }
}

/// What the writer thread and the readers share.
struct Shared {
    engine: Engine,
    key: MasterKey,
    clock: Clock,
    events: broadcast::Sender<Arc<EventRecord>>,
    /// Called after a flush for each webhook endpoint that got new due deliveries.
    wake_endpoint: OnceLock<WakeHook>,
    /// Called for news of sync jobs from other nodes (cluster mode).
    job_news: OnceLock<JobNewsHook>,
    /// Called with `<kind>:<id>` of entities other nodes changed (cluster mode).
    entity_news: OnceLock<EntityNewsHook>,
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
        Self::open_at(&Location::Embedded(data_dir.to_owned()), key, "local")
    }

    /// Opens the store at `location` (migrating it) as node `node_id`, and starts the writer
    /// thread (and, on PostgreSQL, the thread hearing other nodes' wake-ups).
    pub fn open_at(location: &Location, key: MasterKey, node_id: &str) -> Result<Self, StoreError> {
        let engine = blocking_section(|| Self::open_engine(location, &key, node_id))?;
        let shared = Self::shared(engine, key, Clock::System);
        if let Engine::Postgres(db) = &shared.engine {
            db.listen(Arc::downgrade(&shared))?;
        }
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
            fence: None,
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
                shared: Self::shared(Engine::Embedded(embedded::open(data_dir, &key)?), key, clock),
                queue: None,
                thread: None,
            }),
            fence: None,
        })
    }

    fn open_engine(location: &Location, key: &MasterKey, node_id: &str) -> Result<Engine, StoreError> {
        Ok(match location {
            Location::Embedded(data_dir) => Engine::Embedded(embedded::open(data_dir, key)?),
            Location::Postgres(url) => Engine::Postgres(Box::new(postgres::Database::open(url, key, node_id)?)),
        })
    }

    fn shared(engine: Engine, key: MasterKey, clock: Clock) -> Arc<Shared> {
        let (events, _) = broadcast::channel(4096);
        Arc::new(Shared {
            engine,
            key,
            clock,
            events,
            wake_endpoint: OnceLock::new(),
            job_news: OnceLock::new(),
            entity_news: OnceLock::new(),
            failure: watch::Sender::new(None),
        })
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
        let fence = self.fence.clone();
        self.enqueue(Box::new(writer::Pending {
            change,
            reply,
            shared,
            fence,
        }))
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
            fence: self.fence.clone(),
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
        let shared = &self.inner.shared;
        let run = || {
            let raw = shared.engine.begin_read()?;
            query(&Rx { raw, key: &shared.key })
        };
        match &shared.engine {
            Engine::Embedded(_) => run(),
            // Database round trips: hand this worker's other tasks to another worker first.
            Engine::Postgres(_) => blocking_section(run),
        }
    }

    /// The PostgreSQL database, when the store is on one (for the cluster's own tables).
    pub fn postgres(&self) -> Option<&postgres::Database> {
        match &self.inner.shared.engine {
            Engine::Postgres(db) => Some(db),
            Engine::Embedded(_) => None,
        }
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

    /// This store, with every write made through the returned handle fenced by `fence` (when
    /// there is one: cluster mode).
    pub fn fenced(&self, fence: Option<Fence>) -> Store {
        Store {
            inner: self.inner.clone(),
            fence: fence.map(Arc::new),
        }
    }

    /// Whether the lease this handle's writes are fenced by is still fresh by this node's
    /// clock (always, without a fence). Checked before writes that leave the store (to a
    /// provider), which the store cannot refuse later.
    pub fn lease_fresh(&self) -> bool {
        self.fence.as_ref().is_none_or(|fence| fence.fresh())
    }

    /// A handle that does not keep the store open.
    pub fn downgrade(&self) -> WeakStore {
        WeakStore {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// The clock scheduling decisions use.
    pub fn clock(&self) -> Clock {
        self.inner.shared.clock
    }

    /// Seals `plaintext` for `owner` under the store's master key, for a value kept outside
    /// the store (the web console's session cookie): every node of a cluster can open it.
    pub fn seal_outside(&self, owner: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.shared.key.seal(owner, plaintext)
    }

    /// Opens a value [`Store::seal_outside`] sealed for `owner`.
    pub fn open_outside(&self, owner: &str, sealed: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
        self.inner.shared.key.open(owner, sealed)
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

    /// Installs the hook that hears of sync jobs other nodes changed or were asked to cancel.
    pub fn set_job_news_hook(&self, hook: impl Fn(postgres::Notice, &str) + Send + Sync + 'static) {
        let _ = self.inner.shared.job_news.set(Box::new(hook));
    }

    /// Installs the hook that hears of entities (`<kind>:<id>`) other nodes changed.
    pub fn set_entity_news_hook(&self, hook: impl Fn(&str) + Send + Sync + 'static) {
        let _ = self.inner.shared.entity_news.set(Box::new(hook));
    }

    /// Tells the other nodes sharing the database `notice` about `ids` (nothing to tell on the
    /// embedded engine: one node). Best effort: a lost notice delays a watcher, nothing more.
    pub fn announce(&self, notice: postgres::Notice, ids: &[String]) {
        if let Engine::Postgres(db) = &self.inner.shared.engine
            && let Err(error) = blocking_section(|| db.announce(notice, ids))
        {
            tracing::warn!(%error, ?notice, "could not tell the other nodes");
        }
    }

    /// Re-encrypts every secret under `new_key` in one transaction and records the new key
    /// check. For `fluxd rotate-key`, with the daemon stopped.
    pub fn rotate_master_key(&self, new_key: &MasterKey) -> Result<usize, StoreError> {
        let mut txn = self.inner.shared.engine.begin_write(true)?;
        let count = schema::reseal_all(txn.as_mut(), &self.inner.shared.key, new_key)?;
        txn.commit(&BTreeSet::new())?;
        Ok(count)
    }
}

/// Runs `work` (blocking I/O) on an async worker of a multi-thread runtime without stalling
/// the tasks queued behind it; elsewhere (plain threads, the blocking pool) just runs it. The
/// PostgreSQL client blocks on a runtime of its own, so a PostgreSQL store is not for
/// current-thread runtimes (fluxd runs a multi-thread one).
fn blocking_section<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// Reads shared by [`Tx`] and [`Rx`].
pub trait Reader {
    /// The engine's reads of this transaction or snapshot.
    #[doc(hidden)]
    fn raw(&self) -> &dyn RawRead;
    /// The key secrets are sealed under.
    #[doc(hidden)]
    fn master_key(&self) -> &MasterKey;

    /// The record `id` of kind `R`, if present.
    fn get<R: Record>(&self, id: &str) -> Result<Option<R>, StoreError> {
        self.raw()
            .raw_get(R::TABLE, id)?
            .map(|bytes| decode(R::TABLE, id, &bytes))
            .transpose()
    }
    /// Every record of kind `R`, in id order.
    fn list<R: Record>(&self) -> Result<Vec<R>, StoreError> {
        self.raw()
            .raw_scan(R::TABLE, "", Start::At(""), usize::MAX, true)?
            .iter()
            .map(|(key, bytes)| decode(R::TABLE, key, bytes))
            .collect()
    }
    /// Number of records of kind `R`.
    fn count<R: Record>(&self) -> Result<u64, StoreError> {
        self.raw().raw_count(R::TABLE, "")
    }
    /// Keys of record table `table` that start with `prefix`, in order, at most `limit`.
    fn keys_with_prefix(&self, table: BytesTable, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        keys(self.raw(), table, prefix, Start::At(prefix), limit)
    }
    /// Keys of record table `table` that start with `prefix` and sort after `after` (all when
    /// `None`), in order, at most `limit`.
    fn keys_after(
        &self,
        table: BytesTable,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let start = after.map_or(Start::At(prefix), Start::After);
        keys(self.raw(), table, prefix, start, limit)
    }
    /// Keys of `index` that start with `prefix`, in order, at most `limit`.
    fn index_keys(&self, index: IndexTable, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        keys(self.raw(), index.definition(), prefix, Start::At(prefix), limit)
    }
    /// Number of keys of `index` that start with `prefix`.
    fn index_count(&self, index: IndexTable, prefix: &str) -> Result<u64, StoreError> {
        self.raw().raw_count(index.definition(), prefix)
    }
    /// Keys of `index` that start with `prefix`, last first, at most `limit`; with `before`,
    /// only keys sorting before it.
    fn index_keys_rev(
        &self,
        index: IndexTable,
        prefix: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let end = match before {
            Some(before) if before.starts_with(prefix) => before.to_owned(),
            _ => prefix_end(prefix),
        };
        self.raw().raw_scan_rev(index.definition(), prefix, &end, limit)
    }
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
        let after = after.map(|after| format!("{prefix}{after}"));
        let start = after.as_deref().map_or(Start::At(&prefix), Start::After);
        Ok(keys(self.raw(), IndexTable::Org.definition(), &prefix, start, limit)?
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
    /// The secret `name` of record `owner`, decrypted.
    fn secret(&self, owner: &str, name: &str) -> Result<Option<Secret>, StoreError> {
        let key = secret_key(owner, name);
        let Some(sealed) = self.raw().raw_get(SECRETS, &key)? else {
            return Ok(None);
        };
        let plain = self.master_key().open(&key, &sealed)?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| CryptoError::Open { owner: key })?;
        Ok(Some(Secret::new(text)))
    }
    /// A value of the `meta` table.
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.raw().raw_get(META, key)
    }
}

/// Keys of `table` starting with `prefix`, from `start` on, at most `limit`.
fn keys(
    raw: &dyn RawRead,
    table: BytesTable,
    prefix: &str,
    start: Start<'_>,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    Ok(raw
        .raw_scan(table, prefix, start, limit, false)?
        .into_iter()
        .map(|(key, _)| key)
        .collect())
}

/// A write transaction. Dropping it without [`Store::write`] returning `Ok` aborts it.
pub struct Tx<'s> {
    raw: Box<dyn RawWrite>,
    key: &'s MasterKey,
    clock: Clock,
    events: Vec<Arc<EventRecord>>,
    woken: BTreeSet<String>,
}

/// A read snapshot.
pub struct Rx<'s> {
    raw: Box<dyn RawRead>,
    key: &'s MasterKey,
}

impl Reader for Tx<'_> {
    fn raw(&self) -> &dyn RawRead {
        self.raw.as_ref()
    }

    fn master_key(&self) -> &MasterKey {
        self.key
    }
}

impl Reader for Rx<'_> {
    fn raw(&self) -> &dyn RawRead {
        self.raw.as_ref()
    }

    fn master_key(&self) -> &MasterKey {
        self.key
    }
}

impl Tx<'_> {
    /// The store's clock, for times a change schedules by.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Inserts or replaces `record`.
    pub fn put<R: Record>(&mut self, record: &R) -> Result<(), StoreError> {
        self.raw.raw_insert(R::TABLE, record.id(), &encode(record))
    }

    /// Removes record `id`, returning it if it existed.
    pub fn remove<R: Record>(&mut self, id: &str) -> Result<Option<R>, StoreError> {
        self.raw
            .raw_remove(R::TABLE, id)?
            .map(|bytes| decode(R::TABLE, id, &bytes))
            .transpose()
    }

    /// Adds `key` to `index`.
    pub fn index_insert(&mut self, index: IndexTable, key: &str) -> Result<(), StoreError> {
        self.raw.raw_insert(index.definition(), key, &[])
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
        self.raw.raw_remove(index.definition(), key).map(drop)
    }

    /// Seals and stores secret `name` of record `owner`.
    pub fn put_secret(&mut self, owner: &str, name: &str, secret: &Secret) -> Result<(), StoreError> {
        let key = secret_key(owner, name);
        let sealed = self.key.seal(&key, secret.expose().as_bytes())?;
        self.raw.raw_insert(SECRETS, &key, &sealed)
    }

    /// Removes secret `name` of record `owner`.
    pub fn remove_secret(&mut self, owner: &str, name: &str) -> Result<(), StoreError> {
        self.raw.raw_remove(SECRETS, &secret_key(owner, name)).map(drop)
    }

    /// Removes the record at `key` of `table`, whatever its kind.
    pub fn remove_key(&mut self, table: BytesTable, key: &str) -> Result<(), StoreError> {
        self.raw.raw_remove(table, key).map(drop)
    }

    /// Sets a value of the `meta` table.
    pub fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.raw.raw_insert(META, key, value)
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
