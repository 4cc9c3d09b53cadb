//! Read snapshots and write transactions on a pooled connection, speaking the raw table
//! operations in SQL.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ops::DerefMut;

use postgres::types::ToSql;

use super::{Conn, Notice, Pooled, WAKE_CHANNEL};
use crate::store::raw::{Entry, RawRead, RawWrite, Start, prefix_end};
use crate::store::{BytesTable, Fence, StoreError};

/// The advisory lock every write transaction holds until it ends ("fluxd", 1).
pub(super) const WRITE_LOCK: i64 = 0x666c_7578_6400_0001;
/// Largest notification payload PostgreSQL takes is 8000 bytes; stay well under.
const NOTIFY_CHUNK: usize = 7000;

/// A REPEATABLE READ, READ ONLY snapshot.
pub struct ReadTxn {
    conn: RefCell<Pooled>,
}

/// A write transaction holding the cluster's write lock; rolled back unless committed.
pub struct WriteTxn<C: DerefMut<Target = Conn> = Pooled> {
    conn: RefCell<C>,
    node_id: String,
    open: bool,
    /// A statement failed: PostgreSQL has aborted the transaction, and would answer its
    /// COMMIT with a rollback, not an error.
    failed: std::cell::Cell<bool>,
}

impl ReadTxn {
    pub(in crate::store) fn begin(mut conn: Pooled) -> Result<Self, StoreError> {
        conn.client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
        Ok(ReadTxn {
            conn: RefCell::new(conn),
        })
    }
}

impl Drop for ReadTxn {
    fn drop(&mut self) {
        // A failed end leaves the connection closed, and the pool drops it.
        let _ = self.conn.get_mut().client.batch_execute("COMMIT");
    }
}

impl<C: DerefMut<Target = Conn>> WriteTxn<C> {
    pub(in crate::store) fn begin(mut conn: C, node_id: &str) -> Result<Self, StoreError> {
        conn.client
            .batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"))?;
        Ok(WriteTxn {
            conn: RefCell::new(conn),
            node_id: node_id.to_owned(),
            open: true,
            failed: std::cell::Cell::new(false),
        })
    }
}

impl<C: DerefMut<Target = Conn>> WriteTxn<C> {
    /// [`query`], remembering a failure (the transaction is then aborted).
    fn run(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<postgres::Row>, StoreError> {
        let result = query(&self.conn, sql, params);
        if result.is_err() {
            self.failed.set(true);
        }
        result
    }
}

impl<C: DerefMut<Target = Conn>> Drop for WriteTxn<C> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.get_mut().client.batch_execute("ROLLBACK");
        }
    }
}

fn name(table: BytesTable) -> String {
    redb::TableHandle::name(&table).to_owned()
}

