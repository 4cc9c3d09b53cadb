//! Inbound webhook benchmark: `cargo bench --bench inbound [-- REQUESTS [CHANGES]]`
//! (default 40000 requests, 2000 changes).
//!
//! A standalone sandbox (`--no-limits`: Jobber's real limits allow some 8 writes a second,
//! far below the 100 changes a second measured here) and a release fluxd, as separate
//! processes, on the default configuration.
//!
//! 1. Acceptance: 32 HubSpot portals connected; 64 concurrent clients POST signed (v3)
//!    single-event HubSpot batches, every event new, to fluxd's HubSpot app URL. Prints the
//!    webhooks accepted per second — each answered 2xx only after its transaction (the event's
//!    key, for deduplication) was durably committed — and any refusals.
//! 2. Lag: a HubSpot contacts → Jobber clients mapping (first sync done, no schedule) and the
//!    sandbox HubSpot app's webhooks pointed at fluxd; 100 contact changes a second through the
//!    sandbox. Each change's lag is the Jobber client's write time minus the HubSpot change
//!    time, both the providers' own timestamps (HubSpot's `occurredAt`). Prints p50, p99, max
//!    and how many changes arrived.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use fluxcascade::pb;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use support::{Daemon, StandaloneSandbox, ms, percentile};

const PORTALS: u64 = 32;
const CLIENTS: usize = 64;

