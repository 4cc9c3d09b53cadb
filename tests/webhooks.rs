//! Outbound webhooks through the real daemon and fluxctl, against a real HTTP receiver that
//! verifies signatures with its own HMAC.

mod common;

use std::time::Duration;

use common::receiver::{Receiver, Reply, verify_fluxcascade, verify_standard};
use common::{TestDaemon, wait_for};
use serde_json::Value;

fn daemon() -> TestDaemon {
    TestDaemon::start(&["--allow-private-webhooks"])
}

fn create(daemon: &TestDaemon, url: &str, extra: &[&str]) -> Value {
    let mut args = vec!["webhook", "create", "--url", url];
    args.extend_from_slice(extra);
    daemon.ctl_json(&args)
}

fn test_event(daemon: &TestDaemon, endpoint: &str) -> Value {
    daemon.ctl_json(&["webhook", "test", endpoint])
}

fn endpoint(daemon: &TestDaemon, id: &str) -> Value {
    daemon.ctl_json(&["webhook", "get", id])
}

/// Waits until delivery `id` is no longer pending and returns it.
fn settled(daemon: &TestDaemon, id: &str, timeout: Duration) -> Value {
    wait_for(timeout, || {
        let delivery = daemon.ctl_json(&["webhook", "delivery", id]);
        (delivery["status"] != "pending").then_some(delivery)
    })
    .unwrap_or_else(|| panic!("delivery {id} still pending after {timeout:?}"))
}

#[test]
fn create_prints_id_and_secret_and_deliveries_are_signed_with_the_seed_shape() {
    let daemon = daemon();
    let receiver = Receiver::start();
    let created = create(&daemon, &receiver.url("/hook"), &["--events", "sync.*,webhook.test"]);
    let id = created["id"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();
    assert!(id.starts_with("wh_"));
    assert!(secret.starts_with("whsec_"));

    let delivery = test_event(&daemon, id);
    let got = receiver.wait_for("/hook", 1, Duration::from_secs(10));
    let request = &got[0];
    assert!(
        verify_standard(secret, request),
        "standard webhooks signature does not verify"
    );
    assert!(
        verify_fluxcascade(secret, request),
        "X-FluxCascade-Signature does not verify"
    );
    assert!(!verify_standard(
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        request
    ));
    let body = request.json();
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["data", "eventType", "metadata", "timestamp"]);
    assert_eq!(body["eventType"], "webhook.test");
    assert_eq!(body["metadata"]["fluxcascadeEventId"], delivery["eventId"]);
    assert_eq!(request.header("webhook-id"), delivery["eventId"].as_str().unwrap());
    assert_eq!(
        request.header("x-fluxcascade-event-id"),
        delivery["eventId"].as_str().unwrap()
    );
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));

    let settled = settled(&daemon, delivery["id"].as_str().unwrap(), Duration::from_secs(5));
    assert_eq!(settled["status"], "succeeded");
    assert_eq!(settled["attempts"][0]["statusCode"], 200);
    assert_eq!(settled["attempts"][0]["responseBody"], "{\"received\":true}");
    assert_eq!(daemon.ctl_json(&["webhook", "reveal-secret", id])["secret"], secret);
}

/// The 1 s / 2 s / 4 s spacing is checked to the millisecond on paused time in
/// `webhooks::actor`; this checks the same policy end to end over HTTP.
#[test]
fn a_failing_receiver_gets_the_first_attempt_and_three_retries_then_the_delivery_fails() {
    let daemon = daemon();
    let receiver = Receiver::start();
    receiver.set_reply(Reply::status(500));
    let created = create(&daemon, &receiver.url("/fail"), &[]);
    let delivery = test_event(&daemon, created["id"].as_str().unwrap());
    let got = receiver.wait_for("/fail", 4, Duration::from_secs(15));
    let attempts: Vec<String> = got.iter().map(|r| r.header("x-fluxcascade-attempt")).collect();
    assert_eq!(attempts, ["1", "2", "3", "4"]);
    assert!(
        got.windows(2).all(|w| w[1].at > w[0].at + Duration::from_millis(900)),
        "each retry waits at least its second"
    );
    let settled = settled(&daemon, delivery["id"].as_str().unwrap(), Duration::from_secs(5));
    assert_eq!(settled["status"], "failed");
    assert_eq!(settled["attemptCount"], 4);
    assert_eq!(receiver.received_at("/fail").len(), 4);
    let failed = daemon.ctl_json(&[
        "webhook",
        "deliveries",
        created["id"].as_str().unwrap(),
        "--status",
        "failed",
    ]);
    assert_eq!(failed.as_array().unwrap().len(), 1);
}

