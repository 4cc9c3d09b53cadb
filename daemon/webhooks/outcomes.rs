//! Records attempt outcomes: the retry policy (the endpoint's schedule, `Retry-After`), the
//! auto-disable rule (`410 Gone`, too many consecutive failures) and the pruning of finished
//! deliveries, applied in the transaction that stores an endpoint's batch of outcomes.

use crate::orgs::usage::{self, Usage};
use std::time::Duration;

use super::attempt::AttemptResult;
use super::endpoints::prune_deliveries;
use super::outbox::{schedule, unschedule};
use super::records::{AttemptRecord, DeliveryRecord, DeliveryStatus, EndpointRecord};
use crate::events::{EventType, emit, now_rfc3339};
use crate::store::{Reader, StoreError, Tx};

/// The result of one attempt, on its way to the store.
#[derive(Debug)]
pub struct Outcome {
    pub delivery_id: String,
    pub endpoint_id: String,
    pub result: AttemptResult,
}

/// Stores `outcomes` (all of one endpoint) and, when `prune_to` is given, prunes the endpoint's
/// finished deliveries to that many; returns whether the endpoint record changed.
pub fn record(tx: &mut Tx<'_>, outcomes: &[Outcome], prune_to: Option<usize>) -> Result<bool, StoreError> {
    let Some(first) = outcomes.first() else {
        return Ok(false);
    };
    let Some(mut endpoint) = tx.get::<EndpointRecord>(&first.endpoint_id)? else {
        return Ok(false);
    };
    let mut changed = false;
    for outcome in outcomes {
        changed |= apply(tx, &mut endpoint, outcome)?;
    }
    if changed {
        endpoint.updated_at = now_rfc3339();
        tx.put(&endpoint)?;
    }
    if let Some(keep) = prune_to {
        prune_deliveries(tx, &endpoint.id, keep)?;
    }
    Ok(changed)
}

/// Applies one outcome; returns whether `endpoint` changed.
fn apply(tx: &mut Tx<'_>, endpoint: &mut EndpointRecord, outcome: &Outcome) -> Result<bool, StoreError> {
    let Some(mut delivery) = tx.get::<DeliveryRecord>(&outcome.delivery_id)? else {
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
        endpoint_changed = disable(tx, endpoint, "the receiver answered 410 Gone".into())?;
    } else if let Some(delay) = retry_delay(endpoint, &delivery, result) {
        let due = tx
            .clock()
            .now_ms()
            .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
        delivery.next_attempt_at_ms = Some(due);
        schedule(tx, &delivery)?;
        tracing::info!(
            endpoint_id = %endpoint.id,
            delivery_id = %delivery.id,
            attempt = delivery.attempts.len(),
            error = result.error.as_deref().unwrap_or_default(),
            retry_in_seconds = delay.as_secs(),
            "webhook delivery attempt failed; retrying"
        );
    } else {
        tracing::warn!(
            endpoint_id = %endpoint.id,
            delivery_id = %delivery.id,
            attempt = delivery.attempts.len(),
            error = result.error.as_deref().unwrap_or_default(),
            "webhook delivery failed; no retries left"
        );
        finish(&mut delivery, DeliveryStatus::Failed);
        endpoint.consecutive_failures += 1;
        endpoint_changed = true;
        if endpoint.consecutive_failures >= endpoint.failure_threshold {
            let reason = format!("{} consecutive failed deliveries", endpoint.consecutive_failures);
            disable(tx, endpoint, reason)?;
        }
    }
    if delivery.status != DeliveryStatus::Pending {
        let counted = Usage {
            webhook_deliveries: 1,
            ..Usage::default()
        };
        usage::count(tx, &endpoint.org_id, counted)?;
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
