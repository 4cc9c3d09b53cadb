//! The daemon skeleton through its real binaries: start-up on port 0, auth, persistence,
//! shutdown, file modes, health, metrics and reflection.

mod common;

use std::time::Duration;

use common::{TestDaemon, mode};
use fluxcascade::pb::{self, system_service_client::SystemServiceClient};
use tokio_stream::StreamExt;

#[test]
fn endpoints_json_and_status_json_after_start_on_port_zero() {
    let daemon = TestDaemon::start(&[]);
    assert!(daemon.grpc.starts_with("127.0.0.1:") && !daemon.grpc.ends_with(":0"));
    assert!(daemon.http.starts_with("127.0.0.1:") && !daemon.http.ends_with(":0"));
    let status = daemon.ctl_json(&["status"]);
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert!(status["organizationId"].as_str().unwrap().starts_with("org_"));
    assert_eq!(status["connections"], 0);
    assert_eq!(status["liveActors"]["total"], 0);
}

#[test]
fn a_wrong_token_is_refused_as_unauthenticated_by_fluxctl() {
    let daemon = TestDaemon::start(&[]);
    let out = daemon.ctl(&["--token", "wrong", "status"]);
    assert!(!out.success());
    assert!(
        out.stderr().to_lowercase().contains("unauthenticated"),
        "{}",
        out.stderr()
    );
}

#[tokio::test]
async fn rpcs_without_or_with_a_bad_token_are_unauthenticated() {
    let daemon = TestDaemon::start(&[]);
    let mut client = SystemServiceClient::new(daemon.channel().await);
    let missing = client.get_status(pb::GetStatusRequest {}).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::Unauthenticated);
    let mut bad = tonic::Request::new(pb::GetStatusRequest {});
    bad.metadata_mut()
        .insert("authorization", "Bearer fxc_nope".parse().unwrap());
    assert_eq!(
        client.get_status(bad).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    let mut not_bearer = tonic::Request::new(pb::GetStatusRequest {});
    not_bearer
        .metadata_mut()
        .insert("authorization", daemon.admin_token().parse().unwrap());
    assert_eq!(
        client.get_status(not_bearer).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    assert!(client.get_status(daemon.authed(pb::GetStatusRequest {})).await.is_ok());
}

#[test]
fn restart_keeps_members_tokens_and_the_org() {
    let mut daemon = TestDaemon::start(&[]);
    let org = daemon.ctl_json(&["org", "get"]);
    let member = daemon.ctl_json(&["org", "add-member", "ops@example.com", "--role", "admin"]);
    let token = daemon.ctl_json(&[
        "org",
        "create-token",
        "--name",
        "ci",
        "--member",
        member["id"].as_str().unwrap(),
    ]);
    daemon.restart();
    assert_eq!(daemon.ctl_json(&["org", "get"]), org);
    let members = daemon.ctl_json(&["org", "members"]);
    assert!(
        members
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["email"] == "ops@example.com" && m["role"] == "admin")
    );
    let as_admin = daemon.ctl(&[
        "--token",
        token["secret"].as_str().unwrap(),
        "org",
        "members",
        "-o",
        "json",
    ]);
    assert!(as_admin.success(), "{}", as_admin.stderr());
}

#[test]
fn sigterm_exits_zero_within_ten_seconds() {
    let mut daemon = TestDaemon::start(&[]);
    daemon.ctl_json(&["status"]);
    let (status, took) = daemon.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(daemon.log().contains("fluxd stopped"));
}

