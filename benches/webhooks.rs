//! Webhook delivery benchmark: `cargo bench --bench webhooks`.
//!
//! Runs fluxd's webhook subsystem in-process (store, endpoint actors under their supervisor,
//! the group-committing recorder, the signed-delivery client) against an in-process hyper
//! receiver on loopback, and reports:
//! 1. throughput: signed deliveries/s for a backlog of events fanned out to endpoints;
//! 2. latency: p50/p99 from the start of an event's transaction (its enqueue, including the
//!    commit's fsync) to its first attempt arriving at the receiver, with events committed
//!    one per transaction at 1 k events/s.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fluxcascade::actors::{self, Directory, Factories, NoChildren};
use fluxcascade::crypto::MasterKey;
use fluxcascade::events::{EventType, emit};
use fluxcascade::store::{Store, StoreError};
use fluxcascade::webhooks::actor::{EndpointFactory, WebhookRuntime};
use fluxcascade::webhooks::endpoints::{self, NewEndpoint, SettingsChange};
use fluxcascade::webhooks::ssrf::AddressPolicy;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const BACKLOG_EVENTS: usize = 20_000;
const ENDPOINTS: usize = 4;
const LATENCY_RATE_PER_SECOND: usize = 1_000;
const LATENCY_SECONDS: usize = 5;

/// First arrival time per webhook-id.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn start_receiver(arrivals: Arrivals) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let arrivals = arrivals.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let arrivals = arrivals.clone();
                    async move {
                        let id = request
                            .headers()
                            .get("webhook-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        arrivals.lock().unwrap().entry(id).or_insert_with(Instant::now);
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn wait_for_arrivals(arrivals: &Arrivals, count: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if arrivals.lock().unwrap().len() >= count {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), MasterKey::generate()).expect("store");
    let policy = AddressPolicy {
        allow_private: true,
        allow_http: true,
    };
    let directory = Directory::default();
    let runtime = WebhookRuntime::start(store.clone(), policy, 1_000_000, directory.clone()).expect("runtime");

    let arrivals: Arrivals = Arc::default();
    let addr = start_receiver(arrivals.clone()).await;
    for index in 0..ENDPOINTS {
        let new = NewEndpoint {
            url: format!("http://{addr}/hook/{index}"),
            description: String::new(),
            event_types: vec!["sync.*".into()],
            settings: SettingsChange {
                max_concurrency: Some(32),
                ..SettingsChange::default()
            },
        };
        endpoints::create(&store, policy, "org_bench", new)
            .await
            .expect("endpoint");
    }
    let tree = actors::start_tree(
        Factories {
            connections: Arc::new(NoChildren("connection")),
            mappings: Arc::new(NoChildren("mapping")),
            webhook_endpoints: Arc::new(EndpointFactory {
                runtime: runtime.clone(),
            }),
        },
        directory,
    )
    .await
    .expect("actors");

    // 1. Throughput: a backlog of events, 500 per transaction, each fanned out to every endpoint.
    let deliveries = BACKLOG_EVENTS * ENDPOINTS;
    let started = Instant::now();
    for chunk in 0..BACKLOG_EVENTS / 500 {
        store
            .write(move |tx| {
                for n in 0..500 {
                    let data = serde_json::json!({ "jobId": format!("job_{chunk}_{n}"), "status": "completed" });
                    emit(tx, "org_bench", EventType::SyncCompleted, data)?;
                }
                Ok::<_, StoreError>(())
            })
            .await
            .expect("emit");
    }
    let enqueued = started.elapsed();
    // Every endpoint receives each event; arrivals are keyed by event id, so wait for the
    // recorder to mark all deliveries done instead.
    assert!(
        wait_for_arrivals(&arrivals, BACKLOG_EVENTS, Duration::from_secs(300)).await,
        "deliveries did not arrive"
    );
    let all_done = wait_until_no_pending(&store, Duration::from_secs(300)).await;
    let elapsed = started.elapsed();
    assert!(all_done, "deliveries still pending");
    println!(
        "throughput: {deliveries} signed deliveries to {ENDPOINTS} endpoints in {:.2} s = {:.0} deliveries/s (enqueue of {BACKLOG_EVENTS} events took {:.2} s)",
        elapsed.as_secs_f64(),
        deliveries as f64 / elapsed.as_secs_f64(),
        enqueued.as_secs_f64(),
    );

    // 2. Latency at 1 k events/s, one transaction per event.
    arrivals.lock().unwrap().clear();
    let total = LATENCY_RATE_PER_SECOND * LATENCY_SECONDS;
    let interval = Duration::from_secs(1) / LATENCY_RATE_PER_SECOND as u32;
    let mut committed: HashMap<String, Instant> = HashMap::with_capacity(total);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for n in 0..total {
        ticker.tick().await;
        let enqueued_at = Instant::now();
        let event = store
            .write(move |tx| {
                emit(
                    tx,
                    "org_bench",
                    EventType::SyncStarted,
                    serde_json::json!({ "jobId": format!("job_l{n}") }),
                )
            })
            .await
            .expect("emit");
        committed.insert(event.id.clone(), enqueued_at);
    }
    assert!(
        wait_for_arrivals(&arrivals, total, Duration::from_secs(60)).await,
        "latency deliveries did not arrive"
    );
    let arrived = arrivals.lock().unwrap().clone();
    let mut latencies: Vec<Duration> = committed
        .iter()
        .filter_map(|(id, at)| arrived.get(id).map(|first| first.saturating_duration_since(*at)))
        .collect();
    latencies.sort();
    println!(
        "latency at {LATENCY_RATE_PER_SECOND} events/s for {LATENCY_SECONDS} s (to {ENDPOINTS} endpoints, first arrival): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    );
    tree.shutdown(Duration::from_secs(5)).await;
}

/// Polls until no endpoint has a queued delivery.
async fn wait_until_no_pending(store: &Store, timeout: Duration) -> bool {
    use fluxcascade::store::{IndexTable, Reader};
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let queued = store
            .read(|rx| rx.index_keys(IndexTable::DeliveryQueue, "", 1))
            .expect("read");
        if queued.is_empty() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}
