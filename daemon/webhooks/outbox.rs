//! Fan-out from the outbox to per-endpoint deliveries, and the delivery queue index.

use crate::events::EventRecord;
use crate::ids::{IdKind, new_id};
use crate::store::{IndexTable, OrgKind, Reader, StoreError, Tx};

use super::records::{DeliveryRecord, DeliveryStatus, EndpointRecord};
use super::subscription;

/// The enabled webhook endpoints of organization `org_id`.
pub fn endpoints_of(tx: &Tx<'_>, org_id: &str) -> Result<Vec<EndpointRecord>, StoreError> {
    let mut endpoints = Vec::new();
    for id in tx.org_ids(OrgKind::WebhookEndpoint, org_id, None, usize::MAX)? {
        endpoints.extend(tx.get::<EndpointRecord>(&id)?.filter(|e| e.enabled));
    }
    Ok(endpoints)
}

/// Creates a pending delivery of `event`, due now, for each of `endpoints` (the enabled
/// endpoints of its organization) whose subscription matches.
pub fn fan_out(tx: &mut Tx<'_>, endpoints: &[EndpointRecord], event: &EventRecord) -> Result<usize, StoreError> {
    let mut queued = 0;
    for endpoint in endpoints
        .iter()
        .filter(|e| subscription::matches(&e.event_types, event.event_type))
    {
        enqueue_new(tx, endpoint, event)?;
        queued += 1;
    }
    Ok(queued)
}

/// Creates a pending delivery of `event` to `endpoint`, due now.
pub fn enqueue_new(
    tx: &mut Tx<'_>,
    endpoint: &EndpointRecord,
    event: &EventRecord,
) -> Result<DeliveryRecord, StoreError> {
    let delivery = DeliveryRecord {
        id: new_id(IdKind::Delivery),
        endpoint_id: endpoint.id.clone(),
        org_id: endpoint.org_id.clone(),
        event_id: event.id.clone(),
        event_type: event.event_type.as_str().to_owned(),
        status: DeliveryStatus::Pending,
        created_at: event.timestamp.clone(),
        next_attempt_at_ms: Some(tx.clock().now_ms()),
        attempts: Vec::new(),
        series_attempts: 0,
        finished_at: None,
    };
    tx.index_insert(
        IndexTable::EndpointDeliveries,
        &format!("{}/{}", endpoint.id, delivery.id),
    )?;
    schedule(tx, &delivery)?;
    tx.put(&delivery)?;
    Ok(delivery)
}

/// Adds `delivery` to its endpoint's queue at its `next_attempt_at_ms` and wakes the endpoint.
pub fn schedule(tx: &mut Tx<'_>, delivery: &DeliveryRecord) -> Result<(), StoreError> {
    if let Some(due) = delivery.next_attempt_at_ms {
        tx.index_insert(
            IndexTable::DeliveryQueue,
            &queue_key(&delivery.endpoint_id, due, &delivery.id),
        )?;
        tx.after_commit_wake(&delivery.endpoint_id);
    }
    Ok(())
}

/// Removes `delivery`'s current queue entry, if it has one.
pub fn unschedule(tx: &mut Tx<'_>, delivery: &DeliveryRecord) -> Result<(), StoreError> {
    if let Some(due) = delivery.next_attempt_at_ms {
        tx.index_remove(
            IndexTable::DeliveryQueue,
            &queue_key(&delivery.endpoint_id, due, &delivery.id),
        )?;
    }
    Ok(())
}

/// Queue key: `<endpoint>/<due ms, zero-padded>/<delivery>`, so a prefix scan is due-ordered.
pub fn queue_key(endpoint_id: &str, due_ms: i64, delivery_id: &str) -> String {
    format!("{endpoint_id}/{:020}/{delivery_id}", due_ms.max(0))
}

/// Splits a queue key into (due ms, delivery id).
pub fn parse_queue_key(key: &str) -> Option<(i64, &str)> {
    let mut parts = key.rsplitn(3, '/');
    let delivery = parts.next()?;
    let due = parts.next()?.parse().ok()?;
    Some((due, delivery))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_sort_by_due_time_and_parse_back() {
        let early = queue_key("wh_1", 999, "dlv_b");
        let late = queue_key("wh_1", 1000, "dlv_a");
        assert!(early < late);
        assert_eq!(parse_queue_key(&late), Some((1000, "dlv_a")));
    }
}
