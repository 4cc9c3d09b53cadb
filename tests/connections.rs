//! Connections through the real daemon and fluxctl, against the sandbox's OAuth servers.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::receiver::Receiver;
use common::{StandaloneSandbox, TestDaemon, http_get, http_get_json, http_get_location, http_post_json, wait_for};
use fluxcascade::pb::{self, connection_service_client::ConnectionServiceClient};
use serde_json::{Value, json};

const PROVIDERS: [&str; 4] = ["hubspot", "jobber", "pipedrive", "salesforce"];

fn sandbox_daemon() -> TestDaemon {
    TestDaemon::start(&["--sandbox", "--allow-private-webhooks"])
}

fn control(daemon: &TestDaemon, provider: &str, action: &str, body: Value) {
    let status = http_post_json(&format!("{}/_control/{provider}/{action}", daemon.sandbox_url()), body);
    assert_eq!(status, 200, "control {action}");
}

fn stats(daemon: &TestDaemon, provider: &str) -> Value {
    http_get_json(&format!("{}/_control/{provider}/stats", daemon.sandbox_url()))
}

#[test]
fn the_code_flow_connects_each_provider_with_its_account_name() {
    let daemon = sandbox_daemon();
    let receiver = Receiver::start();
    daemon.ctl_json(&[
        "webhook",
        "create",
        "--url",
        &receiver.url("/events"),
        "--events",
        "connection.*",
    ]);
    for provider in PROVIDERS {
        let started = daemon.ctl_json(&["connection", "create", "--provider", provider, "--no-wait"]);
        let url = started["authorizeUrl"].as_str().unwrap();
        assert!(url.contains("state="), "{url}");
        if provider == "hubspot" || provider == "salesforce" {
            assert!(
                url.contains("code_challenge=") && url.contains("code_challenge_method=S256"),
                "PKCE for {provider}: {url}"
            );
        }
        let (status, page) = http_get(url);
        assert_eq!(status, 200, "{page}");
    }
    let list = daemon.ctl_json(&["connection", "list"]);
    let connections = list.as_array().unwrap();
    assert_eq!(connections.len(), 4);
    let expected_names = [
        ("hubspot", "portal-62515.sandbox.hubspot.com"),
        ("jobber", "Sandbox Field Services 1"),
        ("pipedrive", "Sandbox Sales Co 1"),
        ("salesforce", "admin1@sandbox-org.example"),
    ];
    for (provider, name) in expected_names {
        let connection = connections
            .iter()
            .find(|c| c["provider"] == provider)
            .unwrap_or_else(|| panic!("{provider} missing"));
        assert_eq!(connection["status"], "active");
        assert_eq!(connection["accountName"], name);
        assert!(connection["id"].as_str().unwrap().starts_with("conn_"));
    }
    // Jobber's expiry comes from its JWT, HubSpot's and Pipedrive's from expires_in; Salesforce gives none.
    let expiry = |p: &str| connections.iter().find(|c| c["provider"] == p).unwrap()["tokenExpiresAt"].clone();
    assert!(expiry("jobber").is_string() && expiry("hubspot").is_string() && expiry("pipedrive").is_string());
    assert!(expiry("salesforce").is_null());

    let events = receiver.wait_for("/events", 4, Duration::from_secs(10));
    assert!(events.iter().all(|e| e.json()["eventType"] == "connection.created"));
    let status = daemon.ctl_json(&["status"]);
    assert_eq!(status["connections"], 4);
    assert_eq!(status["liveActors"]["connections"], 4);

    // A second HubSpot account is a separate connection.
    let second = daemon.connect("hubspot");
    assert_eq!(second["accountName"], "portal-62516.sandbox.hubspot.com");
}

#[test]
fn unknown_and_replayed_states_are_refused() {
    let daemon = sandbox_daemon();
    let (status, page) = http_get(&format!("http://{}/oauth/callback?code=x&state=forged", daemon.http));
    assert_eq!(status, 400);
    assert!(page.contains("unknown state"), "{page}");

    let started = daemon.ctl_json(&["connection", "create", "--provider", "pipedrive", "--no-wait"]);
    let (status, callback) = http_get_location(started["authorizeUrl"].as_str().unwrap());
    assert_eq!(status, 302);
    let callback = callback.unwrap();
    let (first, _) = http_get(&callback);
    assert_eq!(first, 200);
    let (replay, page) = http_get(&callback);
    assert_eq!(replay, 400);
    assert!(page.contains("already used"), "{page}");
    assert_eq!(daemon.ctl_json(&["connection", "list"]).as_array().unwrap().len(), 1);

    let denied = daemon.ctl_json(&["connection", "create", "--provider", "jobber", "--no-wait"]);
    let state = denied["state"].as_str().unwrap();
    let (status, page) = http_get(&format!(
        "http://{}/oauth/callback?error=access_denied&state={state}",
        daemon.http
    ));
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("access_denied"), "{page}");
    assert_eq!(
        daemon.ctl_json(&["connection", "list"]).as_array().unwrap().len(),
        1,
        "a denied authorization stores nothing"
    );
}

