//! Usage per organization and calendar month (UTC), the basis of separate billing: records
//! synced, sync runs, webhook deliveries and inbound webhooks accepted. Each counter moves in
//! the same transaction as the work it counts, so a crash can neither lose nor double it.

use serde::{Deserialize, Serialize};

use crate::store::{BytesTable, Reader, Record, StoreError, Tx, USAGE};

/// One organization's usage in one month; keyed `<org id>/<YYYY-MM>`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UsageRecord {
    pub key: String,
    pub records_created: u64,
    pub records_updated: u64,
    pub sync_runs: u64,
    pub webhook_deliveries: u64,
    pub inbound_webhooks: u64,
}

impl Record for UsageRecord {
    const TABLE: BytesTable = USAGE;
    fn id(&self) -> &str {
        &self.key
    }
}

/// What to add to a month's usage.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub records_created: u64,
    pub records_updated: u64,
    pub sync_runs: u64,
    pub webhook_deliveries: u64,
    pub inbound_webhooks: u64,
}

/// `YYYY-MM` of `at` in UTC.
pub fn month_of(at: jiff::Timestamp) -> String {
    let date = at.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    format!("{:04}-{:02}", date.year(), date.month())
}

fn key(org_id: &str, month: &str) -> String {
    format!("{org_id}/{month}")
}

/// Adds `usage` to `org_id`'s current month, in `tx`.
pub fn count(tx: &mut Tx<'_>, org_id: &str, usage: Usage) -> Result<(), StoreError> {
    let key = key(org_id, &month_of(jiff::Timestamp::now()));
    let mut record = tx.get::<UsageRecord>(&key)?.unwrap_or_else(|| UsageRecord {
        key: key.clone(),
        ..UsageRecord::default()
    });
    record.records_created += usage.records_created;
    record.records_updated += usage.records_updated;
    record.sync_runs += usage.sync_runs;
    record.webhook_deliveries += usage.webhook_deliveries;
    record.inbound_webhooks += usage.inbound_webhooks;
    tx.put(&record)
}

/// `org_id`'s usage in `month` (`YYYY-MM`); zeros when nothing was counted.
pub fn of_month(rx: &impl Reader, org_id: &str, month: &str) -> Result<UsageRecord, StoreError> {
    let key = key(org_id, month);
    Ok(rx.get::<UsageRecord>(&key)?.unwrap_or(UsageRecord {
        key,
        ..UsageRecord::default()
    }))
}

/// Removes every month of `org_id`.
pub fn forget(tx: &mut Tx<'_>, org_id: &str) -> Result<(), StoreError> {
    for key in tx.keys_with_prefix(USAGE, &format!("{org_id}/"), usize::MAX)? {
        tx.remove_key(USAGE, &key)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_utc_calendar_months() {
        let at: jiff::Timestamp = "2026-11-30T23:30:00-05:00".parse().unwrap();
        assert_eq!(month_of(at), "2026-12");
    }
}
