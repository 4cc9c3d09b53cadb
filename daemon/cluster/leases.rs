//! The cluster's tables in SQL: nodes and their heartbeats, and one lease per organization
//! (owner node, generation, expiry) with a log of every claim and release.

use std::time::Duration;

use crate::store::StoreError;
use crate::store::postgres::Conn;

/// A lease this node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub org_id: String,
    /// Raised at every claim, so a write can tell the current holder from an earlier one.
    pub generation: i64,
}

/// A node as `fluxctl cluster nodes` shows it.
#[derive(Debug, Clone)]
pub struct NodeRow {
    pub node_id: String,
    pub grpc_address: String,
    pub http_address: String,
    pub started_at: String,
    pub heartbeat_at: String,
    /// `live`, `stopped` (left gracefully) or `lost` (no heartbeat for three lease terms).
    pub state: String,
    pub leases: i64,
}

/// What a node says about itself at each heartbeat.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub node_id: String,
    pub grpc_address: String,
    pub http_address: String,
}

/// Leases from rows of (org_id, generation).
fn held_leases(rows: &[postgres::Row]) -> Vec<Held> {
    rows.iter()
        .map(|row| Held {
            org_id: row.get(0),
            generation: row.get(1),
        })
        .collect()
}

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// RFC 3339 in UTC, as SQL.
const RFC3339: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'";

/// Records that `node` is alive now.
pub fn heartbeat(conn: &mut Conn, node: &NodeInfo) -> Result<(), StoreError> {
    let statement = conn.statement(
        "INSERT INTO cluster_nodes (node_id, grpc_address, http_address, started_at, heartbeat_at)
         VALUES ($1, $2, $3, now(), now())
         ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL",
    )?;
    conn.client
        .execute(&statement, &[&node.node_id, &node.grpc_address, &node.http_address])?;
    Ok(())
}

/// Gives every organization in `org_ids` a lease row (unowned, expired) if it has none.
pub fn ensure(conn: &mut Conn, org_ids: &[String]) -> Result<(), StoreError> {
    let statement = conn.statement(
        "INSERT INTO cluster_leases (org_id, expires_at)
         SELECT unnest($1::text[]), 'epoch' ON CONFLICT (org_id) DO NOTHING",
    )?;
    conn.client.execute(&statement, &[&org_ids])?;
    Ok(())
}

/// Extends the leases of `held` that `node_id` still holds by `ttl`; returns those.
pub fn renew(conn: &mut Conn, node_id: &str, ttl: Duration, held: &[String]) -> Result<Vec<Held>, StoreError> {
    let statement = conn.statement(
        "UPDATE cluster_leases SET expires_at = now() + make_interval(secs => $3)
         WHERE owner = $1 AND org_id = ANY($2) AND expires_at > now()
         RETURNING org_id, generation",
    )?;
    let rows = conn.client.query(&statement, &[&node_id, &held, &seconds(ttl)])?;
    Ok(held_leases(&rows))
}

/// (live nodes, leases): the numbers a fair share is computed from.
pub fn census(conn: &mut Conn, ttl: Duration) -> Result<(i64, i64), StoreError> {
    let statement = conn.statement(
        "SELECT (SELECT count(*) FROM cluster_nodes
                 WHERE stopped_at IS NULL AND heartbeat_at > now() - make_interval(secs => $1)),
                (SELECT count(*) FROM cluster_leases)",
    )?;
    // Heartbeats come every third of a term: a node silent for a whole term is not counted
    // (its leases expire about then, and the live nodes' shares grow to take them).
    let row = conn.client.query_one(&statement, &[&seconds(ttl)])?;
    Ok((row.get(0), row.get(1)))
}

