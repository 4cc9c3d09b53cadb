//! Scale benchmark: `cargo bench --bench scale [-- CONNECTIONS MAPPINGS ENDPOINTS RECORDS EVENTS]`
//! (default 10000 10000 1000 100000 20000).
//!
//! Seeds a data dir with that many connections, mappings and webhook endpoints (idle: tokens
//! valid for a day, no schedules, endpoints subscribed to an event nobody sends), starts a
//! release fluxd on it as a separate process and reports:
//! 1. start time: from spawn until every actor runs and both listeners serve;
//! 2. idle RSS with every entity's actor alive;
//! 3. `GetStatus` latency (p50/p99/max, one call every 10 ms) while a first sync of RECORDS
//!    HubSpot contacts into Jobber runs (default matching mode) and a burst of EVENTS
//!    `webhook.test` events is sent to four more endpoints, with what each load achieved.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fluxcascade::auth::records::OrganizationRecord;
use fluxcascade::connections::service::insert_connection;
use fluxcascade::crypto::{MasterKey, Secret};
use fluxcascade::mappings::MappingRecord;
use fluxcascade::pb;
use fluxcascade::providers::Provider;
use fluxcascade::providers::identity::Account;
use fluxcascade::providers::oauth::TokenSet;
use fluxcascade::store::{OrgKind, Reader, Store, StoreError};
use fluxcascade::webhooks::endpoints::{self, NewEndpoint};
use fluxcascade::webhooks::ssrf::AddressPolicy;
use support::{Daemon, Receiver, StandaloneSandbox, ms, percentile, rss_mb};

const MAPPING: &str = r#"
name: NAME
source: { connection: SOURCE, object: contacts }
target: { connection: TARGET, object: clients }
fieldPairs:
  - { sourceField: "firstname,lastname", targetField: firstName, transform: "concatenate|split_name(part=first)", required: true }
  - { sourceField: "firstname,lastname", targetField: lastName, transform: "concatenate|split_name(part=last)" }
  - { sourceField: email, targetField: email, transform: "trim|lowercase" }
  - { sourceField: phone, targetField: phone, transform: phone_e164 }
  - { sourceField: city, targetField: billingAddress.city }
matchKey: email
defaultRegion: US
"#;

fn mapping_text(name: &str, source: &str, target: &str) -> String {
    MAPPING
        .replace("NAME", name)
        .replace("SOURCE", source)
        .replace("TARGET", target)
}

