//! The few operations each storage engine provides: ordered tables of string keys and byte
//! values. Everything typed (records, indexes, secrets) is built on these in `store`, once
//! for both engines.

use std::collections::BTreeSet;

use super::{BytesTable, Fence, StoreError};

/// Where a forward scan starts.
#[derive(Debug, Clone, Copy)]
pub enum Start<'k> {
    /// At this key (included).
    At(&'k str),
    /// Just after this key (excluded).
    After(&'k str),
}

/// One key and, when asked for, its value.
pub type Entry = (String, Vec<u8>);

/// Reads of one transaction or snapshot.
pub trait RawRead {
    /// The value at `key` of `table`.
    fn raw_get(&self, table: BytesTable, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Entries of `table` whose keys start with `prefix`, from `start` on, in key order, at
    /// most `limit`; values are left empty unless `values`.
    fn raw_scan(
        &self,
        table: BytesTable,
        prefix: &str,
        start: Start<'_>,
        limit: usize,
        values: bool,
    ) -> Result<Vec<Entry>, StoreError>;
    /// Keys of `table` that start with `prefix` and sort before `end`, last first, at most
    /// `limit`.
    fn raw_scan_rev(&self, table: BytesTable, prefix: &str, end: &str, limit: usize)
    -> Result<Vec<String>, StoreError>;
    /// How many keys of `table` start with `prefix`.
    fn raw_count(&self, table: BytesTable, prefix: &str) -> Result<u64, StoreError>;
}

/// Writes of one transaction, which commits only through [`RawWrite::commit`].
pub trait RawWrite: RawRead {
    /// Sets `key` of `table` to `value`.
    fn raw_insert(&mut self, table: BytesTable, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Removes `key` of `table`, returning its value if it had one.
    fn raw_remove(&mut self, table: BytesTable, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Whether `fence`'s lease is still this node's (always, on an engine only one node uses).
    fn holds(&self, fence: &Fence) -> Result<bool, StoreError>;
    /// Commits; `woken` names the webhook endpoints whose actors should look at their queue
    /// (an engine shared by several nodes tells the others in the same commit).
    fn commit(self: Box<Self>, woken: &BTreeSet<String>) -> Result<(), StoreError>;
}

/// The upper bound of keys starting with `prefix`: every such key sorts below it.
pub fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}
