//! Records attempt outcomes in group commits: one write transaction for every outcome that
//! arrived while the previous commit ran, so delivery throughput is not bound by fsyncs.
//! It applies the retry policy and the auto-disable rule.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio::sync::mpsc;

use super::actor::{EndpointMsg, notify_endpoint};
use super::attempt::AttemptResult;
use super::endpoints::prune_deliveries;
use super::outbox::{now_ms, schedule, unschedule};
use super::records::{AttemptRecord, DeliveryRecord, DeliveryStatus, EndpointRecord};
use crate::events::{EventType, emit, now_rfc3339};
use crate::store::{Reader, Store, StoreError, Tx};

/// Most outcomes folded into one transaction.
const MAX_BATCH: usize = 1024;

/// The result of one attempt, on its way to the store.
pub struct Outcome {
    pub delivery_id: String,
    pub endpoint_id: String,
    pub result: AttemptResult,
}

/// Outcomes recorded for an endpoint between two prunings of its delivery history.
const PRUNE_EVERY: usize = 500;

/// Runs until every sender is dropped. Keeps at most `retention` finished deliveries per
/// endpoint.
pub async fn run(store: Store, mut outcomes: mpsc::Receiver<Outcome>, retention: usize) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut since_prune: HashMap<String, usize> = HashMap::new();
    while outcomes.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let result = store.write(|tx| {
            let mut changed_endpoints = BTreeSet::new();
            for outcome in &batch {
                if apply(tx, outcome)? {
                    changed_endpoints.insert(outcome.endpoint_id.clone());
                }
                let count = since_prune.entry(outcome.endpoint_id.clone()).or_default();
                *count += 1;
                if *count >= PRUNE_EVERY {
                    *count = 0;
                    prune_deliveries(tx, &outcome.endpoint_id, retention)?;
                }
            }
            Ok::<_, StoreError>(changed_endpoints)
        });
        match result {
            Ok(changed) => {
                for endpoint in &changed {
                    notify_endpoint(endpoint, EndpointMsg::Reload);
                }
                for outcome in batch.drain(..) {
                    notify_endpoint(&outcome.endpoint_id, EndpointMsg::Recorded(outcome.delivery_id));
                }
            }
            Err(error) => {
                // The deliveries stay queued with their old due time, so they are retried:
                // at-least-once holds even when recording fails.
                tracing::error!(%error, outcomes = batch.len(), "could not record webhook attempts");
                tokio::time::sleep(Duration::from_millis(200)).await;
                for outcome in batch.drain(..) {
                    notify_endpoint(&outcome.endpoint_id, EndpointMsg::Recorded(outcome.delivery_id));
                }
            }
        }
    }
}

/// Applies one outcome; returns whether the endpoint record changed.
fn apply(tx: &mut Tx<'_>, outcome: &Outcome) -> Result<bool, StoreError> {
    let Some(mut delivery) = tx.get::<DeliveryRecord>(&outcome.delivery_id)? else {
        return Ok(false);
    };
    let Some(mut endpoint) = tx.get::<EndpointRecord>(&outcome.endpoint_id)? else {
        return Ok(false);
    };
    if delivery.status != DeliveryStatus::Pending {
        return Ok(false);
    }
    unschedule(tx, &delivery)?;
    let result = &outcome.result;
    delivery.series_attempts += 1;
    delivery.attempts.push(AttemptRecord {
        number: u32::try_from(delivery.attempts.len() + 1).unwrap_or(u32::MAX),
        at: result.at.clone(),
        status_code: result.status_code,
        latency_ms: result.latency_ms,
        error: result.error.clone(),
        response_body: result.response_body.clone(),
    });
    let mut endpoint_changed = false;
    if result.succeeded() {
        finish(&mut delivery, DeliveryStatus::Succeeded);
        if endpoint.consecutive_failures != 0 {
            endpoint.consecutive_failures = 0;
            endpoint_changed = true;
        }
    } else if result.gone() {
        finish(&mut delivery, DeliveryStatus::Failed);
        endpoint_changed = disable(tx, &mut endpoint, "the receiver answered 410 Gone".into())?;
    } else if let Some(delay) = retry_delay(&endpoint, &delivery, result) {
        delivery.next_attempt_at_ms = Some(now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
        schedule(tx, &delivery)?;
    } else {
        finish(&mut delivery, DeliveryStatus::Failed);
        endpoint.consecutive_failures += 1;
        endpoint_changed = true;
        if endpoint.consecutive_failures >= endpoint.failure_threshold {
            let reason = format!("{} consecutive failed deliveries", endpoint.consecutive_failures);
            disable(tx, &mut endpoint, reason)?;
        }
    }
    if endpoint_changed {
        endpoint.updated_at = now_rfc3339();
        tx.put(&endpoint)?;
    }
    tx.put(&delivery)?;
    Ok(endpoint_changed)
}

/// The wait before the next attempt, or `None` when the schedule is used up.
fn retry_delay(endpoint: &EndpointRecord, delivery: &DeliveryRecord, result: &AttemptResult) -> Option<Duration> {
    let index = usize::try_from(delivery.series_attempts).ok()?.checked_sub(1)?;
    let scheduled = Duration::from_secs(u64::from(*endpoint.retry_schedule_seconds.get(index)?));
    Some(result.retry_after.map_or(scheduled, |asked| asked.max(scheduled)))
}

fn finish(delivery: &mut DeliveryRecord, status: DeliveryStatus) {
    delivery.status = status;
    delivery.next_attempt_at_ms = None;
    delivery.finished_at = Some(now_rfc3339());
}

/// Disables `endpoint` (if enabled) and emits `endpoint.disabled`; returns whether it changed.
fn disable(tx: &mut Tx<'_>, endpoint: &mut EndpointRecord, reason: String) -> Result<bool, StoreError> {
    if !endpoint.enabled {
        return Ok(false);
    }
    tracing::warn!(endpoint_id = %endpoint.id, url = %super::ssrf::loggable(&endpoint.url), %reason, "webhook endpoint disabled");
    endpoint.enabled = false;
    endpoint.disabled_reason = Some(reason.clone());
    // Written before the event fans out, so the disabled endpoint does not receive it.
    tx.put(&*endpoint)?;
    let data = serde_json::json!({ "endpointId": endpoint.id, "url": endpoint.url, "reason": reason });
    emit(tx, &endpoint.org_id.clone(), EventType::EndpointDisabled, data)?;
    Ok(true)
}
