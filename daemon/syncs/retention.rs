//! What a mapping's syncs keep, and for how long: finished jobs beyond the newest
//! [`JOBS_KEPT`] per mapping go with their outcomes; a job stores at most
//! [`OUTCOMES_KEPT`] outcomes; a deleted mapping takes all of its sync data with it.

use super::changes::JobChanges;
use super::records::{SyncJobRecord, SyncStateRecord};
use crate::store::{
    BytesTable, CREATE_INTENTS, CURSORS, IndexTable, LINKS, OUTCOMES, PENDING_CHANGES, RETRIES, Reader, StoreError, Tx,
};

/// Finished jobs kept per mapping (with their outcomes); older ones are removed when a newer
/// one finishes.
pub const JOBS_KEPT: usize = 200;
/// Skipped and failed records stored per job; later ones are still counted in its stats.
pub const OUTCOMES_KEPT: u64 = 10_000;

/// Removes the finished jobs of `mapping_id` beyond the newest [`JOBS_KEPT`], with their
/// outcomes. Returns how many jobs went.
pub fn prune_jobs(tx: &mut Tx<'_>, mapping_id: &str) -> Result<usize, StoreError> {
    let prefix = format!("{mapping_id}/");
    let keys = tx.index_keys(IndexTable::MappingJobs, &prefix, usize::MAX)?;
    let excess = keys.len().saturating_sub(JOBS_KEPT);
    let mut removed = 0;
    for key in keys.into_iter().take(excess) {
        let job_id = &key[prefix.len()..];
        if tx
            .get::<SyncJobRecord>(job_id)?
            .is_some_and(|job| !job.status.is_finished())
        {
            continue;
        }
        remove_job(tx, job_id)?;
        tx.index_remove(IndexTable::MappingJobs, &key)?;
        removed += 1;
    }
    Ok(removed)
}

fn remove_job(tx: &mut Tx<'_>, job_id: &str) -> Result<(), StoreError> {
    if let Some(job) = tx.remove::<SyncJobRecord>(job_id)? {
        tx.index_remove(IndexTable::OrgJobs, &format!("{}/{job_id}", job.org_id))?;
    }
    tx.remove::<JobChanges>(job_id)?;
    remove_with_prefix(tx, OUTCOMES, &format!("{job_id}/"))
}

fn remove_with_prefix(tx: &mut Tx<'_>, table: BytesTable, prefix: &str) -> Result<(), StoreError> {
    for key in tx.keys_with_prefix(table, prefix, usize::MAX)? {
        tx.remove_key(table, &key)?;
    }
    Ok(())
}

/// Removes everything the syncs of `mapping_id` kept: jobs and their outcomes, its sync
/// state, links, cursors, retries, waiting changes and match index.
pub fn remove_mapping_data(tx: &mut Tx<'_>, mapping_id: &str) -> Result<(), StoreError> {
    let prefix = format!("{mapping_id}/");
    for key in tx.index_keys(IndexTable::MappingJobs, &prefix, usize::MAX)? {
        remove_job(tx, &key[prefix.len()..])?;
        tx.index_remove(IndexTable::MappingJobs, &key)?;
    }
    tx.remove::<SyncStateRecord>(mapping_id)?;
    for table in [LINKS, CURSORS, RETRIES, PENDING_CHANGES, CREATE_INTENTS] {
        remove_with_prefix(tx, table, &prefix)?;
    }
    for key in tx.index_keys(IndexTable::MatchIndex, &prefix, usize::MAX)? {
        tx.index_remove(IndexTable::MatchIndex, &key)?;
    }
    Ok(())
}

/// Whether the job with `stored` outcomes so far may store another.
pub fn keeps_outcome(stored: u64) -> bool {
    stored < OUTCOMES_KEPT
}
