//! Stored shapes of webhook endpoints and deliveries.

use serde::{Deserialize, Serialize};

use crate::store::{BytesTable, DELIVERIES, Record, WEBHOOK_ENDPOINTS};

/// Default seconds between attempts: retry after 1 s, 2 s, 4 s, then the delivery fails.
pub const DEFAULT_RETRY_SCHEDULE: [u32; 3] = [1, 2, 4];
/// Default number of consecutive failed deliveries that disables an endpoint.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 10;
/// Default attempt timeout.
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 10;
/// Default attempts in flight per endpoint.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 8;

/// A customer's receiver URL and what it subscribes to. Its signing secrets live in the
/// secrets table under this record's id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EndpointRecord {
    pub id: String,
    pub org_id: String,
    pub url: String,
    pub description: String,
    /// Exact names, `prefix.*` wildcards or `*`; empty means every event.
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
    pub retry_schedule_seconds: Vec<u32>,
    pub failure_threshold: u32,
    pub consecutive_failures: u32,
    pub ordered: bool,
    pub max_concurrency: u32,
    pub timeout_seconds: u32,
    pub disabled_reason: Option<String>,
    /// Until then (RFC 3339) the previous secret signs too, after a rotation.
    pub previous_secret_expires_at: Option<String>,
}

impl Record for EndpointRecord {
    const TABLE: BytesTable = WEBHOOK_ENDPOINTS;
    fn id(&self) -> &str {
        &self.id
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

/// One attempt to POST a delivery.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AttemptRecord {
    pub number: u32,
    pub at: String,
    /// None when no response arrived (timeout, connection refused).
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    /// The first 1 KiB of the response body.
    pub response_body: String,
}

/// One event on its way to one endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeliveryRecord {
    pub id: String,
    pub endpoint_id: String,
    pub org_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub created_at: String,
    /// Unix ms of the next attempt while pending.
    pub next_attempt_at_ms: Option<i64>,
    pub attempts: Vec<AttemptRecord>,
    /// Attempts made in the current series (a redelivery starts a new series).
    pub series_attempts: u32,
    pub finished_at: Option<String>,
}

impl Record for DeliveryRecord {
    const TABLE: BytesTable = DELIVERIES;
    fn id(&self) -> &str {
        &self.id
    }
}
