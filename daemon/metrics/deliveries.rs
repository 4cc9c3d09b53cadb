//! Outbound webhook deliveries: attempts by result, their latency, and how many deliveries
//! wait per endpoint (read from the store when scraped).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::{IndexTable, Reader, Store};
use crate::webhooks::attempt::AttemptResult;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
}

/// Queued deliveries counted per endpoint when scraped, at most.
const DEPTH_COUNT_LIMIT: usize = 100_000;

/// What delivery attempts did. Cheap to clone.
#[derive(Clone)]
pub struct DeliveryMetrics {
    attempts: Family<ResultLabels, Counter>,
    latency: Histogram,
    queued: Family<EndpointLabels, Gauge>,
}

impl Default for DeliveryMetrics {
    fn default() -> Self {
        DeliveryMetrics {
            attempts: Family::default(),
            latency: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            queued: Family::default(),
        }
    }
}

impl DeliveryMetrics {
    /// Counts an attempt by result (`succeeded`, `http_error`, `no_response`) and records its
    /// latency.
    pub fn attempted(&self, result: &AttemptResult) {
        let label = match (result.succeeded(), result.status_code) {
            (true, _) => "succeeded",
            (false, Some(_)) => "http_error",
            (false, None) => "no_response",
        };
        self.attempts
            .get_or_create(&ResultLabels { result: label.into() })
            .inc();
        self.latency.observe(result.latency_ms as f64 / 1000.0);
    }

    /// Reads each endpoint's queued deliveries from `store`.
    pub(super) fn read_queues(&self, store: &Store) {
        self.queued.clear();
        let keys = store.read(|rx| rx.index_keys(IndexTable::DeliveryQueue, "", DEPTH_COUNT_LIMIT));
        for key in keys.unwrap_or_default() {
            if let Some((endpoint, _)) = key.split_once('/') {
                self.queued
                    .get_or_create(&EndpointLabels {
                        endpoint: endpoint.to_owned(),
                    })
                    .inc();
            }
        }
    }

    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "webhook_delivery_attempts",
            "Outbound webhook delivery attempts by result",
            self.attempts.clone(),
        );
        registry.register(
            "webhook_delivery_duration_seconds",
            "Outbound webhook delivery attempt latency",
            self.latency.clone(),
        );
        registry.register(
            "webhook_deliveries_queued",
            "Deliveries waiting for an attempt, per endpoint",
            self.queued.clone(),
        );
    }
}
