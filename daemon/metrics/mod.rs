//! Prometheus metrics: gRPC requests and latency, live actors and restarts per supervisor,
//! sync runs and records, outbound deliveries and queues, token refreshes, inbound webhooks,
//! build information and the process's own readings. Served as OpenMetrics, or as the plain
//! Prometheus text format when a scraper asks for `text/plain`.

mod deliveries;
mod inbound;
mod process;
mod syncs;
mod text;
mod usage;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use deliveries::DeliveryMetrics;
pub use inbound::InboundMetrics;
pub use syncs::SyncMetrics;
pub use text::Exposition;

use crate::actors::LiveCounts;
use crate::cluster::Ownership;
use crate::store::Store;

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
struct RefreshLabels {
    provider: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    sandbox: String,
}

/// The daemon's metrics. Cheap to clone: every clone records into the same registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    rpcs: Family<RpcLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
    actors: Family<SupervisorLabels, Gauge>,
    restarts: Family<SupervisorLabels, Gauge>,
    refreshes: Family<RefreshLabels, Counter>,
    live: Arc<OnceLock<LiveCounts>>,
    leases: Gauge,
    /// The leases this node holds, read at each scrape.
    ownership: Arc<OnceLock<Ownership>>,
    process: process::ProcessMetrics,
    pub inbound: InboundMetrics,
    pub syncs: SyncMetrics,
    pub deliveries: DeliveryMetrics,
    usage: usage::UsageMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut root = Registry::default();
        let process = process::ProcessMetrics::default();
        // The process gauges carry the standard names; everything else is `fluxd_…`.
        process.register(&mut root);
        let registry = root.sub_registry_with_prefix("fluxd");
        let rpcs = Family::<RpcLabels, Counter>::default();
        registry.register("grpc_requests", "gRPC requests by method and status code", rpcs.clone());
        let latency = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register("grpc_request_duration_seconds", "gRPC request latency", latency.clone());
        let actors = Family::<SupervisorLabels, Gauge>::default();
        registry.register("live_actors", "Live actors per supervisor", actors.clone());
        let restarts = Family::<SupervisorLabels, Gauge>::default();
        registry.register(
            "actor_restarts",
            "Actors restarted after a crash, per supervisor, since start",
            restarts.clone(),
        );
        let refreshes = Family::<RefreshLabels, Counter>::default();
        registry.register(
            "token_refreshes",
            "OAuth token refreshes by provider and result",
            refreshes.clone(),
        );
        let leases = Gauge::default();
        registry.register(
            "cluster_leases_held",
            "Organization leases this node holds (cluster mode; 0 on a node with its own store)",
            leases.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
                sandbox: cfg!(feature = "sandbox").to_string(),
            })
            .set(1);
        registry.register("build_info", "The running build (value 1)", build);
        let inbound = InboundMetrics::default();
        inbound.register(registry);
        let syncs = SyncMetrics::default();
        syncs.register(registry);
        let deliveries = DeliveryMetrics::default();
        deliveries.register(registry);
        let usage = usage::UsageMetrics::default();
        usage.register(registry);
        Metrics {
            registry: Arc::new(root),
            rpcs,
            latency,
            actors,
            restarts,
            refreshes,
            live: Arc::default(),
            leases,
            ownership: Arc::default(),
            process,
            inbound,
            syncs,
            deliveries,
            usage,
        }
    }

    /// Reads live actors and restarts from `live` at each scrape.
    pub fn watch_actors(&self, live: &LiveCounts) {
        let _ = self.live.set(live.clone());
    }

    /// Reads the leases of `ownership` at each scrape (cluster mode).
    pub fn watch_leases(&self, ownership: &Ownership) {
        let _ = self.ownership.set(ownership.clone());
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

    /// Counts a token refresh of `provider` (`result`: `ok`, `revoked`, `failed`).
    pub fn refreshed(&self, provider: &str, result: &str) {
        self.refreshes
            .get_or_create(&RefreshLabels {
                provider: provider.into(),
                result: result.into(),
            })
            .inc();
    }

    /// The registry in `format`, with the gauges read at scrape time (actors, queues, process)
    /// brought up to date from `store` and the actor tree.
    pub fn render(&self, format: Exposition, store: &Store) -> String {
        if let Some(live) = self.live.get() {
            for (name, value, restarts) in live.snapshot_all() {
                let labels = SupervisorLabels {
                    supervisor: name.into(),
                };
                self.actors
                    .get_or_create(&labels)
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
                self.restarts
                    .get_or_create(&labels)
                    .set(i64::try_from(restarts).unwrap_or(i64::MAX));
            }
        }
        if let Some(ownership) = self.ownership.get() {
            self.leases
                .set(i64::try_from(ownership.held().len()).unwrap_or(i64::MAX));
        }
        self.deliveries.read_queues(store);
        self.usage.read(store);
        self.process.read();
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        match format {
            Exposition::OpenMetrics => out,
            Exposition::Prometheus => text::to_prometheus(&out),
        }
    }
}