/// Runs `sql` (prepared once per connection) with `params`.
fn query<C: DerefMut<Target = Conn>>(
    conn: &RefCell<C>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<postgres::Row>, StoreError> {
    let mut conn = conn.borrow_mut();
    let statement = conn.statement(sql)?;
    Ok(conn.client.query(&statement, params)?)
}

fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn get<C: DerefMut<Target = Conn>>(
    conn: &RefCell<C>,
    table: BytesTable,
    key: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let sql = format!("SELECT body FROM {} WHERE key = $1", name(table));
    Ok(query(conn, &sql, &[&key])?.first().map(|row| row.get(0)))
}

fn scan<C: DerefMut<Target = Conn>>(
    conn: &RefCell<C>,
    table: BytesTable,
    prefix: &str,
    start: Start<'_>,
    count: usize,
    values: bool,
) -> Result<Vec<Entry>, StoreError> {
    let (from, op) = match start {
        Start::At(key) => (key.max(prefix), ">="),
        Start::After(key) if key < prefix => (prefix, ">="),
        Start::After(key) => (key, ">"),
    };
    let columns = if values { "key, body" } else { "key" };
    let sql = format!(
        "SELECT {columns} FROM {} WHERE key {op} $1 AND key < $2 ORDER BY key LIMIT $3",
        name(table)
    );
    let rows = query(conn, &sql, &[&from, &prefix_end(prefix), &limit(count)])?;
    Ok(rows
        .iter()
        .map(|row| (row.get(0), if values { row.get(1) } else { Vec::new() }))
        .collect())
}

fn scan_rev<C: DerefMut<Target = Conn>>(
    conn: &RefCell<C>,
    table: BytesTable,
    prefix: &str,
    end: &str,
    count: usize,
) -> Result<Vec<String>, StoreError> {
    let sql = format!(
        "SELECT key FROM {} WHERE key >= $1 AND key < $2 ORDER BY key DESC LIMIT $3",
        name(table)
    );
    let rows = query(conn, &sql, &[&prefix, &end, &limit(count)])?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

fn count<C: DerefMut<Target = Conn>>(conn: &RefCell<C>, table: BytesTable, prefix: &str) -> Result<u64, StoreError> {
    let sql = format!("SELECT count(*) FROM {} WHERE key >= $1 AND key < $2", name(table));
    let rows = query(conn, &sql, &[&prefix, &prefix_end(prefix)])?;
    let count: i64 = rows.first().map_or(0, |row| row.get(0));
    Ok(u64::try_from(count).unwrap_or(0))
}

macro_rules! impl_raw_read {
    ($ty:ty, $($generics:tt)*) => {
        impl<$($generics)*> RawRead for $ty {
            fn raw_get(&self, table: BytesTable, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
                get(&self.conn, table, key)
            }

            fn raw_scan(
                &self,
                table: BytesTable,
                prefix: &str,
                start: Start<'_>,
                limit: usize,
                values: bool,
            ) -> Result<Vec<Entry>, StoreError> {
                scan(&self.conn, table, prefix, start, limit, values)
            }

            fn raw_scan_rev(
                &self,
                table: BytesTable,
                prefix: &str,
                end: &str,
                limit: usize,
            ) -> Result<Vec<String>, StoreError> {
                scan_rev(&self.conn, table, prefix, end, limit)
            }

            fn raw_count(&self, table: BytesTable, prefix: &str) -> Result<u64, StoreError> {
                count(&self.conn, table, prefix)
            }
        }
    };
}
impl_raw_read!(ReadTxn,);
impl_raw_read!(WriteTxn<C>, C: DerefMut<Target = Conn>);

impl<C: DerefMut<Target = Conn>> RawWrite for WriteTxn<C> {
    fn raw_insert(&mut self, table: BytesTable, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO {} (key, body) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET body = EXCLUDED.body",
            name(table)
        );
        self.run(&sql, &[&key, &value])?;
        Ok(())
    }

    fn raw_remove(&mut self, table: BytesTable, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let sql = format!("DELETE FROM {} WHERE key = $1 RETURNING body", name(table));
        Ok(self.run(&sql, &[&key])?.first().map(|row| row.get(0)))
    }

    fn holds(&self, fence: &Fence) -> Result<bool, StoreError> {
        let rows = self.run(
            // Locked for share until this transaction ends: a claim (which skips locked rows)
            // cannot take the lease between this check and the commit.
            "SELECT 1 FROM cluster_leases
             WHERE org_id = $1 AND owner = $2 AND generation = $3 AND expires_at > clock_timestamp()
             FOR SHARE",
            &[&fence.org_id, &self.node_id, &fence.generation],
        )?;
        Ok(!rows.is_empty())
    }

    fn commit(mut self: Box<Self>, woken: &BTreeSet<String>) -> Result<(), StoreError> {
        // Delivered to the listening nodes when (and only if) the transaction commits.
        for payload in payloads(&self.node_id, Notice::Wake, woken) {
            self.run("SELECT pg_notify($1, $2)", &[&WAKE_CHANNEL, &payload])?;
        }
        if self.failed.get() {
            return Err(StoreError::Postgres(
                "a statement of the transaction failed; it was rolled back".into(),
            ));
        }
        self.open = false;
        self.conn.get_mut().client.batch_execute("COMMIT")?;
        Ok(())
    }
}

/// `<node id>\n<notice>\n<id>,<id>…` in payloads small enough to send.
pub(super) fn payloads<'i>(node_id: &str, notice: Notice, ids: impl IntoIterator<Item = &'i String>) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut current = String::new();
    for id in ids {
        if !current.is_empty() && current.len() + id.len() + 1 > NOTIFY_CHUNK {
            payloads.push(std::mem::take(&mut current));
        }
        if current.is_empty() {
            current = format!("{node_id}\n{}\n{id}", notice.as_str());
        } else {
            current.push(',');
            current.push_str(id);
        }
    }
    payloads.extend((!current.is_empty()).then_some(current));
    payloads
}

/// (sender node, notice, ids) of a payload [`payloads`] made.
pub(super) fn parse(payload: &str) -> Option<(&str, Notice, &str)> {
    let mut parts = payload.splitn(3, '\n');
    let (node, notice, ids) = (parts.next()?, parts.next()?, parts.next()?);
    Some((node, Notice::parse(notice)?, ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_split_under_the_notify_limit_and_parse_back() {
        let endpoints: Vec<String> = (0..1000).map(|i| format!("wh_{i:030}")).collect();
        let chunks = payloads("node_a", Notice::Wake, &endpoints);
        assert!(chunks.len() > 1);
        assert!(chunks.iter().all(|p| p.len() <= NOTIFY_CHUNK));
        let mut listed = Vec::new();
        for payload in &chunks {
            let (node, notice, ids) = parse(payload).unwrap();
            assert_eq!((node, notice), ("node_a", Notice::Wake));
            listed.extend(ids.split(','));
        }
        assert_eq!(listed.len(), 1000);
        assert!(payloads("node_a", Notice::Job, &[] as &[String]).is_empty());
        assert_eq!(
            parse("node_b\ncancel\njob_1"),
            Some(("node_b", Notice::Cancel, "job_1"))
        );
        assert_eq!(parse("node_b\nsomething\njob_1"), None);
    }
}
