//! Webhook delivery benchmark: `cargo bench --bench webhooks [-- EVENTS]` (default 20000).
//!
//! Runs fluxd's webhook delivery as the daemon does (the store and its writer thread, one
//! actor per endpoint under its supervisor, the address-guarded signing HTTP client, every
//! endpoint setting at its default) against a loopback hyper receiver, and reports:
//! 1. throughput: EVENTS events fanned out to four endpoints, delivered and recorded as
//!    succeeded, per second; and, in the same run against the same receiver, a bare hyper
//!    client posting the same signed bodies over as many connections as fluxd may use (4
//!    endpoints × 8 in flight): fluxd's rate as a share of that ceiling;
//! 2. latency at 1 k events/s for 5 s, one transaction per event: p50/p99 per delivery (each
//!    of the four endpoints' arrivals counted), from the start of the event's transaction to
//!    its arrival.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fluxcascade::actors::{self, Directory, Factories, NoChildren};
use fluxcascade::crypto::{MasterKey, Secret};
use fluxcascade::events::{EventType, emit};
use fluxcascade::metrics::DeliveryMetrics;
use fluxcascade::store::{Reader, Store, StoreError};
use fluxcascade::webhooks::actor::{EndpointFactory, WebhookRuntime};
use fluxcascade::webhooks::endpoints::{self, NewEndpoint};
use fluxcascade::webhooks::records::{DEFAULT_MAX_CONCURRENCY, DeliveryRecord, DeliveryStatus};
use fluxcascade::webhooks::signing;
use fluxcascade::webhooks::ssrf::{AddressPolicy, SharedPolicy};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const ENDPOINTS: usize = 4;
const LATENCY_RATE_PER_SECOND: usize = 1_000;
const LATENCY_SECONDS: usize = 5;

/// Arrival time per (path, webhook-id); successes are the requests answered 200.
type Arrivals = Arc<Mutex<HashMap<(String, String), Instant>>>;

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
                        let path = request.uri().path().to_owned();
                        arrivals.lock().unwrap().entry((path, id)).or_insert_with(Instant::now);
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

/// Counts deliveries by status, once none is pending (or the timeout passed).
async fn settled_deliveries(store: &Store, timeout: Duration) -> HashMap<&'static str, usize> {
    use fluxcascade::store::IndexTable;
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let queued = store
            .read(|rx| rx.index_keys(IndexTable::DeliveryQueue, "", 1))
            .expect("read");
        if queued.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut counts = HashMap::new();
    for delivery in store.read(|rx| rx.list::<DeliveryRecord>()).expect("deliveries") {
        let status = match delivery.status {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        };
        *counts.entry(status).or_default() += 1;
    }
    counts
}