#[test]
fn create_without_no_wait_prints_the_url_and_waits_for_the_connection() {
    let daemon = sandbox_daemon();
    let mut child = Command::new(common::FLUXCTL)
        .args([
            "--data-dir",
            daemon.data_dir().to_str().unwrap(),
            "connection",
            "create",
            "--provider",
            "salesforce",
            "-o",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let url = stderr
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.trim().starts_with("http").then(|| line.trim().to_owned()))
        .unwrap();
    let (status, _) = http_get(&url);
    assert_eq!(status, 200);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let connection: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(connection["provider"], "salesforce");
    assert_eq!(connection["status"], "active");
}

#[test]
fn tokens_are_refreshed_before_they_expire() {
    let daemon = sandbox_daemon();
    control(&daemon, "hubspot", "settings", json!({ "token_lifetime_seconds": 6 }));
    let connection = daemon.connect("hubspot");
    let first_expiry: jiff::Timestamp = connection["tokenExpiresAt"].as_str().unwrap().parse().unwrap();
    let refreshed = wait_for(Duration::from_secs(8), || {
        (stats(&daemon, "hubspot")["refreshes"].as_u64() >= Some(1)).then_some(())
    });
    assert!(refreshed.is_some(), "no refresh happened");
    assert!(
        jiff::Timestamp::now() < first_expiry,
        "refreshed only after the token expired"
    );
    let after = wait_for(Duration::from_secs(3), || {
        let current = daemon.ctl_json(&["connection", "get", connection["id"].as_str().unwrap()]);
        let expiry: jiff::Timestamp = current["tokenExpiresAt"].as_str()?.parse().ok()?;
        (expiry > first_expiry).then_some(current)
    })
    .expect("expiry moved forward");
    assert_eq!(after["status"], "active");
    assert!(daemon.log().contains("access token refreshed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_callers_during_a_refresh_cause_one_token_call() {
    let daemon = sandbox_daemon();
    let connection = daemon.connect("pipedrive");
    control(&daemon, "pipedrive", "settings", json!({ "token_delay_ms": 1500 }));
    let before = stats(&daemon, "pipedrive")["token_calls"].as_u64().unwrap();
    let channel = daemon.channel().await;
    let calls = (0..20).map(|_| {
        let mut client = ConnectionServiceClient::new(channel.clone());
        let request = daemon.authed(pb::RefreshConnectionRequest {
            id: connection["id"].as_str().unwrap().to_owned(),
        });
        tokio::spawn(async move { client.refresh_connection(request).await })
    });
    let started = Instant::now();
    for call in futures::future::join_all(calls).await {
        let reply = call.unwrap().expect("refresh succeeded");
        assert_eq!(reply.into_inner().status, pb::ConnectionStatus::Active as i32);
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "callers waited for one refresh, not twenty"
    );
    assert_eq!(stats(&daemon, "pipedrive")["token_calls"].as_u64().unwrap(), before + 1);
}

#[test]
fn a_revoked_grant_marks_the_connection_expired_once_without_retrying() {
    let daemon = sandbox_daemon();
    let receiver = Receiver::start();
    daemon.ctl_json(&[
        "webhook",
        "create",
        "--url",
        &receiver.url("/expired"),
        "--events",
        "connection.expired",
    ]);
    for provider in PROVIDERS {
        let connection = daemon.connect(provider);
        let id = connection["id"].as_str().unwrap();
        control(&daemon, provider, "revoke-grants", json!({}));
        let refresh = daemon.ctl(&["connection", "refresh", id]);
        assert!(!refresh.success(), "{provider}: refresh succeeded after revocation");
        assert!(
            refresh.stderr().contains("rejected the grant"),
            "{provider}: {}",
            refresh.stderr()
        );
        let current = daemon.ctl_json(&["connection", "get", id]);
        assert_eq!(current["status"], "expired", "{provider}");
        assert!(current["lastError"].as_str().unwrap().contains("authorized again"));
        if provider == "hubspot" {
            assert!(
                current["lastError"].as_str().unwrap().contains("BAD_REFRESH_TOKEN"),
                "{current}"
            );
        }
    }
    let events = receiver.wait_for("/expired", 4, Duration::from_secs(10));
    assert!(events.iter().all(|e| e.json()["eventType"] == "connection.expired"));
    let calls = stats(&daemon, "jobber")["token_calls"].as_u64().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        stats(&daemon, "jobber")["token_calls"].as_u64().unwrap(),
        calls,
        "no retry storm after revocation"
    );
    assert_eq!(
        receiver.received_at("/expired").len(),
        4,
        "one connection.expired per connection"
    );
}

#[test]
fn transient_token_failures_are_retried_with_backoff() {
    let daemon = sandbox_daemon();
    let connection = daemon.connect("hubspot");
    let id = connection["id"].as_str().unwrap();
    control(
        &daemon,
        "hubspot",
        "fail-token-calls",
        json!({ "count": 2, "status": 503 }),
    );
    let before = stats(&daemon, "hubspot")["token_calls"].as_u64().unwrap();
    let refresh = daemon.ctl(&["connection", "refresh", id]);
    assert!(!refresh.success(), "a failed refresh is reported as failed");
    assert!(refresh.stderr().contains("unavailable"), "{}", refresh.stderr());
    let current = daemon.ctl_json(&["connection", "get", id]);
    assert_eq!(current["status"], "active", "the current token is still valid");
    assert!(
        current["lastError"].as_str().unwrap().contains("unavailable"),
        "{current}"
    );
    let recovered = wait_for(Duration::from_secs(10), || {
        let current = daemon.ctl_json(&["connection", "get", id]);
        current["lastError"].is_null().then_some(current)
    });
    assert!(recovered.is_some(), "the retry did not succeed");
    assert_eq!(stats(&daemon, "hubspot")["token_calls"].as_u64().unwrap(), before + 3);
}

#[test]
fn importing_a_connected_account_reconnects_it_and_delete_revokes() {
    let daemon = sandbox_daemon();
    let connected = daemon.connect("hubspot");
    let id = connected["id"].as_str().unwrap();
    let tokens = http_get_json(&format!("{}/_control/hubspot/tokens", daemon.sandbox_url()));
    let refresh = tokens["refresh_tokens"][0].as_str().unwrap();
    let imported = daemon.ctl_json(&[
        "connection",
        "import",
        "--provider",
        "hubspot",
        "--refresh-token",
        refresh,
    ]);
    // The same account in the same organization: the same connection, with the new tokens.
    assert_eq!(imported["status"], "active");
    assert_eq!(imported["id"], connected["id"], "{imported}");
    assert_eq!(daemon.ctl_json(&["connection", "list"]).as_array().unwrap().len(), 1);
    let reconnected = daemon.ctl_json(&["events", "list", "--type", "connection.refreshed"]);
    assert_eq!(reconnected[0]["data"]["reconnected"], true, "{reconnected}");
    assert_eq!(reconnected[0]["data"]["connectionId"], id);
    // Its actor runs again with them.
    assert_eq!(daemon.ctl_json(&["connection", "refresh", id])["status"], "active");
    let bad = daemon.ctl(&[
        "connection",
        "import",
        "--provider",
        "hubspot",
        "--refresh-token",
        "na1-nope",
    ]);
    assert!(!bad.success());
    assert!(bad.stderr().contains("BAD_REFRESH_TOKEN"), "{}", bad.stderr());
    assert_eq!(
        daemon.ctl_json(&["connection", "list"]).as_array().unwrap().len(),
        1,
        "a failed import stores nothing"
    );

    let deleted = daemon.ctl_json(&["connection", "delete", id]);
    assert_eq!(deleted["grantRevoked"], true);
    assert_eq!(stats(&daemon, "hubspot")["revocations"], 1);
    assert!(!daemon.ctl(&["connection", "get", id]).success());
    assert_eq!(daemon.ctl_json(&["status"])["liveActors"]["connections"], 0);
}

#[test]
fn bad_input_names_the_field() {
    let daemon = sandbox_daemon();
    let missing = daemon.ctl(&["connection", "import", "--provider", "jobber"]);
    assert!(!missing.success());
    let unknown = daemon.ctl(&["connection", "get", "conn_nope"]);
    assert!(unknown.stderr().contains("not found"), "{}", unknown.stderr());
    let unconfigured = TestDaemon::start(&[]);
    let out = unconfigured.ctl(&["connection", "create", "--provider", "hubspot", "--no-wait"]);
    assert!(out.stderr().contains("providers.hubspot.client_id"), "{}", out.stderr());
}

#[test]
fn jobber_rotation_survives_a_daemon_restart() {
    let sandbox = StandaloneSandbox::start(0);
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("fluxd.toml");
    std::fs::write(&config, &sandbox.config).unwrap();
    let mut daemon = TestDaemon::start(&["--config", config.to_str().unwrap()]);
    let connection = daemon.connect("jobber");
    let id = connection["id"].as_str().unwrap().to_owned();
    let rotated = |daemon: &TestDaemon| {
        let refreshed = daemon.ctl(&["connection", "refresh", &id, "-o", "json"]);
        assert!(refreshed.success(), "{}", refreshed.stderr());
    };
    rotated(&daemon);
    daemon.restart();
    rotated(&daemon);
    daemon.kill9();
    daemon.launch();
    rotated(&daemon);
    let stats = http_get_json(&format!("{}/_control/jobber/stats", sandbox.base));
    assert_eq!(stats["refreshes"], 3);
    assert_eq!(
        stats["live_refresh_tokens"], 1,
        "each rotation invalidated the previous token"
    );
    assert_eq!(daemon.ctl_json(&["connection", "get", &id])["status"], "active");
}

#[test]
fn no_secret_in_the_database_logs_metrics_or_any_read_answer() {
    let receiver = common::receiver::Receiver::start();
    let mut daemon = TestDaemon::start_logging(&["--sandbox", "--allow-private-webhooks"], "trace");
    let mut connections = Vec::new();
    for provider in PROVIDERS {
        let connection = daemon.connect(provider);
        daemon.ctl_json(&["connection", "refresh", connection["id"].as_str().unwrap()]);
        connections.push(connection["id"].as_str().unwrap().to_owned());
    }
    // A webhook endpoint whose signing secret is shown once, at creation.
    let created = daemon.ctl_json(&["webhook", "create", "--url", &receiver.url("/hook")]);
    let webhook_secret = created["secret"].as_str().unwrap().to_owned();
    let endpoint = created["id"].as_str().unwrap().to_owned();
    daemon.ctl_json(&["webhook", "test", &endpoint]);
    common::wait_for(Duration::from_secs(10), || {
        (!receiver.received().is_empty()).then_some(())
    })
    .expect("a signed delivery");
    // Everything a reader can see afterwards.
    let mut seen = common::http_get(&format!("http://{}/metrics", daemon.http)).1;
    let mut reads: Vec<Vec<&str>> = vec![
        vec!["status"],
        vec!["connection", "list"],
        vec!["webhook", "list"],
        vec!["webhook", "get", &endpoint],
        vec!["webhook", "deliveries", &endpoint],
        vec!["events", "list", "--all"],
        vec!["audit", "--all"],
        vec!["org", "tokens"],
        vec!["org", "members"],
    ];
    for id in &connections {
        reads.push(vec!["connection", "get", id]);
    }
    for args in reads {
        seen.push_str(&daemon.ctl_json(&args).to_string());
    }
    let mut secrets: Vec<String> = PROVIDERS.iter().map(|p| format!("sandbox-{p}-secret")).collect();
    for provider in PROVIDERS {
        let tokens = http_get_json(&format!("{}/_control/{provider}/tokens", daemon.sandbox_url()));
        for kind in ["access_tokens", "refresh_tokens"] {
            secrets.extend(
                tokens[kind]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_owned()),
            );
        }
    }
    assert!(secrets.len() >= 4 + 4 + 3, "collected {} secrets", secrets.len());
    secrets.push(webhook_secret.trim_start_matches("whsec_").to_owned());
    secrets.push(daemon.admin_token());
    let (status, _) = daemon.terminate();
    assert!(status.success());
    let db = std::fs::read(daemon.data_dir().join("fluxd.redb")).unwrap();
    let log = daemon.log();
    assert!(log.contains("TRACE"), "logs were at trace level");
    for secret in &secrets {
        // Jobber's JWT: check its signature part, which is unique to the token.
        let needle = secret.rsplit('.').next().unwrap();
        assert!(
            !db.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "a secret is in fluxd.redb in plaintext"
        );
        assert!(!log.contains(needle), "a secret is in the log");
        assert!(!seen.contains(needle), "a secret is in /metrics or a read answer");
    }
}
