//! API v1 as clients meet it: pages, error details, undecodable requests, health per service,
//! reflection with the proto's comments, the event log, fluxctl's completions and man pages,
//! /metrics in the plain Prometheus format, and SIGHUP reloads.

mod common;

use std::time::Duration;

use common::receiver::Receiver;
use common::{TestDaemon, wait_for};
use fluxcascade::pb::{self, webhook_service_client::WebhookServiceClient};
use prost::Message;
use tonic_types::StatusExt;

async fn create_endpoint(
    client: &mut WebhookServiceClient<tonic::transport::Channel>,
    daemon: &TestDaemon,
    url: &str,
) -> Result<String, tonic::Status> {
    let created = client
        .create_webhook_endpoint(daemon.authed(pb::CreateWebhookEndpointRequest {
            url: url.to_owned(),
            description: String::new(),
            event_types: vec!["sync.*".into()],
            settings: None,
        }))
        .await?
        .into_inner();
    Ok(created.endpoint.expect("endpoint").id)
}

#[tokio::test]
async fn lists_page_with_a_token_and_fluxctl_follows_them() {
    let daemon = TestDaemon::start(&["--allow-private-webhooks"]);
    let mut client = WebhookServiceClient::new(daemon.channel().await);
    let mut made = Vec::new();
    for path in ["a", "b"] {
        made.push(
            create_endpoint(&mut client, &daemon, &format!("http://127.0.0.1:9/{path}"))
                .await
                .unwrap(),
        );
    }
    let first = client
        .list_webhook_endpoints(daemon.authed(pb::ListWebhookEndpointsRequest {
            page_size: 1,
            page_token: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.endpoints.len(), 1);
    assert!(!first.next_page_token.is_empty());
    let second = client
        .list_webhook_endpoints(daemon.authed(pb::ListWebhookEndpointsRequest {
            page_size: 1,
            page_token: first.next_page_token.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.endpoints.len(), 1);
    assert!(second.next_page_token.is_empty(), "two items, two pages");
    let mut seen = vec![first.endpoints[0].id.clone(), second.endpoints[0].id.clone()];
    seen.sort();
    made.sort();
    assert_eq!(seen, made);

    let bad_token = client
        .list_webhook_endpoints(daemon.authed(pb::ListWebhookEndpointsRequest {
            page_size: 1,
            page_token: "not-a-token".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(bad_token.code(), tonic::Code::InvalidArgument);

    let limited = daemon.ctl(&["webhook", "list", "--limit", "1", "-o", "json"]);
    assert!(limited.success(), "{}", limited.stderr());
    let limited: serde_json::Value = serde_json::from_str(&limited.stdout()).unwrap();
    assert_eq!(limited.as_array().unwrap().len(), 1);
    assert_eq!(
        daemon.ctl_json(&["webhook", "list", "--all"]).as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn bad_input_names_the_field_in_bad_request_details() {
    let daemon = TestDaemon::start(&[]);
    let mut client = WebhookServiceClient::new(daemon.channel().await);
    let refused = create_endpoint(&mut client, &daemon, "not a url").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let details = refused.get_details_bad_request().expect("BadRequest details");
    assert_eq!(details.field_violations.len(), 1, "{details:?}");
    assert_eq!(details.field_violations[0].field, "url");
    assert!(!details.field_violations[0].description.is_empty());

    let missing = client
        .get_webhook_endpoint(daemon.authed(pb::GetWebhookEndpointRequest { id: "wh_nope".into() }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let resource = missing.get_details_resource_info().expect("ResourceInfo details");
    assert_eq!(resource.resource_name, "wh_nope");
    let listed = client
        .list_webhook_endpoints(daemon.authed(pb::ListWebhookEndpointsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.endpoints.is_empty(), "nothing stored");
}

/// A `GetSyncRequest` on the wire whose `id` (field 1, a string) is not UTF-8.
#[derive(Clone, PartialEq, prost::Message)]
struct NotUtf8 {
    #[prost(bytes = "vec", tag = "1")]
    id: Vec<u8>,
}

#[tokio::test]
async fn an_undecodable_request_is_invalid_argument() {
    let daemon = TestDaemon::start(&[]);
    let mut grpc = tonic::client::Grpc::new(daemon.channel().await);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/fluxcascade.v1.SyncService/GetSync");
    let codec = tonic_prost::ProstCodec::<NotUtf8, pb::SyncJob>::default();
    let refused = grpc
        .unary(daemon.authed(NotUtf8 { id: vec![0xff, 0xfe] }), path, codec)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
}

#[tokio::test]
async fn every_service_answers_health_checks_by_name() {
    let daemon = TestDaemon::start(&[]);
    let mut health = tonic_health::pb::health_client::HealthClient::new(daemon.channel().await);
    for service in [
        "",
        "fluxcascade.v1.SystemService",
        "fluxcascade.v1.ConnectionService",
        "fluxcascade.v1.MappingService",
        "fluxcascade.v1.SyncService",
        "fluxcascade.v1.WebhookService",
        "fluxcascade.v1.EventService",
        "fluxcascade.v1.OrganizationService",
    ] {
        let answer = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|status| panic!("{service:?}: {status}"))
            .into_inner();
        assert_eq!(
            answer.status(),
            tonic_health::pb::health_check_response::ServingStatus::Serving,
            "{service:?}"
        );
    }
}

#[tokio::test]
async fn reflection_serves_the_protos_comments() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let daemon = TestDaemon::start(&[]);
    let mut client = ServerReflectionClient::new(daemon.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(
            "fluxcascade.v1.SyncService".into(),
        )),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().expect("an answer");
    let Some(MessageResponse::FileDescriptorResponse(files)) = answer.message_response else {
        panic!("no file descriptor: {answer:?}");
    };
    let comments: Vec<String> = files
        .file_descriptor_proto
        .iter()
        .map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap())
        .filter(|file| file.name() == "fluxcascade/v1/syncs.proto")
        .flat_map(|file| file.source_code_info.unwrap_or_default().location)
        .filter_map(|location| location.leading_comments)
        .collect();
    assert!(
        comments.iter().any(|c| c.contains("Waiting for a free slot")),
        "{comments:?}"
    );
}

#[test]
fn events_are_listed_by_type_and_shown_with_their_data() {
    let daemon = TestDaemon::start(&["--sandbox"]);
    let hubspot = daemon.connect("hubspot");
    daemon.connect("jobber");
    let created = daemon.ctl_json(&["events", "list", "--type", "connection.created"]);
    let created = created.as_array().unwrap();
    assert_eq!(created.len(), 2, "{created:?}");
    assert!(created.iter().all(|e| e["eventType"] == "connection.created"));
    let all = daemon.ctl_json(&["events", "list", "--type", "connection.*", "--since", "1h"]);
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert!(
        daemon
            .ctl_json(&["events", "list", "--until", "1h"])
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing happened before an hour ago"
    );
    let oldest = created.last().unwrap();
    let shown = daemon.ctl_json(&["events", "get", oldest["id"].as_str().unwrap()]);
    assert_eq!(shown["data"]["connectionId"], hubspot["id"], "{shown}");
    assert!(shown["timestamp"].as_str().unwrap().ends_with('Z'), "{shown}");
    let missing = daemon.ctl(&["events", "get", "evt_nope"]);
    assert!(!missing.success());
    assert!(missing.stderr().contains("evt_nope"), "{}", missing.stderr());
}

#[test]
fn fluxctl_prints_completions_and_writes_man_pages() {
    let bash = std::process::Command::new(common::FLUXCTL)
        .args(["completion", "bash"])
        .output()
        .unwrap();
    assert!(bash.status.success());
    let script = String::from_utf8(bash.stdout).unwrap();
    assert!(script.contains("complete -F _fluxctl"), "{script}");
    assert!(script.contains("events"), "subcommands are completed");
    for shell in ["zsh", "fish"] {
        let out = std::process::Command::new(common::FLUXCTL)
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }
    let dir = tempfile::tempdir().unwrap();
    let man = std::process::Command::new(common::FLUXCTL)
        .args(["man", "--out-dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(man.status.success(), "{}", String::from_utf8_lossy(&man.stderr));
    let page = std::fs::read_to_string(dir.path().join("fluxctl.1")).unwrap();
    assert!(page.contains(".TH fluxctl"), "{page}");
    assert!(dir.path().join("fluxctl-sync-run.1").is_file());
}

fn scrape(daemon: &TestDaemon) -> (String, prometheus_parse::Scrape) {
    let url = format!("http://{}/metrics", daemon.http);
    let (status, content_type, text) = common::http_get_with(&url, &[("accept", "text/plain;version=0.0.4;q=1")]);
    assert_eq!(status, 200, "{text}");
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    (
        content_type,
        prometheus_parse::Scrape::parse(lines).expect("Prometheus text"),
    )
}

#[test]
fn metrics_in_the_prometheus_text_format_count_syncs_and_time_deliveries() {
    let receiver = Receiver::start();
    let daemon = TestDaemon::start(&["--sandbox", "--sandbox-records", "5", "--allow-private-webhooks"]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    daemon.ctl_json(&[
        "webhook",
        "create",
        "--url",
        &receiver.url("/hook"),
        "--events",
        "sync.*",
    ]);
    let mapping = daemon.create_mapping(&common::contacts_to_clients("metrics", &hubspot, &jobber));
    let job = daemon.ctl_json(&["sync", "run", &mapping, "--wait", "--yes"]);
    assert_eq!(job["status"], "completed", "{job}");
    wait_for(Duration::from_secs(15), || {
        (receiver.received().len() >= 2).then_some(())
    })
    .expect("sync.started and sync.completed delivered");

    let delivered = wait_for(Duration::from_secs(10), || {
        let (content_type, scrape) = scrape(&daemon);
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
        let count = |name: &str, label: (&str, &str)| -> f64 {
            scrape
                .samples
                .iter()
                .filter(|s| s.metric == name && s.labels.get(label.0) == Some(label.1))
                .map(|s| match &s.value {
                    prometheus_parse::Value::Counter(v) => *v,
                    prometheus_parse::Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
                    _ => 0.0,
                })
                .sum()
        };
        let runs = count("fluxd_sync_runs_total", ("status", "completed"));
        let records = count("fluxd_sync_records_total", ("outcome", "created"))
            + count("fluxd_sync_records_total", ("outcome", "updated"));
        let attempts = count("fluxd_webhook_delivery_attempts_total", ("result", "succeeded"));
        let histogram = scrape
            .samples
            .iter()
            .find(|s| s.metric == "fluxd_webhook_delivery_duration_seconds")
            .map(|s| s.value.clone());
        let documented = |name: &str| scrape.docs.contains_key(name);
        (runs == 1.0 && records == 5.0 && attempts >= 2.0).then(|| {
            assert!(documented("fluxd_sync_runs_total"), "{:?}", scrape.docs.keys());
            assert!(documented("fluxd_build_info"));
            assert!(documented("process_resident_memory_bytes"));
            assert!(documented("process_cpu_seconds_total"));
            histogram
        })
    })
    .expect("sync runs, records and delivery attempts counted");
    let Some(prometheus_parse::Value::Histogram(buckets)) = delivered else {
        panic!("the delivery duration is a histogram: {delivered:?}");
    };
    assert!(buckets.last().unwrap().count >= 2.0, "{buckets:?}");
}

#[test]
fn sighup_reloads_the_webhook_address_policy_and_fluxd_keeps_running() {
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("fluxd.toml");
    std::fs::write(&config, "[webhooks]\nallow_private = false\n").unwrap();
    let daemon = TestDaemon::start(&["--config", config.to_str().unwrap()]);
    let url = "http://127.0.0.1:9/hook";
    let refused = daemon.ctl(&["webhook", "create", "--url", url]);
    assert!(!refused.success(), "a private address is refused by default");

    std::fs::write(
        &config,
        "[webhooks]\nallow_private = true\nallow_http = true\n\n[sync]\nmax_parallel = 2\n",
    )
    .unwrap();
    daemon.hangup();
    wait_for(Duration::from_secs(10), || {
        daemon.log().contains("configuration reloaded").then_some(())
    })
    .expect("the reload is logged");
    assert!(
        daemon.log().contains("take effect at the next restart") && daemon.log().contains("sync"),
        "a setting that needs a restart is named: {}",
        daemon.log()
    );
    let created = daemon.ctl(&["webhook", "create", "--url", url]);
    assert!(created.success(), "{}", created.stderr());
    assert_eq!(daemon.ctl_json(&["status"])["version"], env!("CARGO_PKG_VERSION"));
}
