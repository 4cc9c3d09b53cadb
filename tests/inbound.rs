//! Inbound provider webhooks end to end: the sandbox's providers send their real, signed
//! webhooks to fluxd's URLs, fluxd verifies them, accepts them durably and syncs the changed
//! records; forged, stale, oversized and malformed requests change nothing.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{
    StandaloneSandbox, TestDaemon, http_get_json, http_patch_json, http_post_json, http_post_raw, http_put_json,
    metric, wait_for,
};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const HUBSPOT_SECRET: &str = "sandbox-hubspot-secret";
const JOBBER_SECRET: &str = "sandbox-jobber-secret";

fn sandbox_daemon() -> TestDaemon {
    TestDaemon::start(&["--sandbox", "--sandbox-records", "20"])
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}

fn contacts_to_clients(hubspot: &str, jobber: &str, direction: &str) -> String {
    format!(
        "name: contacts and clients\nsource: {{connection: {hubspot}, object: contacts}}\ntarget: {{connection: {jobber}, object: clients}}\ndirection: {direction}\nfieldPairs:\n  - {{sourceField: firstname, targetField: firstName}}\n  - {{sourceField: lastname, targetField: lastName}}\n  - {{sourceField: email, targetField: email}}\nmatchKey: email\n"
    )
}

/// The HubSpot contact a Jobber client came from, by email.
fn first_contact(base: &str) -> Value {
    http_get_json(&format!("{base}/_control/hubspot/records/contacts?limit=1"))["records"][0].clone()
}

fn jobber_client_by_email(base: &str, email: &str) -> Option<Value> {
    let clients = http_get_json(&format!("{base}/_control/jobber/records/clients?limit=1000"));
    clients["records"]
        .as_array()?
        .iter()
        .find(|c| c["fields"]["emails"].to_string().contains(email))
        .cloned()
}

