//! Hostile and careless input against the real daemon: metrics that unknown callers cannot
//! grow, schedules that never fire, bounded inputs, file modes, the master key never replaced,
//! the address guard at delivery time, and fluxctl's tables on a terminal.

mod common;

use std::time::Duration;

use common::receiver::Receiver;
use common::{TestDaemon, mode, wait_for};

#[derive(Clone, PartialEq, prost::Message)]
struct Nothing {}

#[tokio::test]
async fn unknown_methods_do_not_grow_the_metrics() {
    let daemon = TestDaemon::start(&[]);
    let channel = daemon.channel().await;
    let mut calls = Vec::new();
    for n in 0..5000 {
        let channel = channel.clone();
        calls.push(tokio::spawn(async move {
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready().await.unwrap();
            let path = format!("/q{{code=\"{n}\"}}/M{n}");
            let path = http::uri::PathAndQuery::try_from(path.as_str()).unwrap();
            let codec = tonic_prost::ProstCodec::<Nothing, Nothing>::default();
            grpc.unary(tonic::Request::new(Nothing {}), path, codec)
                .await
                .unwrap_err()
                .code()
        }));
        if calls.len() == 200 {
            for call in calls.drain(..) {
                assert_ne!(call.await.unwrap(), tonic::Code::Ok);
            }
        }
    }
    for call in calls {
        assert_ne!(call.await.unwrap(), tonic::Code::Ok);
    }
    let (status, text) = common::http_get(&format!("http://{}/metrics", daemon.http));
    assert_eq!(status, 200);
    assert!(text.len() < 64 * 1024, "/metrics is {} bytes", text.len());
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "fluxd_grpc_requests_total" && s.labels.get("method") == Some("unknown")),
        "unknown methods are counted under one label"
    );
    assert_eq!(daemon.ctl_json(&["status"])["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn schedules_that_overflow_or_never_fire_are_refused_and_the_daemon_keeps_answering() {
    let daemon = TestDaemon::start(&["--sandbox"]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    for schedule in ["3000000d", "18446744073709551615s", "0 0 30 2 *"] {
        let file = daemon.data_dir().join("m.yaml");
        std::fs::write(
            &file,
            format!(
                "name: m\nsource: {{ connection: {hubspot}, object: contacts }}\ntarget: {{ connection: {jobber}, object: clients }}\nfieldPairs:\n  - {{ sourceField: email, targetField: email }}\nschedule: \"{schedule}\"\n"
            ),
        )
        .unwrap();
        let refused = daemon.ctl(&["mapping", "create", "-f", file.to_str().unwrap()]);
        assert!(!refused.success(), "{schedule}");
        assert!(
            refused.stderr().contains("schedule"),
            "{schedule}: {}",
            refused.stderr()
        );
        assert!(
            refused.stderr().to_lowercase().contains("invalid argument"),
            "{}",
            refused.stderr()
        );
    }
    assert!(daemon.ctl_json(&["mapping", "list"]).as_array().unwrap().is_empty());
    assert_eq!(daemon.ctl_json(&["status"])["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn oversized_inputs_are_refused_briefly_and_nothing_is_stored() {
    let daemon = TestDaemon::start(&["--allow-private-webhooks"]);
    let huge_url = format!("http://127.0.0.1:9/{}", "a".repeat(100_000));
    let refused = daemon.ctl(&["webhook", "create", "--url", &huge_url]);
    assert!(!refused.success());
    assert!(
        refused.stderr().contains("url"),
        "{}",
        &refused.stderr()[..200.min(refused.stderr().len())]
    );
    assert!(refused.stderr().len() < 1000, "the error does not echo the input");
    let many: Vec<String> = (0..100).map(|_| "sync.*".to_owned()).collect();
    let refused = daemon.ctl(&[
        "webhook",
        "create",
        "--url",
        "http://127.0.0.1:9/h",
        "--events",
        &many.join(","),
    ]);
    assert!(refused.stderr().contains("event_types"), "{}", refused.stderr());
    let email = format!("{}@example.com", "x".repeat(100_000));
    let refused = daemon.ctl(&["org", "invite", &email]);
    assert!(!refused.success());
    assert!(refused.stderr().len() < 1000, "{}", refused.stderr().len());
    assert!(daemon.ctl_json(&["webhook", "list"]).as_array().unwrap().is_empty());
    assert!(daemon.ctl_json(&["org", "invitations"]).as_array().unwrap().is_empty());
}

#[test]
fn the_store_is_private_and_a_lost_master_key_is_never_replaced() {
    let mut daemon = TestDaemon::start(&[]);
    assert_eq!(mode(&daemon.data_dir().join("fluxd.redb")), 0o600);
    daemon.terminate();
    let key = daemon.data_dir().join("master.key");
    std::fs::remove_file(&key).unwrap();
    let out = std::process::Command::new(common::FLUXD)
        .args(["--data-dir", daemon.data_dir().to_str().unwrap()])
        .args(["--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .env_remove("FLUXD_MASTER_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("master.key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!key.exists(), "no new key was written");

    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().join("nothing-here");
    let rotate = std::process::Command::new(common::FLUXD)
        .args(["rotate-key", "--data-dir", dir.to_str().unwrap()])
        .env_remove("FLUXD_MASTER_KEY")
        .output()
        .unwrap();
    assert!(!rotate.status.success());
    assert!(!dir.exists(), "rotate-key created nothing");
}

#[test]
fn an_endpoint_allowed_once_is_not_delivered_to_after_the_policy_tightens() {
    let receiver = Receiver::start();
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("fluxd.toml");
    std::fs::write(&config, "[webhooks]\nallow_private = true\n").unwrap();
    let daemon = TestDaemon::start(&["--config", config.to_str().unwrap()]);
    let created = daemon.ctl_json(&["webhook", "create", "--url", &receiver.url("/hook")]);
    let id = created["id"].as_str().unwrap().to_owned();
    daemon.ctl_json(&["webhook", "test", &id]);
    wait_for(Duration::from_secs(10), || {
        (receiver.received().len() == 1).then_some(())
    })
    .expect("delivered while private addresses were allowed");

    std::fs::write(&config, "[webhooks]\nallow_private = false\nallow_http = true\n").unwrap();
    daemon.hangup();
    wait_for(Duration::from_secs(10), || {
        daemon.log().contains("configuration reloaded").then_some(())
    })
    .expect("reloaded");
    daemon.ctl_json(&["webhook", "test", &id]);
    let refused = wait_for(Duration::from_secs(10), || {
        let deliveries = daemon.ctl_json(&["webhook", "deliveries", &id]);
        deliveries.as_array()?.iter().find_map(|d| {
            let attempts = d["attempts"].as_array()?;
            let error = attempts.first()?["error"].as_str()?;
            error.contains("not sent").then(|| error.to_owned())
        })
    })
    .expect("the attempt was refused by the address policy");
    assert!(refused.contains("127.0.0.1"), "{refused}");
    assert_eq!(
        receiver.received().len(),
        1,
        "nothing more reached the loopback receiver"
    );
}

#[test]
fn tables_escape_terminal_controls_and_survive_huge_cells() {
    let daemon = TestDaemon::start(&["--sandbox"]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let file = daemon.data_dir().join("m.yaml");
    std::fs::write(
        &file,
        format!(
            "name: \"evil \\u202E name\"\nsource: {{ connection: {hubspot}, object: contacts }}\ntarget: {{ connection: {jobber}, object: clients }}\nfieldPairs:\n  - {{ sourceField: email, targetField: email }}\n"
        ),
    )
    .unwrap();
    let created = daemon.ctl(&["mapping", "create", "-f", file.to_str().unwrap()]);
    assert!(created.success(), "{}", created.stderr());
    let table = daemon.ctl(&["mapping", "list"]);
    assert!(table.success(), "{}", table.stderr());
    assert!(!table.stdout().contains('\u{202e}'), "{}", table.stdout());
    assert!(table.stdout().contains("\\u{202e}"), "{}", table.stdout());
    let json = daemon.ctl_json(&["mapping", "list"]);
    assert_eq!(json[0]["name"], "evil \u{202e} name", "JSON keeps the value as it is");
}

/// Starts fluxd on `data` through `sh`, with `limit` (ulimit -f) when given; returns the
/// child once it is ready.
fn spawn_fluxd(data: &std::path::Path, limit: Option<u32>) -> std::process::Child {
    let _ = std::fs::remove_file(data.join("endpoints.json"));
    let limit = limit.map_or(String::new(), |blocks| format!("trap '' XFSZ; ulimit -f {blocks}; "));
    let script = format!(
        "{limit}exec {} --data-dir {} --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --allow-private-webhooks",
        common::FLUXD,
        data.display()
    );
    let child = std::process::Command::new("sh")
        .args(["-c", &script])
        .env_remove("FLUXD_MASTER_KEY")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(20), || {
        data.join("endpoints.json").exists().then_some(())
    })
    .expect("fluxd started");
    child
}

#[test]
fn a_full_disk_is_reported_fluxd_stops_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A file size limit stands in for a full disk: writes past it fail with EFBIG.
    let child = spawn_fluxd(&data, Some(1024));
    let ctl = |args: &[&str]| {
        std::process::Command::new(common::FLUXCTL)
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .unwrap()
    };
    let description = "x".repeat(400);
    let mut acknowledged = 0;
    for n in 0..5000 {
        let url = format!("http://127.0.0.1:9/hook/{n}");
        let made = ctl(&["webhook", "create", "--url", &url, "--description", &description]);
        if !made.status.success() {
            let stderr = String::from_utf8_lossy(&made.stderr);
            assert!(stderr.contains("store"), "{stderr}");
            break;
        }
        acknowledged += 1;
    }
    assert!(acknowledged > 0 && acknowledged < 5000, "{acknowledged}");
    let endpoints: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("endpoints.json")).unwrap()).unwrap();
    // The daemon may already be gone; while it is up, it says why it is unhealthy.
    if let Ok(mut stream) = std::net::TcpStream::connect(endpoints["http"].as_str().unwrap()) {
        use std::io::{Read, Write};
        let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: fluxd\r\nConnection: close\r\n\r\n");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        if !answer.is_empty() {
            assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
            assert!(answer.contains("store cannot write"), "{answer}");
        }
    }
    let exited = child.wait_with_output().unwrap();
    assert!(
        !exited.status.success(),
        "fluxd exits non-zero for its supervisor to restart it"
    );
    let stderr = String::from_utf8_lossy(&exited.stderr);
    assert!(stderr.contains("could not write"), "{stderr}");

    // With room again, a restart reopens the store with every acknowledged endpoint.
    let mut child = spawn_fluxd(&data, None);
    let listed = ctl(&["webhook", "list", "--all", "-o", "json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), acknowledged);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn metrics_can_require_a_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("metrics.token");
    std::fs::write(&token_file, "scrape-secret\n").unwrap();
    let config = dir.path().join("fluxd.toml");
    std::fs::write(
        &config,
        format!("[metrics]\nbearer_token_file = {:?}\n", token_file.to_str().unwrap()),
    )
    .unwrap();
    let daemon = TestDaemon::start(&["--config", config.to_str().unwrap()]);
    let url = format!("http://{}/metrics", daemon.http);
    assert_eq!(common::http_get(&url).0, 401);
    let (status, _, body) = common::http_get_with(&url, &[("authorization", "Bearer scrape-secret")]);
    assert_eq!(status, 200);
    assert!(body.contains("fluxd_build_info"), "{body}");
    assert_eq!(
        common::http_get(&format!("http://{}/healthz", daemon.http)).0,
        200,
        "/healthz stays open"
    );
}
