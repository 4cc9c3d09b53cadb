//! The runtime as embedders and operators meet it: daemons booted in-process on listeners the
//! caller bound (two in one process, sharing nothing), and data dirs that never mix sandbox
//! and real connections.

mod common;

use common::{StandaloneSandbox, TestDaemon};
use fluxcascade::config::Config;
use fluxcascade::daemon::{self, Listeners, Running};
use fluxcascade::pb;
use fluxcascade::pb::connection_service_client::ConnectionServiceClient;
use tonic::transport::Channel;

/// A sandbox daemon in this process, on loopback listeners this test bound.
async fn boot(dir: &std::path::Path) -> Running {
    let config = Config {
        data_dir: dir.to_owned(),
        sandbox: true,
        sandbox_records: 5,
        ..Config::default()
    };
    let listeners = Listeners {
        grpc: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        http: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    };
    daemon::start(listeners, config).await.expect("daemon starts")
}

fn authed<T>(dir: &std::path::Path, message: T) -> tonic::Request<T> {
    let token = std::fs::read_to_string(dir.join("admin.token")).unwrap();
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {}", token.trim()).parse().unwrap());
    request
}

async fn connections(running: &Running) -> ConnectionServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{}", running.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    ConnectionServiceClient::new(channel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_share_a_process_and_nothing_else() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = boot(dir_a.path()).await;
    let b = boot(dir_b.path()).await;
    let (mut client_a, mut client_b) = (connections(&a).await, connections(&b).await);

    // Connect HubSpot on A through the real OAuth redirects (A's sandbox → A's callback).
    let started = client_a
        .create_connection(authed(
            dir_a.path(),
            pb::CreateConnectionRequest {
                provider: pb::Provider::Hubspot.into(),
                scopes: Vec::new(),
                return_to_console: false,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let page = reqwest::get(&started.authorize_url).await.unwrap();
    assert!(page.status().is_success(), "{}", page.text().await.unwrap());
    let connected = client_a
        .wait_connection(authed(
            dir_a.path(),
            pb::WaitConnectionRequest {
                state: started.state,
                timeout_seconds: 10,
            },
        ))
        .await
        .unwrap()
        .into_inner();

    let listed_a = client_a
        .list_connections(authed(dir_a.path(), pb::ListConnectionsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .connections;
    assert_eq!(listed_a.len(), 1);
    assert_eq!(listed_a[0].id, connected.id);
    let listed_b = client_b
        .list_connections(authed(dir_b.path(), pb::ListConnectionsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .connections;
    assert!(listed_b.is_empty(), "B sees nothing of A: {listed_b:?}");
    // Each daemon knows only its own tokens.
    let refused = client_b
        .list_connections(authed(dir_a.path(), pb::ListConnectionsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    // A's connection actor holds a token B's actors never see: refreshing it works on A.
    let refreshed = client_a
        .refresh_connection(authed(
            dir_a.path(),
            pb::RefreshConnectionRequest {
                id: connected.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refreshed.id, connected.id);
    let missing = client_b
        .refresh_connection(authed(
            dir_b.path(),
            pb::RefreshConnectionRequest {
                id: connected.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // Both stop gracefully, each releasing its own data dir: they open again.
    a.serve_until(std::future::ready(())).await.unwrap();
    b.serve_until(std::future::ready(())).await.unwrap();
    let again = boot(dir_a.path()).await;
    let listed = connections(&again)
        .await
        .list_connections(authed(dir_a.path(), pb::ListConnectionsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .connections;
    assert_eq!(listed.len(), 1);
    again.serve_until(std::future::ready(())).await.unwrap();
}

#[test]
fn a_data_dir_is_either_a_sandbox_one_or_a_live_one() {
    // A live daemon (providers from a standalone sandbox, as real providers would be
    // configured) with one real connection.
    let sandbox = StandaloneSandbox::start(5);
    let config_dir = tempfile::tempdir().unwrap();
    let config = sandbox.config_file(config_dir.path());
    let mut live = TestDaemon::start(&["--config", config.to_str().unwrap()]);
    live.connect("hubspot");
    let (status, _) = live.terminate();
    assert!(status.success());

    let refused = std::process::Command::new(common::FLUXD)
        .arg("--data-dir")
        .arg(live.data_dir())
        .args([
            "--sandbox",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("holds live (non-sandbox) data (1 connection(s))") && stderr.contains("--sandbox"),
        "{stderr}"
    );

    // And the other way round: a sandbox data dir does not start live.
    let sandboxed = TestDaemon::start(&["--sandbox"]);
    drop(sandboxed.ctl_json(&["status"]));
    let dir = sandboxed.data_dir().to_owned();
    let mut sandboxed = sandboxed;
    sandboxed.terminate();
    let refused = std::process::Command::new(common::FLUXD)
        .arg("--data-dir")
        .arg(&dir)
        .args(["--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("holds sandbox data"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