fn sign_v3(url: &str, body: &str, timestamp: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(HUBSPOT_SECRET.as_bytes()).unwrap();
    for part in ["POST", url, body, timestamp] {
        mac.update(part.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A HubSpot batch of one propertyChange of contact `object_id` in portal `portal`.
fn hubspot_batch(portal: u64, object_id: &str, event_id: u64) -> String {
    json!([{
        "eventId": event_id, "subscriptionId": 1, "portalId": portal, "appId": 1234567,
        "occurredAt": now_ms(), "subscriptionType": "contact.propertyChange", "attemptNumber": 0,
        "objectId": object_id.parse::<u64>().unwrap(), "propertyName": "firstname", "propertyValue": "x",
        "changeSource": "CRM_UI",
    }])
    .to_string()
}

/// POSTs `body` to `url` signed with HubSpot's v3 scheme at `timestamp`.
fn post_hubspot(url: &str, body: &str, timestamp: i64, secret_ok: bool) -> (u16, String) {
    let timestamp = timestamp.to_string();
    let mut signature = sign_v3(url, body, &timestamp);
    if !secret_ok {
        signature = sign_v3(url, &format!("{body} "), &timestamp);
    }
    http_post_raw(
        url,
        &[
            ("content-type", "application/json"),
            ("x-hubspot-signature-v3", &signature),
            ("x-hubspot-request-timestamp", &timestamp),
        ],
        body.as_bytes().to_vec(),
    )
}

fn webhook_jobs(daemon: &TestDaemon, mapping: &str) -> Vec<Value> {
    daemon
        .ctl_json(&["sync", "list", "--mapping", mapping])
        .as_array()
        .unwrap()
        .iter()
        .filter(|job| job["trigger"] == "webhook")
        .cloned()
        .collect()
}

/// A daemon with HubSpot and Jobber connected, a mapping between contacts and clients in
/// `direction`, its first sync done.
fn connected(direction: &str) -> (TestDaemon, String, String, String) {
    let daemon = sandbox_daemon();
    let hubspot = id(&daemon.connect("hubspot"));
    let jobber = id(&daemon.connect("jobber"));
    let mapping = daemon.create_mapping(&contacts_to_clients(&hubspot, &jobber, direction));
    let first = daemon.ctl_json(&["sync", "run", &mapping, "--wait", "--yes"]);
    assert_eq!(first["status"], "completed", "{first}");
    (daemon, hubspot, jobber, mapping)
}

#[test]
fn a_change_in_hubspot_reaches_jobber_through_hubspots_signed_webhook() {
    let (daemon, hubspot, _, mapping) = connected("source_to_target");
    let base = daemon.sandbox_url();
    let webhooks = daemon.ctl_json(&["connection", "webhooks", &hubspot]);
    let url = webhooks["url"].as_str().expect("url").to_owned();
    assert!(
        url.starts_with(&format!("http://{}/webhooks/hubspot/", daemon.http)),
        "{webhooks}"
    );
    assert!(
        webhooks["instructions"].as_str().unwrap().contains("target URL"),
        "{webhooks}"
    );
    // What a person does in HubSpot's developer portal: the app's target URL.
    assert_eq!(
        http_put_json(
            &format!("{base}/_control/hubspot/webhooks"),
            json!({ "targetUrl": url })
        ),
        200
    );
    let contact = first_contact(&base);
    let email = contact["fields"]["email"].as_str().unwrap().to_owned();
    assert!(
        jobber_client_by_email(&base, &email).is_some(),
        "the first sync linked it"
    );
    let url_patch = format!("{base}/_control/hubspot/records/contacts/{}", id(&contact));
    assert_eq!(http_patch_json(&url_patch, json!({ "firstname": "Realtime" })), 200);
    // No schedule runs: only the webhook can bring the change over.
    let client = wait_for(Duration::from_secs(15), || {
        jobber_client_by_email(&base, &email).filter(|c| c["fields"]["firstName"] == "Realtime")
    });
    assert!(client.is_some(), "the change reached Jobber: {}", daemon.log());
    let jobs = webhook_jobs(&daemon, &mapping);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["status"], "completed");
    assert_eq!(jobs[0]["stats"]["updated"], 1, "{jobs:?}");
    let delivered = http_get_json(&format!("{base}/_control/hubspot/webhooks"));
    assert_eq!(delivered["delivered"], 1, "{delivered}");
    assert_eq!(metric(&daemon, "fluxd_inbound_records_synced", &[]), 1.0);
}

#[test]
fn forged_stale_oversized_and_malformed_webhooks_are_refused_and_store_nothing() {
    let (daemon, hubspot, _, mapping) = connected("source_to_target");
    let url = daemon.ctl_json(&["connection", "webhooks", &hubspot])["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let contact = id(&first_contact(&daemon.sandbox_url()));
    let portal: u64 = 62515;
    let body = hubspot_batch(portal, &contact, 1);
    let now = now_ms();
    let huge = format!("[{}]", " ".repeat(1024 * 1024 + 1));
    let too_many = format!(
        "[{}]",
        vec![hubspot_batch(portal, &contact, 2).trim_matches(['[', ']']).to_owned(); 101].join(",")
    );
    let other_portal = hubspot_batch(99, &contact, 3);
    let cases: Vec<(&str, u16, (u16, String))> = vec![
        ("wrong secret", 401, post_hubspot(&url, &body, now, false)),
        ("stale timestamp", 401, post_hubspot(&url, &body, now - 301_000, true)),
        ("no signature", 401, http_post_raw(&url, &[], body.clone().into_bytes())),
        ("tampered body", 401, {
            let timestamp = now.to_string();
            let signature = sign_v3(&url, &body, &timestamp);
            http_post_raw(
                &url,
                &[
                    ("x-hubspot-signature-v3", &signature),
                    ("x-hubspot-request-timestamp", &timestamp),
                ],
                body.replace("firstname", "lastname").into_bytes(),
            )
        }),
        ("unknown token", 404, post_hubspot(&format!("{url}x"), &body, now, true)),
        ("over 1 MiB", 413, post_hubspot(&url, &huge, now, true)),
        ("101 events", 413, post_hubspot(&url, &too_many, now, true)),
        ("not a batch", 400, post_hubspot(&url, "{\"objectId\": 1}", now, true)),
        ("another portal", 400, post_hubspot(&url, &other_portal, now, true)),
    ];
    for (case, expected, (status, answer)) in &cases {
        assert_eq!(status, expected, "{case}: {answer}");
    }
    assert!(cases[4].2.1.contains("unknown webhook URL"));
    assert!(cases[8].2.1.contains("portalId"), "{}", cases[8].2.1);
    let refused = metric(&daemon, "fluxd_inbound_refused_total", &["provider=\"hubspot\""]);
    assert_eq!(refused, cases.len() as f64);
    assert_eq!(
        metric(&daemon, "fluxd_inbound_events_total", &[]),
        0.0,
        "nothing accepted"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(webhook_jobs(&daemon, &mapping).is_empty(), "nothing synced");
}

#[test]
fn the_same_hubspot_event_delivered_twice_syncs_once() {
    let (daemon, hubspot, _, mapping) = connected("source_to_target");
    let url = daemon.ctl_json(&["connection", "webhooks", &hubspot])["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let contact = id(&first_contact(&daemon.sandbox_url()));
    let body = hubspot_batch(62515, &contact, 7);
    let (first, answer) = post_hubspot(&url, &body, now_ms(), true);
    assert_eq!(
        (first, answer.as_str()),
        (200, r#"{"duplicates":0,"ignored":0,"queued":1}"#)
    );
    let job = wait_for(Duration::from_secs(10), || {
        webhook_jobs(&daemon, &mapping)
            .into_iter()
            .find(|job| job["status"] == "completed")
    })
    .expect("a record-level sync ran");
    assert_eq!(job["stats"]["fetched"], 1, "{job}");
    // HubSpot redelivers with a higher attemptNumber and a fresh signature.
    let again = body.replace("\"attemptNumber\":0", "\"attemptNumber\":1");
    let (second, answer) = post_hubspot(&url, &again, now_ms(), true);
    assert_eq!(
        (second, answer.as_str()),
        (200, r#"{"duplicates":1,"ignored":0,"queued":0}"#)
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(webhook_jobs(&daemon, &mapping).len(), 1);
    assert_eq!(
        metric(&daemon, "fluxd_inbound_events_total", &["outcome=\"duplicate\""]),
        1.0
    );
}

#[test]
fn a_two_way_mapping_writes_each_side_once_per_change() {
    let (daemon, hubspot, jobber, mapping) = connected("bidirectional");
    let base = daemon.sandbox_url();
    for (connection, provider, key) in [(&hubspot, "hubspot", "targetUrl"), (&jobber, "jobber", "url")] {
        let app_url = daemon.ctl_json(&["connection", "webhooks", connection])["appUrl"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            http_put_json(&format!("{base}/_control/{provider}/webhooks"), json!({ key: app_url })),
            200
        );
    }
    let updates = |provider: &str, object: &str| {
        http_get_json(&format!("{base}/_control/{provider}/records-stats"))["objects"][object]["updates"]
            .as_u64()
            .unwrap()
    };
    let (hubspot_before, jobber_before) = (updates("hubspot", "contacts"), updates("jobber", "clients"));
    let contact = first_contact(&base);
    let email = contact["fields"]["email"].as_str().unwrap().to_owned();
    let url = format!("{base}/_control/hubspot/records/contacts/{}", id(&contact));
    assert_eq!(http_patch_json(&url, json!({ "lastname": "Pingpong" })), 200);
    assert!(
        wait_for(Duration::from_secs(15), || {
            jobber_client_by_email(&base, &email).filter(|c| c["fields"]["lastName"] == "Pingpong")
        })
        .is_some(),
        "{}",
        daemon.log()
    );
    // Jobber reports fluxd's own write back: that echo must write nothing.
    let echoed = wait_for(Duration::from_secs(15), || {
        let jobs = webhook_jobs(&daemon, &mapping);
        (jobs.len() >= 2 && jobs.iter().all(|j| j["status"] == "completed")).then_some(jobs)
    })
    .expect("the echo was synced");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(webhook_jobs(&daemon, &mapping).len(), 2, "{echoed:?}");
    assert_eq!(updates("jobber", "clients") - jobber_before, 1, "one write to Jobber");
    assert_eq!(
        updates("hubspot", "contacts") - hubspot_before,
        0,
        "none back to HubSpot"
    );
}

/// Each provider's scheme, at each connection's own URL.
#[test]
fn each_provider_verifies_its_own_way() {
    let daemon = sandbox_daemon();
    let base = daemon.sandbox_url();
    let connections: Vec<(String, Value)> = ["jobber", "pipedrive", "salesforce"]
        .iter()
        .map(|provider| {
            let connection = id(&daemon.connect(provider));
            let webhooks = daemon.ctl_json(&["connection", "webhooks", &connection]);
            (provider.to_string(), webhooks)
        })
        .collect();
    // Jobber: base64 HMAC of the body with the client secret.
    let jobber = &connections[0].1;
    let body = json!({ "data": { "webHookEvent": { "topic": "CLIENT_UPDATE", "appId": "a",
        "accountId": "Z2lkOi8vSm9iYmVyL0FjY291bnQvMQ==", "itemId": "Z2lkOi8vSm9iYmVyL0NsaWVudC8x",
        "occurredAt": "2026-01-01T00:00:00+00:00" } } })
    .to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(JOBBER_SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let url = jobber["url"].as_str().unwrap();
    let post =
        |url: &str, headers: &[(&str, &str)], body: &str| http_post_raw(url, headers, body.as_bytes().to_vec()).0;
    let (status, answer) = http_post_raw(url, &[("x-jobber-hmac-sha256", &signature)], body.clone().into_bytes());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        post(
            url,
            &[("x-jobber-hmac-sha256", &signature)],
            &body.replace("UPDATE", "CREATE")
        ),
        401
    );
    assert_eq!(post(url, &[("x-jobber-hmac-sha256", "AAAA")], &body), 401);
    // Pipedrive: the HTTP Basic credentials fluxd generated for the connection.
    let pipedrive = &connections[1].1;
    assert_eq!(pipedrive["basicAuthUser"], "fluxcascade", "{pipedrive}");
    let credentials = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "fluxcascade:{}",
            pipedrive["basicAuthPassword"].as_str().unwrap()
        ))
    );
    let event = json!({ "meta": { "action": "change", "entity": "person", "company_id": "1001", "entity_id": "1",
        "id": "6b0fa2c4-0000-4000-8000-000000000001", "timestamp": "2026-01-01T00:00:00.000Z", "version": "2.0", "attempt": 1 },
        "data": { "id": 1 }, "previous": {} })
    .to_string();
    let url = pipedrive["url"].as_str().unwrap();
    assert_eq!(post(url, &[("authorization", &credentials)], &event), 200);
    assert_eq!(
        post(url, &[("authorization", "Basic Zmx1eGNhc2NhZGU6d3Jvbmc=")], &event),
        401
    );
    assert_eq!(post(url, &[], &event), 401);
    // Salesforce: unsigned, checked by the URL token and OrganizationId; acknowledged in SOAP.
    let salesforce = &connections[2].1;
    assert!(salesforce["appUrl"].is_null(), "{salesforce}");
    let message = |org: &str| {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>{org}</OrganizationId><ActionId>04k5e0000000001</ActionId><Notification><Id>04l5e0000000001</Id><sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>0035e0000000001AAA</sf:Id></sObject></Notification></notifications></soapenv:Body></soapenv:Envelope>"#
        )
    };
    let url = salesforce["url"].as_str().unwrap();
    let (status, ack) = http_post_raw(
        url,
        &[("content-type", "text/xml")],
        message("00D5e0000000001").into_bytes(),
    );
    assert_eq!(status, 200, "{ack}");
    assert!(
        ack.contains("<Ack>true</Ack>") && ack.contains("notificationsResponse"),
        "{ack}"
    );
    assert_eq!(post(url, &[], &message("00D5e0000000999")), 401);
    assert_eq!(
        post(
            &format!("http://{}/webhooks/salesforce", daemon.http),
            &[],
            &message("00D5e0000000001")
        ),
        404
    );
    let _ = base;
}

#[test]
fn pipedrive_webhooks_are_subscribed_once_and_removed_with_the_connection() {
    let daemon = sandbox_daemon();
    let base = daemon.sandbox_url();
    let pipedrive = id(&daemon.connect("pipedrive"));
    let registered = || {
        http_get_json(&format!("{base}/_control/pipedrive/webhooks"))["registrations"]
            .as_array()
            .unwrap()
            .len()
    };
    let listed = daemon.ctl_json(&["connection", "webhooks", &pipedrive]);
    assert_eq!(listed["subscriptions"], json!([]), "{listed}");
    let first = daemon.ctl_json(&["connection", "webhooks", &pipedrive, "--subscribe"]);
    let events: Vec<&str> = first["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["*.person", "*.organization", "*.deal"]);
    let again = daemon.ctl_json(&["connection", "webhooks", &pipedrive, "--subscribe"]);
    assert_eq!(again["subscriptions"], first["subscriptions"], "no duplicates");
    assert_eq!(registered(), 3);
    let hook = &http_get_json(&format!("{base}/_control/pipedrive/webhooks"))["registrations"][0];
    assert_eq!(hook["subscription_url"], first["url"]);
    assert_eq!(hook["http_auth_user"], "fluxcascade");
    assert_eq!(hook["version"], "2.0");
    // HubSpot has no API for one connection's subscriptions: the refusal says what to do.
    let hubspot = id(&daemon.connect("hubspot"));
    let refused = daemon.ctl(&["connection", "webhooks", &hubspot, "--subscribe"]);
    assert!(!refused.success());
    assert!(refused.stderr().contains("target URL"), "{}", refused.stderr());
    daemon.ctl_json(&["connection", "delete", &pipedrive]);
    assert_eq!(registered(), 0, "removed with the connection");
}

#[test]
fn a_webhook_accepted_before_a_crash_is_synced_after_the_restart() {
    let sandbox = StandaloneSandbox::start(20);
    let base = sandbox.base.clone();
    let dir = tempfile::tempdir().unwrap();
    let config = sandbox.config_file(dir.path());
    let mut daemon = TestDaemon::start(&["--config", config.to_str().unwrap()]);
    let hubspot = id(&daemon.connect("hubspot"));
    let jobber = id(&daemon.connect("jobber"));
    let mapping = daemon.create_mapping(&contacts_to_clients(&hubspot, &jobber, "source_to_target"));
    let first = daemon.ctl_json(&["sync", "run", &mapping, "--wait", "--yes"]);
    assert_eq!(first["status"], "completed", "{first}");
    // HubSpot's access tokens expire and its token endpoint hangs: a full sync of the mapping
    // starts and stays running (refreshing), so the webhook's change waits its turn.
    let settings = format!("{base}/_control/hubspot/settings");
    assert_eq!(http_post_json(&settings, json!({ "token_delay_ms": 600_000 })), 200);
    assert_eq!(
        http_post_json(&format!("{base}/_control/hubspot/expire-access-tokens"), json!({})),
        200
    );
    let busy = daemon.ctl_json(&["sync", "run", &mapping, "--full"]);
    assert!(busy["status"] == "pending" || busy["status"] == "running", "{busy}");
    let contact = first_contact(&base);
    let email = contact["fields"]["email"].as_str().unwrap().to_owned();
    let url = format!("{base}/_control/hubspot/records/contacts/{}", id(&contact));
    assert_eq!(http_patch_json(&url, json!({ "firstname": "Survivor" })), 200);
    let hook = daemon.ctl_json(&["connection", "webhooks", &hubspot])["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, answer) = post_hubspot(&hook, &hubspot_batch(62515, &id(&contact), 11), now_ms(), true);
    assert_eq!(
        (status, answer.as_str()),
        (200, r#"{"duplicates":0,"ignored":0,"queued":1}"#)
    );
    let jobs = daemon.ctl_json(&["sync", "list", "--mapping", &mapping]);
    assert!(
        webhook_jobs(&daemon, &mapping).is_empty(),
        "the change waits for the running sync: {jobs}"
    );
    daemon.kill9();
    assert_eq!(http_post_json(&settings, json!({ "token_delay_ms": 0 })), 200);
    daemon.launch();
    let job = wait_for(Duration::from_secs(30), || {
        webhook_jobs(&daemon, &mapping)
            .into_iter()
            .find(|job| job["status"] == "completed")
    })
    .unwrap_or_else(|| panic!("the accepted change was synced after the restart: {}", daemon.log()));
    assert_eq!(job["stats"]["fetched"], 1, "{job}");
    let client = jobber_client_by_email(&base, &email).unwrap();
    assert_eq!(client["fields"]["firstName"], "Survivor");
}
