//! Inbound provider webhooks: events by outcome, refusals by reason, records synced, and the
//! lag from a provider's change to fluxd's write.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InboundLabels {
    provider: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    provider: String,
    reason: String,
}

/// What inbound webhooks did. Cheap to clone: every clone records into the same metrics.
#[derive(Clone)]
pub struct InboundMetrics {
    events: Family<InboundLabels, Counter>,
    refused: Family<RefusalLabels, Counter>,
    synced: Counter,
    lag: Histogram,
}

impl Default for InboundMetrics {
    fn default() -> Self {
        InboundMetrics {
            events: Family::default(),
            refused: Family::default(),
            synced: Counter::default(),
            lag: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
        }
    }
}

impl InboundMetrics {
    /// Counts `count` events of `provider` with `outcome`: `queued` (for a record-level
    /// sync), `duplicate` (a redelivery) or `ignored` (no mapping syncs that object).
    pub fn events(&self, provider: &str, outcome: &str, count: u64) {
        if count > 0 {
            self.events
                .get_or_create(&InboundLabels {
                    provider: provider.into(),
                    outcome: outcome.into(),
                })
                .inc_by(count);
        }
    }

    /// Counts a refused request.
    pub fn refused(&self, provider: &str, reason: &str) {
        self.refused
            .get_or_create(&RefusalLabels {
                provider: provider.into(),
                reason: reason.into(),
            })
            .inc();
    }

    /// Records the writes of a record-level sync, each with its lag behind the provider's
    /// change (ms).
    pub fn observe_writes(&self, lags_ms: &[i64]) {
        self.synced.inc_by(lags_ms.len() as u64);
        for lag in lags_ms {
            self.lag.observe((*lag).max(0) as f64 / 1000.0);
        }
    }

    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "inbound_events",
            "Inbound webhook events by provider and outcome (queued, duplicate, ignored)",
            self.events.clone(),
        );
        registry.register(
            "inbound_refused",
            "Inbound webhook requests refused, by provider and reason",
            self.refused.clone(),
        );
        registry.register(
            "inbound_records_synced",
            "Records written by record-level syncs of inbound webhook changes",
            self.synced.clone(),
        );
        registry.register(
            "inbound_lag_seconds",
            "From a provider's change (its occurredAt) to fluxd's write of it",
            self.lag.clone(),
        );
    }
}
