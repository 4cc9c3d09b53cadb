//! What the benchmarks share: fluxd and the sandbox as separate release processes, their CPU
//! and memory readings, gRPC helpers, and a counting webhook receiver.
#![allow(dead_code)]

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fluxcascade::pb;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

#[path = "../../tests/common/mod.rs"]
pub mod common;

pub use common::{FLUXD, StandaloneSandbox};

/// A child process, killed on drop.
pub struct Process(pub Child);

impl Process {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn status_kb(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// Resident memory now, MB.
pub fn rss_mb(pid: u32) -> f64 {
    status_kb(pid, "VmRSS:") / 1024.0
}

/// Peak resident memory so far, MB.
pub fn peak_rss_mb(pid: u32) -> f64 {
    status_kb(pid, "VmHWM:") / 1024.0
}

/// User + system CPU seconds of a process so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .map_or(0.0, |f| f.iter().filter_map(|t| t.parse::<f64>().ok()).sum());
    ticks / 100.0
}

/// A running release fluxd on `data`, configured by `config` (TOML text); its API calls go
/// through the [`Session`] of its operator token.
pub struct Daemon {
    pub process: Process,
    pub session: Session,
    pub http: String,
    /// From spawn to `endpoints.json` (every actor started, both listeners serving).
    pub start_time: Duration,
}

impl std::ops::Deref for Daemon {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.session
    }
}

/// Calls to one daemon with one API token.
#[derive(Clone)]
pub struct Session {
    pub channel: Channel,
    pub token: String,
}

impl Daemon {
    pub async fn start(dir: &Path, config: &str) -> Daemon {
        let config_path = dir.join("fluxd.toml");
        std::fs::write(&config_path, config).expect("config");
        let data = data_dir(dir);
        let _ = std::fs::remove_file(data.join("endpoints.json"));
        let started = Instant::now();
        let child = Command::new(FLUXD)
            .arg("--config")
            .arg(&config_path)
            .arg("--data-dir")
            .arg(&data)
            .args(["--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("fluxd");
        let process = Process(child);
        let endpoints = loop {
            if let Ok(text) = std::fs::read_to_string(data.join("endpoints.json")) {
                break serde_json::from_str::<serde_json::Value>(&text).expect("endpoints");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let start_time = started.elapsed();
        let token = std::fs::read_to_string(data.join("admin.token"))
            .expect("token")
            .trim()
            .to_owned();
        let channel = Channel::from_shared(format!("http://{}", endpoints["grpc"].as_str().expect("grpc")))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        Daemon {
            process,
            session: Session { channel, token },
            http: endpoints["http"].as_str().expect("http").to_owned(),
            start_time,
        }
    }
}

impl Session {
    /// The same daemon with another API token (another organization's).
    pub fn with_token(&self, token: &str) -> Session {
        Session {
            channel: self.channel.clone(),
            token: token.to_owned(),
        }
    }

    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().expect("header"),
        );
        request
    }

    /// Connects `provider` through the OAuth redirects (the sandbox approves at once).
    pub async fn connect(&self, provider: pb::Provider) -> String {
        let mut client = pb::connection_service_client::ConnectionServiceClient::new(self.channel.clone());
        let started = client
            .create_connection(self.request(pb::CreateConnectionRequest {
                provider: provider.into(),
                scopes: vec![],
                return_to_console: false,
            }))
            .await
            .expect("create")
            .into_inner();
        let page = reqwest::get(&started.authorize_url).await.expect("authorize");
        assert!(page.status().is_success());
        client
            .wait_connection(self.request(pb::WaitConnectionRequest {
                state: started.state,
                timeout_seconds: 30,
            }))
            .await
            .expect("wait")
            .into_inner()
            .id
    }

    /// Creates a mapping from its file text.
    pub async fn create_mapping(&self, text: &str, inactive: bool) -> String {
        let spec = fluxcascade::mappings::spec::parse_file(text).expect("mapping");
        let mut mappings = pb::mapping_service_client::MappingServiceClient::new(self.channel.clone());
        mappings
            .create_mapping(self.request(pb::CreateMappingRequest {
                spec: Some(fluxcascade::mappings::wire::spec_to_pb(&spec)),
                inactive,
            }))
            .await
            .expect("mapping")
            .into_inner()
            .id
    }

    /// Runs a sync of `mapping` to its end; returns the final job and how long it took.
    pub async fn sync(&self, mapping: &str) -> (pb::SyncJob, Duration) {
        let mut syncs = pb::sync_service_client::SyncServiceClient::new(self.channel.clone());
        let started = Instant::now();
        let job = syncs
            .run_sync(self.request(pb::RunSyncRequest {
                mapping_id: mapping.to_owned(),
                full: false,
                confirm: true,
            }))
            .await
            .expect("run")
            .into_inner();
        let mut stream = syncs
            .watch_sync(self.request(pb::WatchSyncRequest { id: job.id }))
            .await
            .expect("watch")
            .into_inner();
        let mut last = None;
        while let Some(update) = stream.next().await {
            last = Some(update.expect("update"));
        }
        (last.expect("job"), started.elapsed())
    }
}

/// The data dir of a benchmark run in `dir`.
pub fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}

/// A loopback HTTP receiver answering 200 to everything and counting what arrived.
#[derive(Clone)]
pub struct Receiver {
    pub addr: std::net::SocketAddr,
    pub received: Arc<AtomicU64>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |_request: http::Request<hyper::body::Incoming>| {
                        counter.fetch_add(1, Ordering::Relaxed);
                        async { Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok")))) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { addr, received }
    }

    pub fn count(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Waits until `count` requests arrived; false on timeout.
    pub async fn wait_for(&self, count: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.count() < count {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

/// The `p`-quantile of `sorted`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Milliseconds, for printing.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
