//! Prometheus metrics: RPC counts and latency per method, live actors per supervisor, and
//! inbound provider webhooks (accepted, refused by reason, deduplicated, synced, and the lag
//! from the provider's change to fluxd's write).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::actors::LiveCounts;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SupervisorLabels {
    supervisor: String,
}

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

    fn register(&self, registry: &mut Registry) {
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

/// The daemon's metrics registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    rpcs: Family<RpcLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
    actors: Family<SupervisorLabels, Gauge>,
    live: LiveCounts,
}

impl Metrics {
    /// Registers every metric; the actor gauges are read from `live` at scrape time.
    pub fn new(live: &LiveCounts, inbound: &InboundMetrics) -> Self {
        let mut registry = Registry::with_prefix("fluxd");
        let rpcs = Family::<RpcLabels, Counter>::default();
        registry.register("grpc_requests", "gRPC requests by method and status code", rpcs.clone());
        let latency = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register("grpc_request_duration_seconds", "gRPC request latency", latency.clone());
        let actors = Family::<SupervisorLabels, Gauge>::default();
        registry.register("live_actors", "Live actors per supervisor", actors.clone());
        inbound.register(&mut registry);
        Metrics {
            registry: Arc::new(registry),
            rpcs,
            latency,
            actors,
            live: live.clone(),
        }
    }

    /// Records one finished RPC.
    pub fn observe_rpc(&self, method: &str, code: &str, elapsed: Duration) {
        self.rpcs
            .get_or_create(&RpcLabels {
                method: method.into(),
                code: code.into(),
            })
            .inc();
        self.latency
            .get_or_create(&MethodLabels { method: method.into() })
            .observe(elapsed.as_secs_f64());
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let (connections, mappings, endpoints) = self.live.snapshot();
        for (name, value) in [
            ("connections", connections),
            ("mappings", mappings),
            ("webhook_endpoints", endpoints),
        ] {
            let value = i64::try_from(value).unwrap_or(i64::MAX);
            self.actors
                .get_or_create(&SupervisorLabels {
                    supervisor: name.into(),
                })
                .set(value);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
