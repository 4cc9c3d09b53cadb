//! Schema versioning: table creation, migrations between versions, and the master-key check.

use redb::{Database, ReadableDatabase, ReadableTable};

use super::{IndexTable, META, RECORD_TABLES, SECRETS, StoreError};
use crate::crypto::MasterKey;

/// The schema this build writes. Bump it and add a step to [`migrate_step`] when a stored
/// shape changes.
pub const SCHEMA_VERSION: u32 = 1;

const VERSION_KEY: &str = "schema_version";
const KEY_CHECK_KEY: &str = "key_check";
const KEY_CHECK_PLAINTEXT: &[u8] = b"fluxcascade master key check";

/// Brings the database to [`SCHEMA_VERSION`] in one transaction and verifies the master key.
pub(super) fn migrate(db: &Database, key: &MasterKey) -> Result<(), StoreError> {
    let found = read_version(db)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let txn = db.begin_write()?;
    for table in RECORD_TABLES {
        txn.open_table(table)?;
    }
    for index in IndexTable::ALL {
        txn.open_table(index.definition())?;
    }
    for version in found..SCHEMA_VERSION {
        migrate_step(&txn, version)?;
    }
    {
        let mut meta = txn.open_table(META)?;
        meta.insert(VERSION_KEY, SCHEMA_VERSION.to_be_bytes().as_slice())?;
        let check = meta.get(KEY_CHECK_KEY)?.map(|guard| guard.value().to_vec());
        match check {
            Some(sealed) => {
                key.open(KEY_CHECK_KEY, &sealed)
                    .map_err(|_| StoreError::WrongMasterKey)?;
            }
            None => {
                let sealed = key.seal(KEY_CHECK_KEY, KEY_CHECK_PLAINTEXT)?;
                meta.insert(KEY_CHECK_KEY, sealed.as_slice())?;
            }
        }
    }
    txn.commit()?;
    Ok(())
}

fn read_version(db: &Database) -> Result<u32, StoreError> {
    let txn = db.begin_read()?;
    let meta = match txn.open_table(META) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(error) => return Err(error.into()),
    };
    let version = meta
        .get(VERSION_KEY)?
        .and_then(|guard| guard.value().try_into().ok().map(u32::from_be_bytes))
        .unwrap_or(0);
    Ok(version)
}

/// The migration hook: converts stored records from `version` to `version + 1` inside the
/// opening transaction. Version 0 is a new file whose tables were just created, so version 1
/// needs no conversion; later versions add their step here.
fn migrate_step(_txn: &redb::WriteTransaction, version: u32) -> Result<(), StoreError> {
    tracing::info!(from = version, to = version + 1, "migrating store schema");
    Ok(())
}

/// Re-seals every secret and the key check from `old` to `new` inside `txn`.
pub(super) fn reseal_all(txn: &redb::WriteTransaction, old: &MasterKey, new: &MasterKey) -> Result<usize, StoreError> {
    let mut secrets = txn.open_table(SECRETS)?;
    let mut resealed = Vec::new();
    for entry in secrets.iter()? {
        let (name, sealed) = entry?;
        let plain = old.open(name.value(), sealed.value())?;
        resealed.push((name.value().to_owned(), new.seal(name.value(), &plain)?));
    }
    for (name, sealed) in &resealed {
        secrets.insert(name.as_str(), sealed.as_slice())?;
    }
    let check = new.seal(KEY_CHECK_KEY, KEY_CHECK_PLAINTEXT)?;
    txn.open_table(META)?.insert(KEY_CHECK_KEY, check.as_slice())?;
    Ok(resealed.len())
}
