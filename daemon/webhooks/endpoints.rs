//! Operations on webhook endpoints and deliveries, each one transaction. The gRPC adapter
//! calls these, then tells the endpoint's actor what changed.

use super::outbox::{enqueue_new, schedule, unschedule};
use super::records::{
    DEFAULT_FAILURE_THRESHOLD, DEFAULT_MAX_CONCURRENCY, DEFAULT_RETRY_SCHEDULE, DEFAULT_TIMEOUT_SECONDS,
    DeliveryRecord, DeliveryStatus, EndpointRecord,
};
use super::secrets::{CURRENT, PREVIOUS, ROTATION_OVERLAP};
use super::signing::generate_secret;
use super::ssrf::{AddressPolicy, UrlError};
use super::subscription::{self, SubscriptionError};
use crate::crypto::Secret;
use crate::events::{EventType, emit, now_rfc3339, rfc3339};
use crate::ids::{IdKind, new_id};
use crate::store::{IndexTable, OrgKind, Reader, Store, StoreError, Tx};

/// Longest retry schedule and longest single wait.
const MAX_RETRIES: usize = 20;
/// The longest endpoint URL.
const MAX_URL: usize = 2048;
const MAX_RETRY_WAIT_SECONDS: u32 = 86_400;

/// Errors of endpoint operations; each names the field or entity at fault.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("url: {0}")]
    Url(#[from] UrlError),
    #[error(transparent)]
    Events(#[from] SubscriptionError),
    #[error("{field}: {problem}")]
    Setting { field: String, problem: String },
    #[error("{kind} {id:?} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("webhook endpoint {0:?} is disabled; enable it first")]
    Disabled(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Delivery settings as given; `None` keeps the current or default value.
#[derive(Debug, Clone, Default)]
pub struct SettingsChange {
    pub retry_schedule_seconds: Option<Vec<u32>>,
    pub failure_threshold: Option<u32>,
    pub ordered: Option<bool>,
    pub max_concurrency: Option<u32>,
    pub timeout_seconds: Option<u32>,
}

/// A new endpoint, as requested.
#[derive(Debug, Clone, Default)]
pub struct NewEndpoint {
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub settings: SettingsChange,
}

/// Changes to an endpoint; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub settings: SettingsChange,
}

fn setting_error(field: &str, problem: impl Into<String>) -> WebhookError {
    WebhookError::Setting {
        field: field.into(),
        problem: problem.into(),
    }
}

fn apply_settings(endpoint: &mut EndpointRecord, change: &SettingsChange) -> Result<(), WebhookError> {
    if let Some(schedule) = &change.retry_schedule_seconds {
        if schedule.len() > MAX_RETRIES {
            return Err(setting_error(
                "retry_schedule_seconds",
                format!("at most {MAX_RETRIES} retries"),
            ));
        }
        if let Some(index) = schedule.iter().position(|s| !(1..=MAX_RETRY_WAIT_SECONDS).contains(s)) {
            return Err(setting_error(
                &format!("retry_schedule_seconds[{index}]"),
                format!("must be 1 to {MAX_RETRY_WAIT_SECONDS} seconds"),
            ));
        }
        endpoint.retry_schedule_seconds = schedule.clone();
    }
    if let Some(threshold) = change.failure_threshold {
        if !(1..=10_000).contains(&threshold) {
            return Err(setting_error("failure_threshold", "must be 1 to 10000"));
        }
        endpoint.failure_threshold = threshold;
    }
    if let Some(concurrency) = change.max_concurrency {
        if !(1..=256).contains(&concurrency) {
            return Err(setting_error("max_concurrency", "must be 1 to 256"));
        }
        endpoint.max_concurrency = concurrency;
    }
    if let Some(timeout) = change.timeout_seconds {
        if !(1..=300).contains(&timeout) {
            return Err(setting_error("timeout_seconds", "must be 1 to 300"));
        }
        endpoint.timeout_seconds = timeout;
    }
    if let Some(ordered) = change.ordered {
        endpoint.ordered = ordered;
    }
    Ok(())
}

fn check_description(description: &str) -> Result<(), WebhookError> {
    if description.chars().count() > 500 {
        return Err(setting_error("description", "at most 500 characters"));
    }
    Ok(())
}

/// The endpoint `id` of organization `org_id`.
pub fn endpoint_in_org(rx: &impl Reader, org_id: &str, id: &str) -> Result<EndpointRecord, WebhookError> {
    rx.get::<EndpointRecord>(id)?
        .filter(|e| e.org_id == org_id)
        .ok_or_else(|| WebhookError::NotFound {
            kind: "webhook endpoint",
            id: id.to_owned(),
        })
}

fn delivery_in_org(rx: &impl Reader, org_id: &str, id: &str) -> Result<DeliveryRecord, WebhookError> {
    rx.get::<DeliveryRecord>(id)?
        .filter(|d| d.org_id == org_id)
        .ok_or_else(|| WebhookError::NotFound {
            kind: "delivery",
            id: id.to_owned(),
        })
}

/// Creates an endpoint and its secret; returns both (the secret is shown this once).
pub async fn create(
    store: &Store,
    policy: AddressPolicy,
    org_id: &str,
    new: NewEndpoint,
) -> Result<(EndpointRecord, Secret), WebhookError> {
    if new.url.len() > MAX_URL {
        return Err(setting_error("url", "at most 2048 characters"));
    }
    let url = policy.check_url(new.url.trim())?;
    subscription::validate(&new.event_types)?;
    check_description(&new.description)?;
    let now = now_rfc3339();
    let mut endpoint = EndpointRecord {
        id: new_id(IdKind::WebhookEndpoint),
        org_id: org_id.to_owned(),
        url: url.to_string(),
        description: new.description,
        event_types: new.event_types,
        enabled: true,
        created_at: now.clone(),
        updated_at: now,
        retry_schedule_seconds: DEFAULT_RETRY_SCHEDULE.to_vec(),
        failure_threshold: DEFAULT_FAILURE_THRESHOLD,
        consecutive_failures: 0,
        ordered: false,
        max_concurrency: DEFAULT_MAX_CONCURRENCY,
        timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
        disabled_reason: None,
        previous_secret_expires_at: None,
    };
    apply_settings(&mut endpoint, &new.settings)?;
    let secret = generate_secret();
    let (stored, sealed) = (endpoint.clone(), secret.clone());
    store
        .write(move |tx| {
            tx.put(&stored)?;
            tx.index_org(OrgKind::WebhookEndpoint, &stored.org_id, &stored.id)?;
            tx.put_secret(&stored.id, CURRENT, &sealed)?;
            Ok::<_, WebhookError>(())
        })
        .await?;
    tracing::info!(endpoint_id = %endpoint.id, url = %super::ssrf::loggable(&endpoint.url), "webhook endpoint created");
    Ok((endpoint, secret))
}

/// Applies `change` to endpoint `id`.
pub async fn update(
    store: &Store,
    policy: AddressPolicy,
    org_id: &str,
    id: &str,
    change: EndpointChange,
) -> Result<EndpointRecord, WebhookError> {
    if change.url.as_ref().is_some_and(|url| url.len() > MAX_URL) {
        return Err(setting_error("url", "at most 2048 characters"));
    }
    let url = change
        .url
        .as_deref()
        .map(|url| policy.check_url(url.trim()))
        .transpose()?;
    if let Some(types) = &change.event_types {
        subscription::validate(types)?;
    }
    if let Some(description) = &change.description {
        check_description(description)?;
    }
    let (org_id, id) = (org_id.to_owned(), id.to_owned());
    store
        .write(move |tx| {
            let mut endpoint = endpoint_in_org(tx, &org_id, &id)?;
            if let Some(url) = url {
                endpoint.url = url.to_string();
            }
            if let Some(description) = change.description {
                endpoint.description = description;
            }
            if let Some(types) = change.event_types {
                endpoint.event_types = types;
            }
            apply_settings(&mut endpoint, &change.settings)?;
            endpoint.updated_at = now_rfc3339();
            tx.put(&endpoint)?;
            Ok(endpoint)
        })
        .await
}

/// Deletes endpoint `id`, its secrets, queue and delivery history.
pub async fn delete(store: &Store, org_id: &str, id: &str) -> Result<(), WebhookError> {
    let (org_id, id) = (org_id.to_owned(), id.to_owned());
    store.write(move |tx| delete_in(tx, &org_id, &id)).await
}

/// [`delete`] inside `tx`.
pub fn delete_in(tx: &mut Tx<'_>, org_id: &str, id: &str) -> Result<(), WebhookError> {
    let endpoint = endpoint_in_org(tx, org_id, id)?;
    let prefix = format!("{}/", endpoint.id);
    for key in tx.index_keys(IndexTable::DeliveryQueue, &prefix, usize::MAX)? {
        tx.index_remove(IndexTable::DeliveryQueue, &key)?;
    }
    for key in tx.index_keys(IndexTable::EndpointDeliveries, &prefix, usize::MAX)? {
        tx.index_remove(IndexTable::EndpointDeliveries, &key)?;
        if let Some(delivery_id) = key.strip_prefix(&prefix) {
            tx.remove::<DeliveryRecord>(delivery_id)?;
        }
    }
    tx.remove_secret(&endpoint.id, CURRENT)?;
    tx.remove_secret(&endpoint.id, PREVIOUS)?;
    tx.remove::<EndpointRecord>(&endpoint.id)?;
    tx.unindex_org(OrgKind::WebhookEndpoint, org_id, &endpoint.id)?;
    Ok(())
}

/// Enables or disables endpoint `id`. Enabling resets the failure count.
pub async fn set_enabled(store: &Store, org_id: &str, id: &str, enabled: bool) -> Result<EndpointRecord, WebhookError> {
    let (org_id, id) = (org_id.to_owned(), id.to_owned());
    store
        .write(move |tx| {
            let mut endpoint = endpoint_in_org(tx, &org_id, &id)?;
            endpoint.enabled = enabled;
            if enabled {
                endpoint.consecutive_failures = 0;
                endpoint.disabled_reason = None;
            } else {
                endpoint.disabled_reason = Some("disabled by a user".into());
            }
            endpoint.updated_at = now_rfc3339();
            tx.put(&endpoint)?;
            Ok(endpoint)
        })
        .await
}

/// The current secret of endpoint `id`.
pub fn reveal_secret(store: &Store, org_id: &str, id: &str) -> Result<Secret, WebhookError> {
    store.read(|rx| {
        let endpoint = endpoint_in_org(rx, org_id, id)?;
        rx.secret(&endpoint.id, CURRENT)?.ok_or_else(|| WebhookError::NotFound {
            kind: "secret of webhook endpoint",
            id: id.to_owned(),
        })
    })
}

/// Replaces the secret; the old one keeps signing for [`ROTATION_OVERLAP`]. Returns the new
/// secret and when the old one stops signing.
pub async fn rotate_secret(store: &Store, org_id: &str, id: &str) -> Result<(Secret, String), WebhookError> {
    let secret = generate_secret();
    let expires = rfc3339(jiff::Timestamp::now() + ROTATION_OVERLAP);
    let (org_id, id, sealed, until) = (org_id.to_owned(), id.to_owned(), secret.clone(), expires.clone());
    store
        .write(move |tx| {
            let mut endpoint = endpoint_in_org(tx, &org_id, &id)?;
            if let Some(old) = tx.secret(&endpoint.id, CURRENT)? {
                tx.put_secret(&endpoint.id, PREVIOUS, &old)?;
            }
            tx.put_secret(&endpoint.id, CURRENT, &sealed)?;
            endpoint.previous_secret_expires_at = Some(until);
            endpoint.updated_at = now_rfc3339();
            tx.put(&endpoint)?;
            Ok::<_, WebhookError>(())
        })
        .await?;
    Ok((secret, expires))
}

/// Queues a `webhook.test` event for endpoint `id` only.
pub async fn send_test(store: &Store, org_id: &str, id: &str) -> Result<DeliveryRecord, WebhookError> {
    let (org_id, id) = (org_id.to_owned(), id.to_owned());
    store
        .write(move |tx| {
            let endpoint = endpoint_in_org(tx, &org_id, &id)?;
            if !endpoint.enabled {
                return Err(WebhookError::Disabled(endpoint.id));
            }
            let data =
                serde_json::json!({ "endpointId": endpoint.id, "message": "This is a test event from FluxCascade." });
            let event = emit(tx, &org_id, EventType::WebhookTest, data)?;
            Ok(enqueue_new(tx, &endpoint, &event)?)
        })
        .await
}

/// Deliveries of endpoint `id`, newest first, optionally only those with `status`.
pub fn list_deliveries(
    store: &Store,
    org_id: &str,
    id: &str,
    status: Option<DeliveryStatus>,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<DeliveryRecord>, WebhookError> {
    store.read(|rx| {
        let endpoint = endpoint_in_org(rx, org_id, id)?;
        let prefix = format!("{}/", endpoint.id);
        let mut cursor = before.map(|delivery| format!("{prefix}{delivery}"));
        let mut out = Vec::new();
        // Newest first, a chunk of keys at a time, until the page is full or the list ends.
        while out.len() < limit {
            let keys = rx.index_keys_rev(IndexTable::EndpointDeliveries, &prefix, cursor.as_deref(), limit)?;
            let Some(last) = keys.last().cloned() else {
                break;
            };
            for key in &keys {
                if out.len() >= limit {
                    break;
                }
                if let Some(delivery) = rx.get::<DeliveryRecord>(&key[prefix.len()..])?
                    && status.is_none_or(|s| s == delivery.status)
                {
                    out.push(delivery);
                }
            }
            cursor = Some(last);
        }
        Ok(out)
    })
}

/// Delivery `id`.
pub fn get_delivery(store: &Store, org_id: &str, id: &str) -> Result<DeliveryRecord, WebhookError> {
    store.read(|rx| delivery_in_org(rx, org_id, id))
}

/// Starts a new attempt series for a delivery, due now.
fn requeue(tx: &mut Tx<'_>, mut delivery: DeliveryRecord) -> Result<DeliveryRecord, WebhookError> {
    unschedule(tx, &delivery)?;
    delivery.status = DeliveryStatus::Pending;
    delivery.series_attempts = 0;
    delivery.finished_at = None;
    delivery.next_attempt_at_ms = Some(tx.clock().now_ms());
    schedule(tx, &delivery)?;
    tx.put(&delivery)?;
    Ok(delivery)
}

/// Sends delivery `id` again.
pub async fn redeliver(store: &Store, org_id: &str, id: &str) -> Result<DeliveryRecord, WebhookError> {
    let (org_id, id) = (org_id.to_owned(), id.to_owned());
    store
        .write(move |tx| {
            let delivery = delivery_in_org(tx, &org_id, &id)?;
            requeue(tx, delivery)
        })
        .await
}

/// Sends again every delivery of endpoint `id` that failed and was created at or after `since`.
pub async fn recover(store: &Store, org_id: &str, id: &str, since: jiff::Timestamp) -> Result<u32, WebhookError> {
    let (org_id, id) = (org_id.to_owned(), id.to_owned());
    store
        .write(move |tx| {
            let endpoint = endpoint_in_org(tx, &org_id, &id)?;
            let prefix = format!("{}/", endpoint.id);
            let mut requeued = 0;
            for key in tx.index_keys(IndexTable::EndpointDeliveries, &prefix, usize::MAX)? {
                let Some(delivery) = tx.get::<DeliveryRecord>(&key[prefix.len()..])? else {
                    continue;
                };
                let created = delivery.created_at.parse::<jiff::Timestamp>().ok();
                if delivery.status == DeliveryStatus::Failed && created.is_some_and(|c| c >= since) {
                    requeue(tx, delivery)?;
                    requeued += 1;
                }
            }
            Ok(requeued)
        })
        .await
}

/// Deletes the oldest finished deliveries of endpoint `id` beyond the newest `keep`.
pub fn prune_deliveries(tx: &mut Tx<'_>, endpoint_id: &str, keep: usize) -> Result<usize, StoreError> {
    let prefix = format!("{endpoint_id}/");
    let count = usize::try_from(tx.index_count(IndexTable::EndpointDeliveries, &prefix)?).unwrap_or(usize::MAX);
    let excess = count.saturating_sub(keep);
    if excess == 0 {
        return Ok(0);
    }
    let mut pruned = 0;
    for key in tx.index_keys(IndexTable::EndpointDeliveries, &prefix, excess)? {
        let id = &key[prefix.len()..];
        if tx
            .get::<DeliveryRecord>(id)?
            .is_some_and(|d| d.status != DeliveryStatus::Pending)
        {
            tx.remove::<DeliveryRecord>(id)?;
            tx.index_remove(IndexTable::EndpointDeliveries, &key)?;
            pruned += 1;
        }
    }
    Ok(pruned)
}