/// The ceiling: `bodies` posted to `addr` by a bare hyper client over `connections`
/// keep-alive connections, signed like fluxd signs them; returns the posts per second.
async fn bare_client_rate(
    addr: std::net::SocketAddr,
    bodies: Arc<Vec<(String, Bytes)>>,
    secret: Secret,
    connections: usize,
) -> f64 {
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..connections)
        .map(|worker| {
            let (bodies, next, secret) = (bodies.clone(), next.clone(), secret.clone());
            tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .expect("handshake");
                tokio::spawn(connection);
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((id, body)) = bodies.get(n) else { break };
                    let timestamp = jiff::Timestamp::now().as_second();
                    let signatures = signing::sign(std::slice::from_ref(&secret), id, timestamp, body).expect("sign");
                    let request = http::Request::post(format!("/ceiling/{}", worker % ENDPOINTS))
                        .header(http::header::HOST, addr.to_string())
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .header("webhook-id", format!("ceiling-{id}"))
                        .header("webhook-timestamp", timestamp.to_string())
                        .header("webhook-signature", signatures.standard)
                        .header("X-FluxCascade-Signature", signatures.fluxcascade)
                        .body(Full::new(body.clone()))
                        .expect("request");
                    let response = sender.send_request(request).await.expect("send");
                    assert!(response.status().is_success());
                    let _ = http_body_util::BodyExt::collect(response.into_body()).await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
    bodies.len() as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let events: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(20_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), MasterKey::generate()).expect("store");
    let policy = AddressPolicy {
        allow_private: true,
        allow_http: true,
    };
    let directory = Directory::default();
    let runtime = WebhookRuntime::start(
        store.clone(),
        SharedPolicy::new(policy),
        1_000_000,
        directory.clone(),
        DeliveryMetrics::default(),
    )
    .expect("runtime");

    let arrivals: Arrivals = Arc::default();
    let addr = start_receiver(arrivals.clone()).await;
    let mut secret = None;
    for index in 0..ENDPOINTS {
        let new = NewEndpoint {
            url: format!("http://{addr}/hook/{index}"),
            description: String::new(),
            event_types: vec!["sync.*".into()],
            settings: Default::default(),
        };
        let (_, created) = endpoints::create(&store, policy, "org_bench", new)
            .await
            .expect("endpoint");
        secret = Some(created);
    }
    let tree = actors::start_tree(
        Factories {
            connections: Arc::new(NoChildren("connection")),
            mappings: Arc::new(NoChildren("mapping")),
            webhook_endpoints: Arc::new(EndpointFactory { runtime }),
        },
        directory,
    )
    .await
    .expect("actors");

    // 1. Throughput: a backlog of events, 500 per transaction, each fanned out to every endpoint.
    let deliveries = events * ENDPOINTS;
    let started = Instant::now();
    let mut enqueued_in = Duration::ZERO;
    let mut bodies = Vec::with_capacity(events);
    for chunk in 0..events.div_ceil(500) {
        let count = (events - chunk * 500).min(500);
        let emitted = store
            .write(move |tx| {
                (0..count)
                    .map(|n| {
                        let data = serde_json::json!({ "jobId": format!("job_{chunk}_{n}"), "status": "completed" });
                        emit(tx, "org_bench", EventType::SyncCompleted, data)
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .await
            .expect("emit");
        bodies.extend(emitted.iter().map(|event| {
            let body = serde_json::to_vec(&event.payload()).expect("payload");
            (event.id.clone(), Bytes::from(body))
        }));
    }
    enqueued_in += started.elapsed();
    let arrived = wait_for_arrivals(&arrivals, deliveries, Duration::from_secs(600)).await;
    let outcome = settled_deliveries(&store, Duration::from_secs(600)).await;
    let elapsed = started.elapsed();
    let succeeded = outcome.get("succeeded").copied().unwrap_or(0);
    let fluxd_rate = succeeded as f64 / elapsed.as_secs_f64();
    let connections = ENDPOINTS * DEFAULT_MAX_CONCURRENCY as usize;
    let ceiling = bare_client_rate(addr, Arc::new(bodies), secret.expect("secret"), connections).await;
    println!(
        "throughput: {events} events to {ENDPOINTS} endpoints (enqueued in {:.2} s) = {deliveries} deliveries, {succeeded} succeeded ({outcome:?}) in {:.2} s = {fluxd_rate:.0} deliveries/s; \
         bare hyper client, same receiver and signed bodies, {connections} connections: {ceiling:.0} posts/s; fluxd at {:.2} of that ceiling",
        enqueued_in.as_secs_f64(),
        elapsed.as_secs_f64(),
        fluxd_rate / ceiling,
    );
    assert!(arrived && succeeded == deliveries, "not every delivery succeeded");

    // 2. Latency at 1 k events/s, one transaction per event, per delivery.
    arrivals.lock().unwrap().clear();
    let total = LATENCY_RATE_PER_SECOND * LATENCY_SECONDS;
    let interval = Duration::from_secs(1) / LATENCY_RATE_PER_SECOND as u32;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let sending = Instant::now();
    let mut writes = Vec::with_capacity(total);
    for n in 0..total {
        ticker.tick().await;
        // Each event its own transaction, started on time whether or not earlier ones are
        // durable yet (as events from concurrent syncs and API calls are).
        let store = store.clone();
        writes.push(tokio::spawn(async move {
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
            (event.id.clone(), enqueued_at)
        }));
    }
    let mut committed: HashMap<String, Instant> = HashMap::with_capacity(total);
    for write in writes {
        let (id, at) = write.await.expect("write");
        committed.insert(id, at);
    }
    let sent_rate = total as f64 / sending.elapsed().as_secs_f64();
    let all_arrived = wait_for_arrivals(&arrivals, total * ENDPOINTS, Duration::from_secs(60)).await;
    let arrived = arrivals.lock().unwrap().clone();
    let mut latencies: Vec<Duration> = arrived
        .iter()
        .filter_map(|((_, id), at)| committed.get(id).map(|sent| at.saturating_duration_since(*sent)))
        .collect();
    latencies.sort();
    println!(
        "latency at {sent_rate:.0} events/s for {LATENCY_SECONDS} s, {} of {} deliveries arrived: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        total * ENDPOINTS,
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    );
    assert!(all_arrived, "latency deliveries did not all arrive");
    tree.shutdown(Duration::from_secs(5)).await;
}