#[test]
fn ten_consecutive_failed_deliveries_disable_the_endpoint_and_enable_resets_it() {
    let daemon = daemon();
    let receiver = Receiver::start();
    receiver.set_reply(Reply::status(500));
    let created = create(&daemon, &receiver.url("/down"), &["--retry-schedule", "1"]);
    let id = created["id"].as_str().unwrap();
    let first_nine: Vec<Value> = (0..9).map(|_| test_event(&daemon, id)).collect();
    for delivery in &first_nine {
        settled(&daemon, delivery["id"].as_str().unwrap(), Duration::from_secs(10));
    }
    let after_nine = endpoint(&daemon, id);
    assert_eq!(after_nine["enabled"], true);
    assert_eq!(after_nine["consecutiveFailures"], 9);

    let tenth = test_event(&daemon, id);
    settled(&daemon, tenth["id"].as_str().unwrap(), Duration::from_secs(10));
    let disabled = endpoint(&daemon, id);
    assert_eq!(disabled["enabled"], false);
    assert!(
        disabled["disabledReason"].as_str().unwrap().contains("10 consecutive"),
        "{disabled}"
    );
    assert!(daemon.log().contains("webhook endpoint disabled"));
    assert!(
        !daemon.ctl(&["webhook", "test", id]).success(),
        "a disabled endpoint takes no test event"
    );

    receiver.set_reply(Reply::status(204));
    let enabled = daemon.ctl_json(&["webhook", "enable", id]);
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["consecutiveFailures"], 0);
    let ok = test_event(&daemon, id);
    assert_eq!(
        settled(&daemon, ok["id"].as_str().unwrap(), Duration::from_secs(10))["status"],
        "succeeded"
    );
}

#[test]
fn a_success_resets_the_failure_count_and_410_disables_at_once() {
    let daemon = daemon();
    let receiver = Receiver::start();
    receiver.set_reply(Reply::status(500));
    let created = create(&daemon, &receiver.url("/flaky"), &["--retry-schedule", "1"]);
    let id = created["id"].as_str().unwrap();
    let failed = test_event(&daemon, id);
    settled(&daemon, failed["id"].as_str().unwrap(), Duration::from_secs(10));
    assert_eq!(endpoint(&daemon, id)["consecutiveFailures"], 1);
    receiver.set_reply(Reply::status(200));
    let ok = test_event(&daemon, id);
    settled(&daemon, ok["id"].as_str().unwrap(), Duration::from_secs(10));
    assert_eq!(endpoint(&daemon, id)["consecutiveFailures"], 0);

    receiver.set_reply(Reply::status(410));
    let gone = test_event(&daemon, id);
    let settled = settled(&daemon, gone["id"].as_str().unwrap(), Duration::from_secs(10));
    assert_eq!(settled["attemptCount"], 1, "no retry after 410 Gone");
    let disabled = endpoint(&daemon, id);
    assert_eq!(disabled["enabled"], false);
    assert!(disabled["disabledReason"].as_str().unwrap().contains("410"));
}

#[test]
fn after_rotation_both_secrets_verify_and_the_new_one_is_revealed() {
    let daemon = daemon();
    let receiver = Receiver::start();
    let created = create(&daemon, &receiver.url("/rot"), &[]);
    let id = created["id"].as_str().unwrap();
    let old = created["secret"].as_str().unwrap().to_owned();
    let rotated = daemon.ctl_json(&["webhook", "rotate-secret", id]);
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    let expires: jiff::Timestamp = rotated["previousSecretExpiresAt"].as_str().unwrap().parse().unwrap();
    let overlap = expires.duration_since(jiff::Timestamp::now()).as_secs();
    assert!((86_000..=86_400).contains(&overlap), "old secret valid for {overlap} s");
    test_event(&daemon, id);
    let got = receiver.wait_for("/rot", 1, Duration::from_secs(10));
    assert!(verify_standard(&old, &got[0]) && verify_standard(&new, &got[0]));
    assert!(verify_fluxcascade(&old, &got[0]) && verify_fluxcascade(&new, &got[0]));
    assert_eq!(
        daemon.ctl_json(&["webhook", "reveal-secret", id])["secret"],
        new.as_str()
    );
}

