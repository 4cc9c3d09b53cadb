//! Prometheus metrics: RPC counts and latency per method, live actors per supervisor.

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
    pub fn new(live: &LiveCounts) -> Self {
        let mut registry = Registry::with_prefix("fluxd");
        let rpcs = Family::<RpcLabels, Counter>::default();
        registry.register("grpc_requests", "gRPC requests by method and status code", rpcs.clone());
        let latency = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register("grpc_request_duration_seconds", "gRPC request latency", latency.clone());
        let actors = Family::<SupervisorLabels, Gauge>::default();
        registry.register("live_actors", "Live actors per supervisor", actors.clone());
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