fn sign_v3(url: &str, body: &str, timestamp: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(b"sandbox-hubspot-secret").expect("key");
    for part in ["POST", url, body, timestamp] {
        mac.update(part.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

async fn acceptance(requests: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sandbox = StandaloneSandbox::start_with(10, &["--no-limits"]);
    let daemon = Daemon::start(dir.path(), &sandbox.config).await;
    for _ in 0..PORTALS {
        daemon.connect(pb::Provider::Hubspot).await;
    }
    let url = format!("http://{}/webhooks/hubspot", daemon.http);
    let next = Arc::new(AtomicU64::new(0));
    let (accepted, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let http = reqwest::Client::new();
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (url, next, accepted, refused, http) = (
                url.clone(),
                next.clone(),
                accepted.clone(),
                refused.clone(),
                http.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= requests {
                        return;
                    }
                    let body = json!([{
                        "eventId": n, "subscriptionId": 1, "portalId": 62_515 + n % PORTALS, "appId": 1_234_567,
                        "occurredAt": now_ms(), "subscriptionType": "contact.propertyChange", "attemptNumber": 0,
                        "objectId": 1001 + n % 10, "propertyName": "firstname", "propertyValue": format!("n{n}"),
                        "changeSource": "CRM_UI",
                    }])
                    .to_string();
                    let timestamp = now_ms().to_string();
                    let signature = sign_v3(&url, &body, &timestamp);
                    let answer = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("x-hubspot-signature-v3", signature)
                        .header("x-hubspot-request-timestamp", timestamp)
                        .body(body)
                        .send()
                        .await;
                    match answer {
                        Ok(response) if response.status().is_success() => accepted.fetch_add(1, Ordering::Relaxed),
                        _ => refused.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for client in clients {
        client.await.expect("client");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let accepted = accepted.load(Ordering::Relaxed);
    println!(
        "inbound acceptance: {accepted} of {requests} HubSpot webhooks accepted ({} refused) by {CLIENTS} clients for {PORTALS} portals in {elapsed:.2} s = {:.0} accepted webhooks/s, each durably committed before its 2xx",
        refused.load(Ordering::Relaxed),
        accepted as f64 / elapsed,
    );
}

async fn lag(changes: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sandbox = StandaloneSandbox::start_with(changes, &["--no-limits"]);
    let base = sandbox.base.clone();
    let config = format!("{}\n[sync]\nconfirm_threshold = 0\n", sandbox.config);
    let daemon = Daemon::start(dir.path(), &config).await;
    let hubspot = daemon.connect(pb::Provider::Hubspot).await;
    let jobber = daemon.connect(pb::Provider::Jobber).await;
    let text = format!(
        "name: realtime\nsource: {{connection: {hubspot}, object: contacts}}\ntarget: {{connection: {jobber}, object: clients}}\nfieldPairs:\n  - {{sourceField: firstname, targetField: firstName}}\n  - {{sourceField: lastname, targetField: lastName}}\n  - {{sourceField: email, targetField: email}}\nmatchKey: email\n"
    );
    let mapping = daemon.create_mapping(&text, false).await;
    let (first, _) = daemon.sync(&mapping).await;
    assert_eq!(first.status, pb::SyncStatus::Completed as i32, "{first:?}");
    let mut client = pb::connection_service_client::ConnectionServiceClient::new(daemon.channel.clone());
    let app_url = client
        .get_connection_webhooks(daemon.request(pb::GetConnectionWebhooksRequest {
            id: hubspot,
            subscribe: false,
        }))
        .await
        .expect("webhooks")
        .into_inner()
        .app_url;
    let http = reqwest::Client::new();
    http.put(format!("{base}/_control/hubspot/webhooks"))
        .json(&json!({ "targetUrl": app_url }))
        .send()
        .await
        .expect("target URL");
    let contacts: Value = http
        .get(format!("{base}/_control/hubspot/records/contacts?limit={changes}"))
        .send()
        .await
        .expect("contacts")
        .json()
        .await
        .expect("JSON");
    let contacts: Vec<(String, String)> = contacts["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().expect("id").to_owned(),
                c["fields"]["email"].as_str().expect("email").to_lowercase(),
            )
        })
        .collect();
    // email → when HubSpot changed it (ms).
    let changed = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    let mut sends = Vec::new();
    let sending = Instant::now();
    for (n, (id, email)) in contacts.iter().enumerate() {
        ticker.tick().await;
        let (http, changed, email) = (http.clone(), changed.clone(), email.clone());
        let url = format!("{base}/_control/hubspot/records/contacts/{id}");
        sends.push(tokio::spawn(async move {
            let record: Value = http
                .patch(&url)
                .json(&json!({ "firstname": format!("Lag{n}") }))
                .send()
                .await
                .expect("change")
                .json()
                .await
                .expect("JSON");
            let at = record["updated_at"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .expect("updated_at");
            changed.lock().expect("lock").insert(email, at.as_millisecond());
        }));
    }
    for send in sends {
        send.await.expect("send");
    }
    let rate = contacts.len() as f64 / sending.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(60);
    let lags = loop {
        let clients: Value = http
            .get(format!("{base}/_control/jobber/records/clients?limit=100000"))
            .send()
            .await
            .expect("clients")
            .json()
            .await
            .expect("JSON");
        let changed = changed.lock().expect("lock").clone();
        let mut lags = Vec::new();
        for client in clients["records"].as_array().expect("records") {
            let first_name = client["fields"]["firstName"].as_str().unwrap_or_default();
            let email = client["fields"]["emails"][0]["address"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase();
            if let (true, Some(at)) = (first_name.starts_with("Lag"), changed.get(&email)) {
                let written = client["updated_at"]
                    .as_str()
                    .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                    .expect("updated_at")
                    .as_millisecond();
                lags.push(Duration::from_millis(u64::try_from(written - at).unwrap_or(0)));
            }
        }
        if lags.len() >= changed.len() || Instant::now() > deadline {
            break lags;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut sorted = lags.clone();
    sorted.sort();
    println!(
        "inbound lag at {rate:.0} changes/s: {} of {} HubSpot changes reached Jobber; HubSpot occurredAt -> Jobber write p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        sorted.len(),
        contacts.len(),
        ms(percentile(&sorted, 0.5)),
        ms(percentile(&sorted, 0.99)),
        ms(sorted.last().copied().unwrap_or_default()),
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let requests = args.first().copied().unwrap_or(40_000) as u64;
    let changes = args.get(1).copied().unwrap_or(2_000);
    acceptance(requests).await;
    lag(changes).await;
}