/// Writes `connections` HubSpot connections, `mappings` mappings between them and
/// `endpoints` endpoints into a fresh data dir, through the library, in large transactions.
async fn seed(
    data: &std::path::Path,
    hubspot_base: &str,
    connections: usize,
    mappings: usize,
    endpoints: usize,
    idle_url: &str,
) {
    fluxcascade::daemon::prepare_data_dir(data).expect("data dir");
    let (key, _) = MasterKey::load_or_create(data, false).expect("key");
    let store = Store::open(data, key).expect("store");
    fluxcascade::auth::bootstrap::ensure_first_org(&store, data)
        .await
        .expect("org");
    let org = store
        .read(|rx| rx.list::<OrganizationRecord>())
        .expect("organizations")
        .remove(0)
        .id;
    let tomorrow = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24);
    let mut ids = Vec::with_capacity(connections);
    for chunk in 0..connections.div_ceil(1000) {
        let (org, base) = (org.clone(), hubspot_base.to_owned());
        let count = (connections - chunk * 1000).min(1000);
        let created = store
            .write(move |tx| {
                (0..count)
                    .map(|n| {
                        let account = Account {
                            id: format!("{}", chunk * 1000 + n),
                            name: format!("portal {chunk}-{n}"),
                        };
                        let tokens = TokenSet {
                            access_token: Secret::new(format!("seeded-access-{chunk}-{n}")),
                            refresh_token: Some(Secret::new(format!("seeded-refresh-{chunk}-{n}"))),
                            expires_at: Some(tomorrow),
                            api_base_url: None,
                            identity_url: None,
                        };
                        insert_connection(tx, &org, Provider::Hubspot, &account, &tokens, base.clone()).map(|r| r.id)
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .await
            .expect("connections");
        ids.extend(created);
    }
    let ids = Arc::new(ids);
    for chunk in 0..mappings.div_ceil(1000) {
        let (org, ids) = (org.clone(), ids.clone());
        let count = (mappings - chunk * 1000).min(1000);
        store
            .write(move |tx| {
                for n in chunk * 1000..chunk * 1000 + count {
                    let (source, target) = (&ids[n % ids.len()], &ids[(n + 1) % ids.len()]);
                    let spec =
                        fluxcascade::mappings::spec::parse_file(&mapping_text(&format!("idle {n}"), source, target))
                            .expect("spec");
                    let record = MappingRecord {
                        id: format!("map_seeded{n:06}"),
                        org_id: org.clone(),
                        spec,
                        active: true,
                        created_at: fluxcascade::events::now_rfc3339(),
                        updated_at: fluxcascade::events::now_rfc3339(),
                        next_run_at: None,
                    };
                    tx.put(&record)?;
                    tx.index_org(OrgKind::Mapping, &org, &record.id)?;
                }
                Ok::<_, StoreError>(())
            })
            .await
            .expect("mappings");
    }
    let policy = AddressPolicy {
        allow_private: true,
        allow_http: true,
    };
    for n in 0..endpoints {
        let new = NewEndpoint {
            url: format!("{idle_url}/idle/{n}"),
            description: String::new(),
            event_types: vec!["connection.expired".into()],
            settings: Default::default(),
        };
        endpoints::create(&store, policy, &org, new).await.expect("endpoint");
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let arg = |i: usize, default: usize| args.get(i).copied().unwrap_or(default);
    let (connections, mappings, idle_endpoints, records, events) = (
        arg(0, 10_000),
        arg(1, 10_000),
        arg(2, 1_000),
        arg(3, 100_000),
        arg(4, 20_000),
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let sandbox = StandaloneSandbox::start_with(records, &["--no-limits"]);
    let idle = Receiver::start().await;
    let burst = Receiver::start().await;
    let seeding = Instant::now();
    seed(
        &support::data_dir(dir.path()),
        &format!("{}/hubspot", sandbox.base),
        connections,
        mappings,
        idle_endpoints,
        &format!("http://{}", idle.addr),
    )
    .await;
    println!(
        "seeded {connections} connections, {mappings} mappings, {idle_endpoints} endpoints in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    let config = format!(
        "{}\n[webhooks]\nallow_private = true\nallow_http = true\n[sync]\nconfirm_threshold = 0\n",
        sandbox.config
    );
    let daemon = Daemon::start(dir.path(), &config).await;
    let pid = daemon.process.pid();
    let mut system = pb::system_service_client::SystemServiceClient::new(daemon.channel.clone());
    let status = system
        .get_status(daemon.request(pb::GetStatusRequest {}))
        .await
        .expect("status")
        .into_inner();
    let live = status.live_actors.unwrap_or_default();
    println!(
        "start: {:.2} s to ready with {} live actors ({} connections, {} mappings, {} endpoints)",
        daemon.start_time.as_secs_f64(),
        live.total,
        live.connections,
        live.mappings,
        live.webhook_endpoints
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("idle RSS: {:.1} MB", rss_mb(pid));

    // The load: a first sync and a webhook burst, with GetStatus probed throughout.
    let hubspot = daemon.connect(pb::Provider::Hubspot).await;
    let jobber = daemon.connect(pb::Provider::Jobber).await;
    let mapping = daemon
        .create_mapping(&mapping_text("bench sync", &hubspot, &jobber), true)
        .await;
    let mut webhooks = pb::webhook_service_client::WebhookServiceClient::new(daemon.channel.clone());
    let mut burst_endpoints = Vec::new();
    for n in 0..4 {
        let created = webhooks
            .create_webhook_endpoint(daemon.request(pb::CreateWebhookEndpointRequest {
                url: format!("http://{}/burst/{n}", burst.addr),
                event_types: vec!["webhook.test".into()],
                ..Default::default()
            }))
            .await
            .expect("endpoint")
            .into_inner();
        burst_endpoints.push(created.endpoint.expect("endpoint").id);
    }
    let daemon = Arc::new(daemon);
    let stop_probe = tokio_util::sync::CancellationToken::new();
    let probe = {
        let (daemon, stop) = (daemon.clone(), stop_probe.clone());
        tokio::spawn(async move {
            let mut system = pb::system_service_client::SystemServiceClient::new(daemon.channel.clone());
            let mut latencies = Vec::new();
            let mut ticker = tokio::time::interval(Duration::from_millis(10));
            while !stop.is_cancelled() {
                ticker.tick().await;
                let started = Instant::now();
                system
                    .get_status(daemon.request(pb::GetStatusRequest {}))
                    .await
                    .expect("status under load");
                latencies.push(started.elapsed());
            }
            latencies
        })
    };
    let sync = {
        let daemon = daemon.clone();
        tokio::spawn(async move { daemon.sync(&mapping).await })
    };
    let sending = Instant::now();
    let senders: Vec<_> = (0..16)
        .map(|worker| {
            let (daemon, endpoints) = (daemon.clone(), burst_endpoints.clone());
            tokio::spawn(async move {
                let mut client = pb::webhook_service_client::WebhookServiceClient::new(daemon.channel.clone());
                for n in (worker..events).step_by(16) {
                    client
                        .test_webhook_endpoint(daemon.request(pb::TestWebhookEndpointRequest {
                            id: endpoints[n % endpoints.len()].clone(),
                        }))
                        .await
                        .expect("test event");
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.expect("sender");
    }
    let sent_in = sending.elapsed();
    let delivered = burst.wait_for(events as u64, Duration::from_secs(600)).await;
    let delivered_in = sending.elapsed();
    let (job, sync_took) = sync.await.expect("sync");
    stop_probe.cancel();
    let mut latencies = probe.await.expect("probe");
    latencies.sort();
    let stats = job.stats.unwrap_or_default();
    println!(
        "under load: sync of {records} contacts {} in {:.1} s ({:.0} records/s: {} created, {} updated); \
         {events} webhook.test events accepted in {:.1} s ({:.0}/s), {} of {events} delivered in {:.1} s ({:.0}/s)",
        pb::SyncStatus::try_from(job.status).map_or("?", |s| s.as_str_name()),
        sync_took.as_secs_f64(),
        stats.fetched as f64 / sync_took.as_secs_f64(),
        stats.created,
        stats.updated,
        sent_in.as_secs_f64(),
        events as f64 / sent_in.as_secs_f64(),
        burst.count(),
        delivered_in.as_secs_f64(),
        burst.count() as f64 / delivered_in.as_secs_f64(),
    );
    println!(
        "GetStatus under load: {} calls, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; peak RSS {:.1} MB",
        latencies.len(),
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
        support::peak_rss_mb(pid),
    );
    assert!(delivered, "the burst was not delivered");
    assert_eq!(job.status, pb::SyncStatus::Completed as i32, "{job:?}");
}