/// Claims up to `count` unowned or expired leases for `node_id` (rows other nodes are
/// claiming at the same moment are skipped, not waited for); each claim raises the
/// generation and is logged.
pub fn claim(conn: &mut Conn, node_id: &str, ttl: Duration, count: i64) -> Result<Vec<Held>, StoreError> {
    let statement = conn.statement(
        "WITH claimed AS (
             UPDATE cluster_leases SET owner = $1, generation = generation + 1,
                    expires_at = now() + make_interval(secs => $2)
             WHERE org_id IN (SELECT org_id FROM cluster_leases
                              WHERE owner IS NULL OR expires_at <= now()
                              ORDER BY org_id LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING org_id, generation),
         logged AS (
             INSERT INTO cluster_lease_log (org_id, owner, generation, event)
             SELECT org_id, $1, generation, 'claimed' FROM claimed)
         SELECT org_id, generation FROM claimed",
    )?;
    let rows = conn.client.query(&statement, &[&node_id, &seconds(ttl), &count])?;
    Ok(held_leases(&rows))
}

/// Logs that `node_id` `started` or `stopped` running organization `org_id`'s actors and jobs
/// under lease `generation` (the record tests check "never two nodes at once" against).
pub fn log_run(conn: &mut Conn, org_id: &str, node_id: &str, generation: i64, event: &str) -> Result<(), StoreError> {
    let statement =
        conn.statement("INSERT INTO cluster_lease_log (org_id, owner, generation, event) VALUES ($1, $2, $3, $4)")?;
    conn.client
        .execute(&statement, &[&org_id, &node_id, &generation, &event])?;
    Ok(())
}

/// Gives up `node_id`'s leases of `org_ids` (its actors there have stopped).
pub fn release(conn: &mut Conn, node_id: &str, org_ids: &[String]) -> Result<(), StoreError> {
    let statement = conn.statement(
        "WITH released AS (
             UPDATE cluster_leases SET owner = NULL, expires_at = 'epoch'
             WHERE owner = $1 AND org_id = ANY($2)
             RETURNING org_id, generation)
         INSERT INTO cluster_lease_log (org_id, owner, generation, event)
         SELECT org_id, $1, generation, 'released' FROM released",
    )?;
    conn.client.execute(&statement, &[&node_id, &org_ids])?;
    Ok(())
}

/// Marks `node_id` as gone after a graceful stop, releasing what it still holds.
pub fn leave(conn: &mut Conn, node_id: &str) -> Result<(), StoreError> {
    let held: Vec<String> = {
        let statement = conn.statement("SELECT org_id FROM cluster_leases WHERE owner = $1")?;
        conn.client
            .query(&statement, &[&node_id])?
            .iter()
            .map(|row| row.get(0))
            .collect()
    };
    release(conn, node_id, &held)?;
    let statement = conn.statement("UPDATE cluster_nodes SET stopped_at = now() WHERE node_id = $1")?;
    conn.client.execute(&statement, &[&node_id])?;
    Ok(())
}

/// The nodes seen in the last `window`, newest first, with the leases each holds now.
pub fn nodes(conn: &mut Conn, ttl: Duration, window: Duration) -> Result<Vec<NodeRow>, StoreError> {
    let sql = format!(
        "SELECT n.node_id, n.grpc_address, n.http_address,
                to_char(n.started_at AT TIME ZONE 'UTC', {RFC3339}),
                to_char(n.heartbeat_at AT TIME ZONE 'UTC', {RFC3339}),
                CASE WHEN n.stopped_at IS NOT NULL THEN 'stopped'
                     WHEN n.heartbeat_at > now() - make_interval(secs => $1) THEN 'live'
                     ELSE 'lost' END,
                (SELECT count(*) FROM cluster_leases l
                 WHERE l.owner = n.node_id AND l.expires_at > now())
         FROM cluster_nodes n
         WHERE n.heartbeat_at > now() - make_interval(secs => $2)
         ORDER BY n.started_at DESC, n.node_id"
    );
    let statement = conn.statement(&sql)?;
    let rows = conn
        .client
        .query(&statement, &[&(seconds(ttl) * 3.0), &seconds(window)])?;
    Ok(rows
        .iter()
        .map(|row| NodeRow {
            node_id: row.get(0),
            grpc_address: row.get(1),
            http_address: row.get(2),
            started_at: row.get(3),
            heartbeat_at: row.get(4),
            state: row.get(5),
            leases: row.get(6),
        })
        .collect())
}