#[test]
fn pending_deliveries_survive_kill_9_and_are_delivered_after_restart() {
    let mut daemon = daemon();
    let receiver = Receiver::start();
    receiver.set_reply(Reply::status(503));
    let created = create(&daemon, &receiver.url("/later"), &["--retry-schedule", "3,3"]);
    let id = created["id"].as_str().unwrap().to_owned();
    let delivery = test_event(&daemon, &id);
    receiver.wait_for("/later", 1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    daemon.kill9();
    receiver.set_reply(Reply::status(200));
    daemon.launch();
    let settled = settled(&daemon, delivery["id"].as_str().unwrap(), Duration::from_secs(15));
    assert_eq!(settled["status"], "succeeded");
    let got = receiver.received_at("/later");
    assert!(got.len() >= 2);
    assert!(
        (got[1].at - got[0].at) >= Duration::from_millis(2900),
        "retry waited its schedule across the restart"
    );
    assert!(
        got.iter()
            .all(|r| r.header("webhook-id") == settled["eventId"].as_str().unwrap()),
        "same id for dedupe"
    );
}

#[test]
fn timeouts_fail_an_attempt_and_a_slow_endpoint_does_not_delay_another() {
    let daemon = daemon();
    let slow = Receiver::start();
    slow.set_reply(Reply {
        status: 200,
        delay: Duration::from_secs(3),
        retry_after: None,
    });
    let fast = Receiver::start();
    let slow_ep = create(
        &daemon,
        &slow.url("/slow"),
        &["--timeout", "1", "--retry-schedule", "1"],
    );
    let fast_ep = create(&daemon, &fast.url("/fast"), &[]);
    let slow_delivery = test_event(&daemon, slow_ep["id"].as_str().unwrap());
    let slow_arrived = slow.wait_for("/slow", 1, Duration::from_secs(5))[0].at;
    test_event(&daemon, fast_ep["id"].as_str().unwrap());
    let fast_arrived = fast.wait_for("/fast", 1, Duration::from_secs(5))[0].at;
    // Had deliveries been serialised, the fast one could only start once the slow attempt
    // gave up, one second (its timeout) after it arrived.
    assert!(
        fast_arrived < slow_arrived + Duration::from_millis(1000),
        "the fast endpoint's delivery arrived {:?} after the slow one's",
        fast_arrived - slow_arrived
    );
    let settled = settled(&daemon, slow_delivery["id"].as_str().unwrap(), Duration::from_secs(10));
    assert_eq!(settled["status"], "failed");
    assert_eq!(settled["attempts"][0]["error"], "timed out");
    assert_eq!(settled["attempts"][0]["statusCode"], Value::Null);
}

#[test]
fn retry_after_on_429_is_honoured() {
    let daemon = daemon();
    let receiver = Receiver::start();
    receiver.set_reply(Reply {
        status: 429,
        delay: Duration::ZERO,
        retry_after: Some("3".into()),
    });
    let created = create(&daemon, &receiver.url("/limited"), &["--retry-schedule", "1"]);
    test_event(&daemon, created["id"].as_str().unwrap());
    // The exact wait is checked on paused time in `webhooks::actor`; over HTTP, the retry
    // must not come before the receiver's Retry-After (the schedule alone says 1 s).
    let got = receiver.wait_for("/limited", 2, Duration::from_secs(10));
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(2900), "gap {gap:?}");
}

#[test]
fn redeliver_and_recover_send_failed_deliveries_again() {
    let daemon = daemon();
    let receiver = Receiver::start();
    receiver.set_reply(Reply::status(500));
    let created = create(&daemon, &receiver.url("/again"), &["--retry-schedule", "1"]);
    let id = created["id"].as_str().unwrap();
    let before = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_secs(5))
        .unwrap()
        .to_string();
    let first = test_event(&daemon, id);
    let second = test_event(&daemon, id);
    for delivery in [&first, &second] {
        settled(&daemon, delivery["id"].as_str().unwrap(), Duration::from_secs(10));
    }
    receiver.set_reply(Reply::status(200));
    daemon.ctl_json(&["webhook", "redeliver", first["id"].as_str().unwrap()]);
    let redelivered = settled(&daemon, first["id"].as_str().unwrap(), Duration::from_secs(10));
    assert_eq!(redelivered["status"], "succeeded");
    assert_eq!(redelivered["attemptCount"], 3, "the attempt log keeps earlier attempts");

    let recovered = daemon.ctl_json(&["webhook", "recover", id, "--since", &before]);
    assert_eq!(recovered["requeued"], 1);
    assert_eq!(
        settled(&daemon, second["id"].as_str().unwrap(), Duration::from_secs(10))["status"],
        "succeeded"
    );
    let failed = daemon.ctl_json(&["webhook", "deliveries", id, "--status", "failed"]);
    assert_eq!(failed, serde_json::json!([]));
}

