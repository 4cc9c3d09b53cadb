//! Sync benchmark: `cargo bench --bench sync [-- RECORDS...]` (default 10000 100000).
//!
//! For each record count it starts a standalone sandbox (`fluxd sandbox --records N`) and a
//! release `fluxd` pointed at it as separate processes, connects HubSpot and Salesforce through
//! the OAuth flow, creates a HubSpot contacts → Salesforce Contact mapping (rate limits off),
//! runs the first sync and reports records/s and fluxd's peak RSS (VmHWM), so the figures for
//! different counts show whether memory stays flat.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use fluxcascade::pb;
use tokio_stream::StreamExt;

#[path = "../tests/common/mod.rs"]
mod common;

use common::FLUXD;

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// User + system CPU seconds of a process so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .map_or(0.0, |f| f.iter().filter_map(|t| t.parse::<f64>().ok()).sum());
    ticks / 100.0
}

fn authed<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().expect("header"));
    request
}

async fn connect(channel: &tonic::transport::Channel, token: &str, provider: pb::Provider) -> String {
    let mut client = pb::connection_service_client::ConnectionServiceClient::new(channel.clone());
    let started = client
        .create_connection(authed(
            token,
            pb::CreateConnectionRequest {
                provider: provider.into(),
                scopes: vec![],
            },
        ))
        .await
        .expect("create")
        .into_inner();
    let page = reqwest::get(&started.authorize_url).await.expect("authorize");
    assert!(page.status().is_success());
    client
        .wait_connection(authed(
            token,
            pb::WaitConnectionRequest {
                state: started.state,
                timeout_seconds: 30,
            },
        ))
        .await
        .expect("wait")
        .into_inner()
        .id
}

async fn run(records: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sandbox = common::StandaloneSandbox::start(records);
    let sandbox_pid = sandbox.pid();
    let config = format!("{}\n[sync]\nconfirm_threshold = 0\n", sandbox.config);
    let config_path = dir.path().join("fluxd.toml");
    std::fs::write(&config_path, config).expect("config");
    let data = dir.path().join("data");
    let fluxd = Command::new(FLUXD)
        .args([
            "--config",
            config_path.to_str().expect("path"),
            "--data-dir",
            data.to_str().expect("path"),
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("fluxd");
    let pid = fluxd.id();
    let _fluxd = Process(fluxd);
    let endpoints = loop {
        if let Ok(text) = std::fs::read_to_string(data.join("endpoints.json")) {
            break serde_json::from_str::<serde_json::Value>(&text).expect("endpoints");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let token = std::fs::read_to_string(data.join("admin.token"))
        .expect("token")
        .trim()
        .to_owned();
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{}", endpoints["grpc"].as_str().expect("grpc")))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
    let hubspot = connect(&channel, &token, pb::Provider::Hubspot).await;
    let salesforce = connect(&channel, &token, pb::Provider::Salesforce).await;
    let text = format!(
        "name: bench\nsource: {{connection: {hubspot}, object: contacts}}\ntarget: {{connection: {salesforce}, object: Contact}}\nmatchingMode: create_only\n\
         fieldPairs:\n  - {{sourceField: firstname, targetField: FirstName}}\n  - {{sourceField: lastname, targetField: LastName}}\n  - {{sourceField: email, targetField: Email, transform: lowercase}}\n  - {{sourceField: phone, targetField: Phone, transform: phone_e164}}\n  - {{sourceField: address, targetField: MailingStreet}}\n  - {{sourceField: city, targetField: MailingCity}}\n  - {{sourceField: state, targetField: MailingState}}\n  - {{sourceField: zip, targetField: MailingPostalCode}}\ndefaultRegion: US\n"
    );
    let spec = fluxcascade::mappings::spec::parse_file(&text).expect("mapping");
    let mut mappings = pb::mapping_service_client::MappingServiceClient::new(channel.clone());
    let mapping = mappings
        .create_mapping(authed(
            &token,
            pb::CreateMappingRequest {
                spec: Some(fluxcascade::mappings::wire::spec_to_pb(&spec)),
                inactive: true,
            },
        ))
        .await
        .expect("mapping")
        .into_inner();
    let rss_before = peak_rss_mb(pid);
    let (fluxd_cpu, sandbox_cpu) = (cpu_seconds(pid), cpu_seconds(sandbox_pid));
    let mut syncs = pb::sync_service_client::SyncServiceClient::new(channel.clone());
    let started = Instant::now();
    let job = syncs
        .run_sync(authed(
            &token,
            pb::RunSyncRequest {
                mapping_id: mapping.id,
                full: false,
                confirm: true,
            },
        ))
        .await
        .expect("run")
        .into_inner();
    let mut stream = syncs
        .watch_sync(authed(&token, pb::WatchSyncRequest { id: job.id }))
        .await
        .expect("watch")
        .into_inner();
    let mut last = None;
    while let Some(update) = stream.next().await {
        last = Some(update.expect("update"));
    }
    let elapsed = started.elapsed();
    let job = last.expect("job");
    let stats = job.stats.unwrap_or_default();
    assert_eq!(
        job.status,
        pb::SyncStatus::Completed as i32,
        "sync did not complete: {job:?}"
    );
    println!(
        "sync HubSpot -> Salesforce, {records} records: {} created in {:.2} s = {:.0} records/s; fluxd peak RSS {:.1} MB (after setup {:.1} MB); CPU s during the sync: fluxd {:.1}, sandbox {:.1}",
        stats.created,
        elapsed.as_secs_f64(),
        stats.fetched as f64 / elapsed.as_secs_f64(),
        peak_rss_mb(pid),
        rss_before,
        cpu_seconds(pid) - fluxd_cpu,
        cpu_seconds(sandbox_pid) - sandbox_cpu,
    );
}

#[tokio::main]
async fn main() {
    let counts: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let counts = if counts.is_empty() {
        vec![10_000, 100_000]
    } else {
        counts
    };
    for records in counts {
        run(records).await;
    }
}