/// Starts fluxd on `data_dir` until it is ready, then kills it.
fn start_and_kill(data_dir: &std::path::Path) {
    let mut child = std::process::Command::new(common::FLUXD)
        .args(["--data-dir", data_dir.to_str().unwrap()])
        .args(["--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .env_remove("FLUXD_MASTER_KEY")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = common::wait_for(Duration::from_secs(20), || {
        data_dir.join("endpoints.json").exists().then_some(())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(ready.is_some(), "fluxd started");
}

#[test]
fn a_data_dir_fluxd_creates_is_private_and_an_existing_one_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let fresh = parent.path().join("fresh");
    start_and_kill(&fresh);
    assert_eq!(mode(&fresh), 0o700);
    let shared = parent.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    start_and_kill(&shared);
    let kept = std::fs::metadata(&shared).unwrap().permissions().mode() & 0o7777;
    assert_eq!(kept, 0o1777, "the sticky bit and mode stay");
    assert_eq!(mode(&shared.join("fluxd.redb")), 0o600);
    assert_eq!(mode(&shared.join("master.key")), 0o600);
}

#[test]
fn master_key_admin_token_and_data_dir_are_private() {
    let daemon = TestDaemon::start(&[]);
    assert_eq!(mode(&daemon.data_dir().join("master.key")), 0o600);
    assert_eq!(mode(&daemon.data_dir().join("admin.token")), 0o600);
    assert_eq!(mode(&daemon.data_dir().join("fluxd.redb")), 0o600);
    let token = daemon.admin_token();
    let db = std::fs::read(daemon.data_dir().join("fluxd.redb")).unwrap();
    assert!(
        !db.windows(token.len()).any(|w| w == token.as_bytes()),
        "admin token stored in plaintext"
    );
    assert!(!daemon.log().contains(&token), "admin token logged");
}

#[test]
fn healthz_and_metrics_answer_over_http() {
    let daemon = TestDaemon::start(&[]);
    daemon.ctl_json(&["status"]);
    let health = http_get(&format!("http://{}/healthz", daemon.http));
    assert_eq!(health.0, 200);
    let metrics = http_get(&format!("http://{}/metrics", daemon.http));
    assert_eq!(metrics.0, 200);
    assert!(
        metrics
            .1
            .contains("fluxd_grpc_requests_total{method=\"/fluxcascade.v1.SystemService/GetStatus\",code=\"0\"} 1"),
        "{}",
        metrics.1
    );
    assert!(
        metrics.1.contains("fluxd_live_actors{supervisor=\"connections\"} 0"),
        "{}",
        metrics.1
    );
    assert_eq!(http_get(&format!("http://{}/nope", daemon.http)).0, 404);
}

#[tokio::test]
async fn reflection_lists_every_service_and_health_serves() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let daemon = TestDaemon::start(&[]);
    let mut client = ServerReflectionClient::new(daemon.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reply")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in [
        "SystemService",
        "ConnectionService",
        "MappingService",
        "SyncService",
        "WebhookService",
        "OrganizationService",
    ] {
        assert!(
            names.contains(&format!("fluxcascade.v1.{service}")),
            "{service} missing from {names:?}"
        );
    }
    let mut health = tonic_health::pb::health_client::HealthClient::new(daemon.channel().await);
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reply.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

/// GET `url` on a throwaway runtime; returns status and body.
fn http_get(url: &str) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = reqwest::get(url).await.expect("GET");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    })
}

#[test]
fn roles_limit_what_a_token_may_do() {
    let daemon = TestDaemon::start(&[]);
    let member = daemon.ctl_json(&["org", "add-member", "viewer@example.com", "--role", "member"]);
    let token = daemon.ctl_json(&[
        "org",
        "create-token",
        "--name",
        "viewer",
        "--member",
        member["id"].as_str().unwrap(),
    ]);
    let secret = token["secret"].as_str().unwrap();
    assert!(daemon.ctl(&["--token", secret, "status"]).success());
    let denied = daemon.ctl(&["--token", secret, "org", "add-member", "x@example.com"]);
    assert!(!denied.success());
    assert!(denied.stderr().contains("permission denied"), "{}", denied.stderr());

    let owner_id = daemon.ctl_json(&["org", "members"])[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let demote = daemon.ctl(&["org", "set-role", &owner_id, "--role", "admin"]);
    assert!(!demote.success());
    assert!(demote.stderr().contains("at least one owner"), "{}", demote.stderr());

    let bad_email = daemon.ctl(&["org", "add-member", "not-an-email"]);
    assert!(
        bad_email.stderr().contains("invalid argument: email"),
        "{}",
        bad_email.stderr()
    );

    daemon.ctl_json(&["org", "revoke-token", token["id"].as_str().unwrap()]);
    assert!(
        !daemon.ctl(&["--token", secret, "status"]).success(),
        "revoked token still works"
    );
}
