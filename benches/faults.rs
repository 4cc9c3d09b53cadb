//! Faults, and whether fluxd stays responsive through them and recovers after: GetStatus
//! latency (p50/p99/max, one call every 10 ms) idle, while 20 webhook receivers hang, while
//! the provider's token endpoint answers 503 with every access token expired, while the record
//! APIs answer 500, and through a 429 storm; then the faults end and the bench counts what
//! recovered.
//!
//! `cargo bench --bench faults` (release fluxd and sandbox as separate processes).

#[path = "support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fluxcascade::pb;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use support::{Daemon, StandaloneSandbox, ms, percentile};

const RECORDS: usize = 2000;
const ENDPOINTS: usize = 20;

/// A receiver that hangs every request while `hanging`, and answers 200 otherwise.
#[derive(Clone)]
struct Receiver {
    addr: std::net::SocketAddr,
    hanging: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let receiver = Receiver {
            addr: listener.local_addr().expect("addr"),
            hanging: Arc::new(AtomicBool::new(true)),
            answered: Arc::default(),
        };
        let shared = receiver.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |_request: http::Request<hyper::body::Incoming>| {
                        let shared = shared.clone();
                        async move {
                            while shared.hanging.load(Ordering::Relaxed) {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            shared.answered.fetch_add(1, Ordering::Relaxed);
                            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        receiver
    }
}

/// GetStatus latencies, one call every 10 ms for `span`.
async fn probe(daemon: &Daemon, span: Duration) -> Vec<Duration> {
    let mut client = pb::system_service_client::SystemServiceClient::new(daemon.channel.clone());
    let mut latencies = Vec::new();
    let end = Instant::now() + span;
    while Instant::now() < end {
        let started = Instant::now();
        client
            .get_status(daemon.request(pb::GetStatusRequest {}))
            .await
            .expect("GetStatus answers");
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    latencies.sort();
    latencies
}

fn report(phase: &str, latencies: &[Duration]) {
    println!(
        "{phase:<44} GetStatus p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms  ({} calls, all answered)",
        ms(percentile(latencies, 0.5)),
        ms(percentile(latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
        latencies.len()
    );
}

async fn control(sandbox: &str, path: &str, body: serde_json::Value) {
    let answer = reqwest::Client::new()
        .post(format!("{sandbox}/_control/{path}"))
        .json(&body)
        .send()
        .await
        .expect("control");
    assert!(answer.status().is_success(), "{path}");
}

/// Sends the same control action to HubSpot's and Jobber's simulators.
async fn control_both(sandbox: &str, action: &str, body: serde_json::Value) {
    for provider in ["hubspot", "jobber"] {
        control(sandbox, &format!("{provider}/{action}"), body.clone()).await;
    }
}

/// A job's status as the API names it.
fn status_name(job: &pb::SyncJob) -> &'static str {
    pb::SyncStatus::try_from(job.status)
        .map(|s| s.as_str_name())
        .unwrap_or("?")
}

async fn run_sync(daemon: &Daemon, mapping: &str) -> pb::SyncJob {
    daemon.sync(mapping).await.0
}

#[tokio::main]
async fn main() {
    let sandbox = StandaloneSandbox::start_with(RECORDS, &["--no-limits"]);
    let dir = tempfile::tempdir().expect("dir");
    let config = format!("{}\n[webhooks]\nallow_private = true\n", sandbox.config);
    let daemon = Daemon::start(dir.path(), &config).await;
    let receiver = Receiver::start().await;
    let hubspot = daemon.connect(pb::Provider::Hubspot).await;
    let jobber = daemon.connect(pb::Provider::Jobber).await;
    let mut webhooks = pb::webhook_service_client::WebhookServiceClient::new(daemon.channel.clone());
    for index in 0..ENDPOINTS {
        webhooks
            .create_webhook_endpoint(daemon.request(pb::CreateWebhookEndpointRequest {
                url: format!("http://{}/hook/{index}", receiver.addr),
                description: String::new(),
                event_types: vec!["sync.*".into(), "record.created".into()],
                settings: None,
            }))
            .await
            .expect("endpoint");
    }
    let mapping = daemon
        .create_mapping(
            &format!(
                "name: faults\nsource: {{ connection: {hubspot}, object: contacts }}\ntarget: {{ connection: {jobber}, object: clients }}\nfieldPairs:\n  - {{ sourceField: email, targetField: email }}\n  - {{ sourceField: firstname, targetField: firstName }}\nmatchKey: email\n"
            ),
            true,
        )
        .await;

    report("idle", &probe(&daemon, Duration::from_secs(5)).await);

    // 1. Every receiver hangs while a first sync emits thousands of events for them.
    let (job, probed) = tokio::join!(run_sync(&daemon, &mapping), probe(&daemon, Duration::from_secs(15)));
    let stats = job.stats.unwrap_or_default();
    report(
        &format!("20 hanging receivers, {} records synced", stats.created + stats.updated),
        &probed,
    );

    // 2. The provider's token endpoint fails and every access token is expired.
    control_both(
        &sandbox.base,
        "fail-token-calls",
        serde_json::json!({ "count": 100_000, "status": 503 }),
    )
    .await;
    control_both(&sandbox.base, "expire-access-tokens", serde_json::json!({})).await;
    let (job, probed) = tokio::join!(run_sync(&daemon, &mapping), probe(&daemon, Duration::from_secs(10)));
    report(
        &format!("token endpoint 503, tokens expired (sync {})", status_name(&job)),
        &probed,
    );
    control_both(&sandbox.base, "fail-token-calls", serde_json::json!({ "count": 0 })).await;

    // 3. The record APIs fail on the providers' side: HubSpot and Jobber answer 500.
    control_both(
        &sandbox.base,
        "fail-api-calls",
        serde_json::json!({ "count": 100_000, "status": 500 }),
    )
    .await;
    let (job, probed) = tokio::join!(run_sync(&daemon, &mapping), probe(&daemon, Duration::from_secs(10)));
    report(&format!("record APIs answer 500 (sync {})", status_name(&job)), &probed);
    control_both(&sandbox.base, "fail-api-calls", serde_json::json!({ "count": 0 })).await;

    // 4. A 429 storm: HubSpot's published limits back on, with a full resync.
    control(
        &sandbox.base,
        "hubspot/limits",
        serde_json::json!({ "requests": true, "search": true }),
    )
    .await;
    let mut syncs = pb::sync_service_client::SyncServiceClient::new(daemon.channel.clone());
    let full = syncs
        .run_sync(daemon.request(pb::RunSyncRequest {
            mapping_id: mapping.clone(),
            full: true,
            confirm: true,
        }))
        .await
        .map(|job| job.into_inner().id);
    report(
        "HubSpot rate limits, full resync",
        &probe(&daemon, Duration::from_secs(10)).await,
    );
    if let Ok(id) = full {
        let _ = syncs.cancel_sync(daemon.request(pb::CancelSyncRequest { id })).await;
    }
    control(&sandbox.base, "hubspot/limits", serde_json::json!({ "all": false })).await;

    // The faults end: receivers answer, the provider recovers.
    receiver.hanging.store(false, Ordering::Relaxed);
    let recovered = Instant::now();
    let mut answered = 0;
    while recovered.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = receiver.answered.load(Ordering::Relaxed);
        if now == answered && now > 0 {
            break;
        }
        answered = now;
    }
    let job = loop {
        let job = run_sync(&daemon, &mapping).await;
        if job.status != pb::SyncStatus::Running as i32 {
            break job;
        }
    };
    println!(
        "after the faults: {} webhook deliveries answered within {:.0} s; the next sync ended {}",
        receiver.answered.load(Ordering::Relaxed),
        recovered.elapsed().as_secs_f64(),
        status_name(&job)
    );
    let mut client = pb::system_service_client::SystemServiceClient::new(daemon.channel.clone());
    let status = client
        .get_status(daemon.request(pb::GetStatusRequest {}))
        .await
        .expect("status")
        .into_inner();
    println!("store error after the faults: {:?}", status.store_error);
}