#[test]
fn bad_input_is_refused_naming_the_field_and_private_urls_need_the_switch() {
    let open = daemon();
    for (args, expected) in [
        (vec!["--url", "not a url"], "url:"),
        (
            vec!["--url", "http://127.0.0.1:9/x", "--events", "sync.done"],
            "sync.done",
        ),
        (
            vec!["--url", "http://127.0.0.1:9/x", "--retry-schedule", "1,0"],
            "retry_schedule_seconds[1]",
        ),
        (
            vec!["--url", "http://127.0.0.1:9/x", "--failure-threshold", "0"],
            "failure_threshold",
        ),
    ] {
        let mut all = vec!["webhook", "create"];
        all.extend(args);
        let out = open.ctl(&all);
        assert!(!out.success());
        assert!(
            out.stderr().contains("invalid argument") && out.stderr().contains(expected),
            "{}",
            out.stderr()
        );
    }
    assert_eq!(
        open.ctl_json(&["webhook", "list"]),
        serde_json::json!([]),
        "nothing stored"
    );

    let strict = TestDaemon::start(&[]);
    for url in [
        "http://hooks.example.com/x",
        "https://127.0.0.1/x",
        "https://169.254.169.254/latest",
        "https://localhost/x",
    ] {
        let out = strict.ctl(&["webhook", "create", "--url", url]);
        assert!(!out.success(), "{url} accepted");
        assert!(out.stderr().contains("url:"), "{}", out.stderr());
    }
    let missing = strict.ctl(&["webhook", "get", "wh_nope"]);
    assert!(missing.stderr().contains("not found"), "{}", missing.stderr());
}

#[test]
fn secrets_stay_sealed_on_disk_and_out_of_logs_and_survive_key_rotation() {
    let mut daemon = daemon();
    let created = create(&daemon, "http://127.0.0.1:9/x", &[]);
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let (status, _) = daemon.terminate();
    assert!(status.success());
    let db = std::fs::read(daemon.data_dir().join("fluxd.redb")).unwrap();
    let needle = &secret["whsec_".len()..];
    assert!(
        !db.windows(needle.len()).any(|w| w == needle.as_bytes()),
        "secret in plaintext in fluxd.redb"
    );
    assert!(!daemon.log().contains(needle), "secret in the logs");

    let old_key = std::fs::read(daemon.data_dir().join("master.key")).unwrap();
    let rotate = std::process::Command::new(common::FLUXD)
        .args(["--data-dir", daemon.data_dir().to_str().unwrap(), "rotate-key"])
        .output()
        .unwrap();
    assert!(rotate.status.success(), "{}", String::from_utf8_lossy(&rotate.stderr));
    assert_ne!(std::fs::read(daemon.data_dir().join("master.key")).unwrap(), old_key);
    assert_eq!(common::mode(&daemon.data_dir().join("master.key")), 0o600);
    daemon.launch();
    assert_eq!(
        daemon.ctl_json(&["webhook", "reveal-secret", &id])["secret"],
        secret.as_str()
    );
}

#[test]
fn deleted_endpoints_stop_their_actor_and_status_counts_them() {
    let daemon = daemon();
    let a = create(&daemon, "http://127.0.0.1:9/a", &[]);
    create(&daemon, "http://127.0.0.1:9/b", &[]);
    let status = daemon.ctl_json(&["status"]);
    assert_eq!(status["webhookEndpoints"], 2);
    assert_eq!(status["liveActors"]["webhookEndpoints"], 2);
    daemon.ctl_json(&["webhook", "delete", a["id"].as_str().unwrap()]);
    let status = daemon.ctl_json(&["status"]);
    assert_eq!(status["webhookEndpoints"], 1);
    assert_eq!(status["liveActors"]["webhookEndpoints"], 1);
}

#[test]
fn ordered_endpoints_deliver_one_at_a_time_in_event_order() {
    let daemon = daemon();
    let receiver = Receiver::start();
    receiver.set_reply(Reply::status(500));
    let created = create(&daemon, &receiver.url("/fifo"), &["--ordered", "--retry-schedule", "1"]);
    let id = created["id"].as_str().unwrap();
    let events: Vec<String> = (0..3)
        .map(|_| test_event(&daemon, id)["eventId"].as_str().unwrap().to_owned())
        .collect();
    let got = receiver.wait_for("/fifo", 6, Duration::from_secs(15));
    let order: Vec<String> = got.iter().map(|r| r.header("webhook-id")).collect();
    let expected: Vec<String> = events.iter().flat_map(|e| [e.clone(), e.clone()]).collect();
    assert_eq!(
        order, expected,
        "each event's attempts finish before the next event starts"
    );
}
