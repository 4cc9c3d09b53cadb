//! The PostgreSQL engine, for many nodes on one database: the same tables as the embedded
//! engine (one per record kind and index, `key text COLLATE "C"` ordered like redb's keys, the
//! record in `body`), reached through a bounded connection pool.
//!
//! Writes are serialized cluster-wide by a transaction-scoped advisory lock: each write
//! transaction takes it first, so read-modify-write changes behave exactly as on the embedded
//! engine's single writer, whichever node makes them. Reads are REPEATABLE READ snapshots
//! that never wait for the lock. A commit that queued deliveries notifies the other nodes
//! (`NOTIFY fluxd_wake`) in the same transaction.

mod listen;
mod schema;
mod txn;

use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

use postgres::{NoTls, Statement};

pub(super) use txn::{ReadTxn, WriteTxn};

use super::{Shared, StoreError};
use crate::crypto::MasterKey;

/// Connections one node keeps at most for reads and the lease keeper …
const POOL_SIZE: u32 = 16;
/// … and for its writer thread (and `rotate-key`), apart, so that busy readers never keep the
/// writer waiting.
const WRITER_POOL_SIZE: u32 = 2;
/// How long a reader waits for a free connection before the read fails.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A session idle this long inside a transaction is ended by the server: a node frozen or cut
/// off while holding the cluster's write lock cannot hold up the others for longer.
const IDLE_IN_TRANSACTION_MS: u32 = 5000;

/// The notification channel nodes tell each other news on.
const WAKE_CHANNEL: &str = "fluxd_wake";

/// What a notification tells the other nodes about the ids it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// These webhook endpoints have new deliveries.
    Wake,
    /// These sync jobs changed (their watchers read them again).
    Job,
    /// A user cancelled these sync jobs (the node running them stops them).
    Cancel,
    /// These entities (`<kind>:<id>`) changed or were deleted through another node: the node
    /// running their actors reloads or stops them.
    Entity,
}

impl Notice {
    fn as_str(self) -> &'static str {
        match self {
            Notice::Wake => "wake",
            Notice::Job => "job",
            Notice::Cancel => "cancel",
            Notice::Entity => "entity",
        }
    }

    fn parse(text: &str) -> Option<Notice> {
        [Notice::Wake, Notice::Job, Notice::Cancel, Notice::Entity]
            .into_iter()
            .find(|notice| notice.as_str() == text)
    }
}

/// A pooled connection and the statements prepared on it.
pub struct Conn {
    pub client: postgres::Client,
    statements: HashMap<String, Statement>,
}

impl Conn {
    /// `sql` prepared on this connection (once per connection).
    pub fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

/// Opens pool connections (for the pool only).
pub struct Manager {
    config: postgres::Config,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Conn, postgres::Error> {
        Ok(Conn {
            client: self.config.connect(NoTls)?,
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.client.is_closed()
    }
}

/// A pooled connection.
pub type Pooled = r2d2::PooledConnection<Manager>;

/// One node's handle to the database.
pub struct Database {
    /// Always `Some` until dropped.
    pool: Option<r2d2::Pool<Manager>>,
    /// Always `Some` until dropped.
    writer_pool: Option<r2d2::Pool<Manager>>,
    config: postgres::Config,
    /// This process's id among the nodes: notifications it sent itself are skipped.
    node_id: String,
}

impl Database {
    /// Connects to `url` and brings the schema to the current version under an advisory lock
    /// (the first node to start migrates; the others wait for it).
    pub fn open(url: &str, key: &MasterKey, node_id: &str) -> Result<Self, StoreError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|error: postgres::Error| StoreError::Postgres(format!("the store URL is not valid: {error}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("fluxd");
        config.options(&format!(
            "-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"
        ));
        let pool = |size: u32| {
            r2d2::Pool::builder()
                .max_size(size)
                .min_idle(Some(1))
                .connection_timeout(POOL_WAIT)
                .error_handler(Box::new(r2d2::LoggingErrorHandler))
                .build(Manager { config: config.clone() })
        };
        let (readers, writer) = (pool(POOL_SIZE)?, pool(WRITER_POOL_SIZE)?);
        schema::migrate(&mut *writer.get()?, key)?;
        Ok(Database {
            pool: Some(readers),
            writer_pool: Some(writer),
            config,
            node_id: node_id.to_owned(),
        })
    }

    /// A connection from the pool, for the cluster's own tables.
    pub fn connection(&self) -> Result<Pooled, StoreError> {
        match &self.pool {
            Some(pool) => Ok(pool.get()?),
            None => Err(StoreError::Closed),
        }
    }

    pub(super) fn begin_read(&self) -> Result<ReadTxn, StoreError> {
        ReadTxn::begin(self.connection()?)
    }

    pub(super) fn begin_write(&self) -> Result<WriteTxn, StoreError> {
        let writer = self.writer_pool.as_ref().ok_or(StoreError::Closed)?;
        WriteTxn::begin(writer.get()?, &self.node_id)
    }

    /// Tells the other nodes `notice` about `ids`, now (outside any transaction).
    pub(super) fn announce(&self, notice: Notice, ids: &[String]) -> Result<(), StoreError> {
        let mut conn = self.connection()?;
        for payload in txn::payloads(&self.node_id, notice, ids) {
            let statement = conn.statement("SELECT pg_notify($1, $2)")?;
            conn.client.execute(&statement, &[&WAKE_CHANNEL, &payload])?;
        }
        Ok(())
    }

    /// Listens for other nodes' wake-ups and passes them to `shared`'s hook, until the store
    /// closes.
    pub(super) fn listen(&self, shared: Weak<Shared>) -> Result<(), StoreError> {
        listen::start(self.config.clone(), self.node_id.clone(), shared)
    }

    /// The schema version the database is at (for `fluxd migrate`'s report).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        schema::version(&mut *self.connection()?)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // Closing a connection blocks on its own small runtime, which must not happen on an
        // async worker (the last store handle may drop there).
        let pools = (self.pool.take(), self.writer_pool.take());
        let _ = std::thread::Builder::new()
            .name("fluxd-store-close".into())
            .spawn(move || drop(pools));
    }
}

impl From<postgres::Error> for StoreError {
    fn from(error: postgres::Error) -> Self {
        StoreError::Postgres(error.to_string())
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(error: r2d2::Error) -> Self {
        StoreError::Postgres(format!("no database connection: {error}"))
    }
}
