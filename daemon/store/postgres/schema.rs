//! The PostgreSQL schema: every table of the store, the cluster's node and lease tables, and
//! the version, created or upgraded at start by whichever node takes the migration lock first.

//!
//! A new database starts at the current [`SCHEMA_VERSION`] (the embedded engine's earlier
//! versions predate PostgreSQL support); steps after it are to be written once, over the
//! raw table operations, for both engines.

use std::collections::BTreeSet;

use super::Conn;
use super::txn::WriteTxn;
use crate::crypto::MasterKey;
use crate::store::raw::RawWrite;
use crate::store::schema::{SCHEMA_VERSION, record_version_and_check_key};
use crate::store::{IndexTable, META, RECORD_TABLES, StoreError};

/// The session advisory lock held while migrating ("fluxd", 2).
const MIGRATE_LOCK: i64 = 0x666c_7578_6400_0002;

const CLUSTER_TABLES: &str = "
CREATE TABLE IF NOT EXISTS cluster_nodes (
    node_id text COLLATE \"C\" PRIMARY KEY,
    grpc_address text NOT NULL,
    http_address text NOT NULL,
    started_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    stopped_at timestamptz
);
CREATE TABLE IF NOT EXISTS cluster_leases (
    org_id text COLLATE \"C\" PRIMARY KEY,
    owner text COLLATE \"C\",
    generation bigint NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS cluster_leases_owner ON cluster_leases (owner);
CREATE TABLE IF NOT EXISTS cluster_lease_log (
    id bigserial PRIMARY KEY,
    org_id text NOT NULL,
    owner text NOT NULL,
    generation bigint NOT NULL,
    event text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
";

/// Creates what is missing and checks the master key, holding the migration lock.
pub(super) fn migrate(conn: &mut Conn, key: &MasterKey) -> Result<(), StoreError> {
    conn.client
        .batch_execute(&format!("SELECT pg_advisory_lock({MIGRATE_LOCK})"))?;
    let result = migrate_locked(conn, key);
    let unlocked = conn
        .client
        .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATE_LOCK})"));
    result?;
    unlocked?;
    Ok(())
}

fn migrate_locked(conn: &mut Conn, key: &MasterKey) -> Result<(), StoreError> {
    let mut ddl = String::from("SET client_min_messages = warning;\n");
    let tables = RECORD_TABLES
        .iter()
        .copied()
        .chain(IndexTable::ALL.iter().map(|index| index.definition()));
    for table in tables {
        ddl.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {} (key text COLLATE \"C\" PRIMARY KEY, body bytea NOT NULL);\n",
            redb::TableHandle::name(&table)
        ));
    }
    ddl.push_str(CLUSTER_TABLES);
    conn.client.batch_execute(&ddl)?;
    let found = read_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == 0 {
        tracing::info!(version = SCHEMA_VERSION, "created the PostgreSQL store schema");
    }
    let mut txn = Box::new(WriteTxn::begin(conn, "migration")?);
    record_version_and_check_key(txn.as_mut(), key)?;
    txn.commit(&BTreeSet::new())
}

fn read_version(conn: &mut Conn) -> Result<u32, StoreError> {
    let rows = conn.client.query(
        &format!(
            "SELECT body FROM {} WHERE key = 'schema_version'",
            redb::TableHandle::name(&META)
        ),
        &[],
    )?;
    Ok(rows
        .first()
        .and_then(|row| <[u8; 4]>::try_from(row.get::<_, Vec<u8>>(0)).ok())
        .map_or(0, u32::from_be_bytes))
}

/// The schema version the database is at.
pub(super) fn version(conn: &mut Conn) -> Result<u32, StoreError> {
    read_version(conn)
}
