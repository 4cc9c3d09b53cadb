//! The embedded engine: one redb file in the data dir, the default for a single node.

use std::collections::BTreeSet;
use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::raw::{Entry, RawRead, RawWrite, Start};
use super::{BytesTable, Fence, StoreError};
use crate::crypto::MasterKey;

/// redb's page cache; the OS page cache serves the rest.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Name of the database file inside the data dir.
pub const DB_FILE: &str = "fluxd.redb";

/// Opens (or creates) `<data_dir>/fluxd.redb` and migrates it to the current schema.
pub(super) fn open(data_dir: &Path, key: &MasterKey) -> Result<Database, StoreError> {
    // A bounded page cache keeps memory flat however large the database grows.
    let path = data_dir.join(DB_FILE);
    let db = Database::builder().set_cache_size(CACHE_BYTES).create(&path)?;
    restrict_mode(&path)?;
    super::schema::migrate(&db, key)?;
    Ok(db)
}

/// Makes the database file readable by its owner only (it holds sealed secrets and every
/// record).
fn restrict_mode(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|error| StoreError::Io(error.to_string()))
}

/// A snapshot.
pub(super) struct ReadTxn(pub redb::ReadTransaction);

/// A write transaction, flushed at commit when it was begun durable.
pub(super) struct WriteTxn(pub redb::WriteTransaction);

/// Begins a snapshot.
pub(super) fn begin_read(db: &Database) -> Result<ReadTxn, StoreError> {
    Ok(ReadTxn(db.begin_read()?))
}

/// Begins a write transaction; a non-durable one is made durable by a later durable commit.
pub(super) fn begin_write(db: &Database, durable: bool) -> Result<WriteTxn, StoreError> {
    let mut txn = db.begin_write()?;
    let durability = if durable {
        Durability::Immediate
    } else {
        Durability::None
    };
    txn.set_durability(durability)
        .map_err(|error| StoreError::NotDurable(error.to_string()))?;
    Ok(WriteTxn(txn))
}

/// Makes every change committed so far durable.
pub(super) fn flush(db: &Database) -> Result<(), StoreError> {
    begin_write(db, true)?.0.commit()?;
    Ok(())
}

/// Keys (and values, when `values`) of `table` starting with `prefix`, from `start` on.
fn scan<T>(table: &T, prefix: &str, start: Start<'_>, limit: usize, values: bool) -> Result<Vec<Entry>, StoreError>
where
    T: ReadableTable<&'static str, &'static [u8]>,
{
    let (from, skip) = match start {
        Start::At(key) => (key.max(prefix), None),
        Start::After(key) => (key.max(prefix), Some(key)),
    };
    let mut out = Vec::new();
    for entry in table.range(from..)? {
        let (key, value) = entry?;
        let key = key.value();
        if skip == Some(key) {
            continue;
        }
        if !key.starts_with(prefix) || out.len() >= limit {
            break;
        }
        let value = if values { value.value().to_vec() } else { Vec::new() };
        out.push((key.to_owned(), value));
    }
    Ok(out)
}

fn scan_rev<T>(table: &T, prefix: &str, end: &str, limit: usize) -> Result<Vec<String>, StoreError>
where
    T: ReadableTable<&'static str, &'static [u8]>,
{
    let mut out = Vec::new();
    for entry in table.range(prefix..end)?.rev() {
        if out.len() >= limit {
            break;
        }
        out.push(entry?.0.value().to_owned());
    }
    Ok(out)
}

fn count<T>(table: &T, prefix: &str) -> Result<u64, StoreError>
where
    T: ReadableTable<&'static str, &'static [u8]> + ReadableTableMetadata,
{
    if prefix.is_empty() {
        return Ok(table.len()?);
    }
    let mut count = 0;
    for entry in table.range(prefix..)? {
        if !entry?.0.value().starts_with(prefix) {
            break;
        }
        count += 1;
    }
    Ok(count)
}

macro_rules! impl_raw_read {
    ($ty:ident) => {
        impl RawRead for $ty {
            fn raw_get(&self, table: BytesTable, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
                Ok(self
                    .0
                    .open_table(table)?
                    .get(key)?
                    .map(|guard| guard.value().to_vec()))
            }

            fn raw_scan(
                &self,
                table: BytesTable,
                prefix: &str,
                start: Start<'_>,
                limit: usize,
                values: bool,
            ) -> Result<Vec<Entry>, StoreError> {
                scan(&self.0.open_table(table)?, prefix, start, limit, values)
            }

            fn raw_scan_rev(
                &self,
                table: BytesTable,
                prefix: &str,
                end: &str,
                limit: usize,
            ) -> Result<Vec<String>, StoreError> {
                scan_rev(&self.0.open_table(table)?, prefix, end, limit)
            }

            fn raw_count(&self, table: BytesTable, prefix: &str) -> Result<u64, StoreError> {
                count(&self.0.open_table(table)?, prefix)
            }
        }
    };
}
impl_raw_read!(ReadTxn);
impl_raw_read!(WriteTxn);

impl RawWrite for WriteTxn {
    fn raw_insert(&mut self, table: BytesTable, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.0.open_table(table)?.insert(key, value)?;
        Ok(())
    }

    fn raw_remove(&mut self, table: BytesTable, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut table = self.0.open_table(table)?;
        let removed = table.remove(key)?;
        Ok(removed.map(|guard| guard.value().to_vec()))
    }

    fn holds(&self, _fence: &Fence) -> Result<bool, StoreError> {
        // One process owns the file.
        Ok(true)
    }

    fn commit(self: Box<Self>, _woken: &BTreeSet<String>) -> Result<(), StoreError> {
        // One process owns the file: its own writer wakes its endpoints.
        self.0.commit()?;
        Ok(())
    }
}
