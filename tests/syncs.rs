//! Syncs end to end through the real daemon, fluxctl and the sandbox's record APIs.

mod common;

use std::time::Duration;

use common::receiver::{Receiver, verify_standard};
use common::{StandaloneSandbox, TestDaemon, http_get_json, http_post_json, wait_for};
use serde_json::{Value, json};

fn sandbox(records: usize, extra: &[&str]) -> TestDaemon {
    let count = records.to_string();
    let mut args = vec![
        "--sandbox",
        "--sandbox-records",
        count.as_str(),
        "--allow-private-webhooks",
    ];
    args.extend_from_slice(extra);
    TestDaemon::start(&args)
}

fn write(daemon: &TestDaemon, name: &str, text: &str) -> String {
    let path = daemon.data_dir().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Runs a sync to its end; fluxctl's exit status must tell its outcome (0 completed,
/// 3 partial, 4 failed).
fn run(daemon: &TestDaemon, mapping: &str) -> Value {
    let out = daemon.ctl(&["sync", "run", mapping, "--wait", "--yes", "-o", "json"]);
    let job: Value = serde_json::from_str(&out.stdout())
        .unwrap_or_else(|e| panic!("sync run printed no job ({e}): {} {}", out.stdout(), out.stderr()));
    let expected = match job["status"].as_str() {
        Some("completed") => 0,
        Some("partial") => 3,
        Some("failed") => 4,
        _ => 5,
    };
    assert_eq!(out.0.status.code(), Some(expected), "{job} {}", out.stderr());
    job
}

/// Sets HubSpot's search index delay (a few seconds by default): tests that change a contact
/// and sync at once set it to 0, by name.
fn hubspot_index_delay(daemon: &TestDaemon, ms: u64) {
    let url = format!("{}/_control/hubspot/limits", daemon.sandbox_url());
    assert_eq!(http_post_json(&url, json!({ "index_delay_ms": ms })), 200);
}

fn stats(daemon: &TestDaemon, provider: &str) -> Value {
    http_get_json(&format!("{}/_control/{provider}/records-stats", daemon.sandbox_url()))
}

fn object_count(daemon: &TestDaemon, provider: &str, object: &str) -> u64 {
    stats(daemon, provider)["objects"][object]["count"]
        .as_u64()
        .unwrap_or(0)
}

fn hubspot_to_jobber(hubspot: &str, jobber: &str) -> String {
    format!(
        r#"name: HubSpot contacts to Jobber clients
source: {{ connection: {hubspot}, object: contacts }}
target: {{ connection: {jobber}, object: clients }}
fieldPairs:
  - {{ sourceField: firstname, targetField: firstName }}
  - {{ sourceField: lastname, targetField: lastName }}
  - {{ sourceField: email, targetField: email, transform: "trim|lowercase" }}
  - {{ sourceField: phone, targetField: phone, transform: phone_e164 }}
  - {{ sourceField: "address,city", targetField: billingAddress.street1, transform: 'concatenate(sep=", ")' }}
matchKey: email
defaultRegion: US
"#
    )
}

#[test]
fn a_sync_creates_then_a_rerun_changes_nothing() {
    let daemon = sandbox(50, &[]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let before = object_count(&daemon, "jobber", "clients");
    let mapping = daemon.create_mapping(&hubspot_to_jobber(&hubspot, &jobber));
    let first = run(&daemon, &mapping);
    assert_eq!(first["status"], "completed", "{first}");
    assert_eq!(first["stats"]["failed"], 0);
    assert!(first["stats"]["created"].as_u64().unwrap() > 0, "{first}");
    assert_eq!(first["stats"]["fetched"], 50);
    let created = first["stats"]["created"].as_u64().unwrap();
    assert_eq!(object_count(&daemon, "jobber", "clients"), before + created);

    let second = run(&daemon, &mapping);
    assert_eq!(second["status"], "completed");
    assert_eq!(second["stats"]["created"], 0, "{second}");
    assert_eq!(second["stats"]["updated"], 0, "{second}");
    let full = daemon.ctl_json(&["sync", "run", &mapping, "--wait", "--full"]);
    assert_eq!(
        (full["stats"]["created"].as_u64(), full["stats"]["updated"].as_u64()),
        (Some(0), Some(0)),
        "{full}"
    );
    assert_eq!(full["stats"]["unchanged"], 50);
    assert_eq!(
        object_count(&daemon, "jobber", "clients"),
        before + created,
        "no duplicates"
    );

    let jobs = daemon.ctl_json(&["sync", "list", "--mapping", &mapping]);
    assert_eq!(jobs.as_array().unwrap().len(), 3);
    assert_eq!(
        daemon.ctl_json(&["sync", "get", first["id"].as_str().unwrap()])["status"],
        "completed"
    );
}

/// Each provider appears once as source and once as target.
#[test]
fn every_provider_syncs_as_source_and_as_target() {
    let daemon = sandbox(30, &[]);
    let ids: Vec<String> = ["hubspot", "salesforce", "pipedrive", "jobber"]
        .iter()
        .map(|p| daemon.connect(p)["id"].as_str().unwrap().to_owned())
        .collect();
    let (hubspot, salesforce, pipedrive, jobber) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let mappings = [
        format!(
            "name: hs-sf\nsource: {{connection: {hubspot}, object: contacts}}\ntarget: {{connection: {salesforce}, object: Contact}}\nfieldPairs:\n  - {{sourceField: firstname, targetField: FirstName}}\n  - {{sourceField: lastname, targetField: LastName, required: true}}\n  - {{sourceField: email, targetField: Email, transform: lowercase}}\n  - {{sourceField: phone, targetField: Phone, transform: phone_e164}}\ndefaultRegion: US\n"
        ),
        format!(
            "name: sf-pd\nsource: {{connection: {salesforce}, object: Contact}}\ntarget: {{connection: {pipedrive}, object: persons}}\nfieldPairs:\n  - {{sourceField: \"FirstName,LastName\", targetField: name, transform: concatenate}}\n  - {{sourceField: Email, targetField: email}}\n  - {{sourceField: Phone, targetField: phone}}\n"
        ),
        format!(
            "name: pd-jb\nsource: {{connection: {pipedrive}, object: persons}}\ntarget: {{connection: {jobber}, object: clients}}\nfieldPairs:\n  - {{sourceField: name, targetField: firstName, transform: \"split_name(part=first)\"}}\n  - {{sourceField: name, targetField: lastName, transform: \"split_name(part=last)\"}}\n  - {{sourceField: email, targetField: email}}\n"
        ),
        format!(
            "name: jb-hs\nsource: {{connection: {jobber}, object: clients}}\ntarget: {{connection: {hubspot}, object: contacts}}\nfieldPairs:\n  - {{sourceField: firstName, targetField: firstname}}\n  - {{sourceField: lastName, targetField: lastname}}\n  - {{sourceField: email, targetField: email}}\n  - {{sourceField: billingAddress.city, targetField: city}}\n"
        ),
    ];
    for text in mappings {
        let mapping = daemon.create_mapping(&text);
        let first = run(&daemon, &mapping);
        assert_eq!(first["status"], "completed", "{text}\n{first}");
        assert_eq!(first["stats"]["failed"], 0, "{first}");
        let fetched = first["stats"]["fetched"].as_u64().unwrap();
        let written = first["stats"]["created"].as_u64().unwrap() + first["stats"]["updated"].as_u64().unwrap();
        assert!(fetched >= 30 && written >= 30, "{text}\n{first}");
        let again = run(&daemon, &mapping);
        assert_eq!(
            (again["stats"]["created"].as_u64(), again["stats"]["updated"].as_u64()),
            (Some(0), Some(0)),
            "{text}\n{again}"
        );
    }
}

#[test]
fn a_killed_sync_resumes_after_restart_without_duplicates_or_gaps() {
    interrupted_sync_resumes(|daemon| daemon.kill9());
}

#[test]
fn a_sync_stopped_by_sigterm_stays_resumable_and_resumes_at_the_next_start() {
    interrupted_sync_resumes(|daemon| {
        let (status, took) = daemon.terminate();
        assert!(status.success(), "fluxd exited with {status}");
        assert!(took < Duration::from_secs(10), "stopping took {took:?}");
    });
}

/// Starts a first sync of 1500 contacts into Jobber, interrupts fluxd with `stop` once 200
/// were created, starts it again: the same job resumes and completes, every contact is in
/// Jobber exactly once, and a rerun changes nothing.
fn interrupted_sync_resumes(stop: impl FnOnce(&mut TestDaemon)) {
    let sandbox = StandaloneSandbox::start(1500);
    let config_dir = tempfile::tempdir().unwrap();
    let config = sandbox.config_file(config_dir.path());
    let mut daemon = TestDaemon::start(&["--config", config.to_str().unwrap()]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let count = |provider: &str, object: &str| {
        http_get_json(&format!("{}/_control/{provider}/records-stats", sandbox.base))["objects"][object]["count"]
            .as_u64()
            .unwrap()
    };
    let before = count("jobber", "clients");
    let contacts = count("hubspot", "contacts");
    let mapping = daemon.create_mapping(&hubspot_to_jobber(&hubspot, &jobber));
    let job = daemon.ctl_json(&["sync", "run", &mapping, "--yes"]);
    let job_id = job["id"].as_str().unwrap().to_owned();
    wait_for(Duration::from_secs(60), || {
        let current = daemon.ctl_json(&["sync", "get", &job_id]);
        assert!(
            current["status"] == "running" || current["status"] == "pending",
            "{current}"
        );
        (current["stats"]["created"].as_u64().unwrap_or(0) >= 200).then_some(())
    })
    .expect("the sync made progress");
    stop(&mut daemon);
    let created_before_stop = count("jobber", "clients") - before;
    assert!(
        created_before_stop < contacts,
        "the stop landed mid-sync ({created_before_stop} of {contacts})"
    );

    daemon.launch();
    let finished = wait_for(Duration::from_secs(120), || {
        let current = daemon.ctl_json(&["sync", "get", &job_id]);
        (current["status"] != "running" && current["status"] != "pending").then_some(current)
    })
    .expect("the resumed sync finished");
    assert_eq!(finished["status"], "completed", "{finished}");
    let records = |provider: &str, object: &str| {
        let url = format!("{}/_control/{provider}/records/{object}?limit=100000", sandbox.base);
        http_get_json(&url)["records"].as_array().unwrap().clone()
    };
    let mut client_emails = std::collections::HashMap::new();
    for client in records("jobber", "clients") {
        for email in client["fields"]["emails"].as_array().unwrap() {
            *client_emails
                .entry(email["address"].as_str().unwrap().to_lowercase())
                .or_insert(0) += 1;
        }
    }
    let contact_records = records("hubspot", "contacts");
    assert_eq!(contact_records.len() as u64, contacts);
    for contact in contact_records {
        let email = contact["fields"]["email"].as_str().unwrap().to_lowercase();
        assert_eq!(
            client_emails.get(&email),
            Some(&1),
            "{email} must be in Jobber exactly once"
        );
    }
    assert!(count("jobber", "clients") > before, "the sync created clients");
    let again = run(&daemon, &mapping);
    assert_eq!(
        (again["stats"]["created"].as_u64(), again["stats"]["updated"].as_u64()),
        (Some(0), Some(0)),
        "{again}"
    );
}

#[test]
fn a_two_way_mapping_syncs_both_ways_and_then_stays_quiet() {
    let daemon = sandbox(40, &[]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let pipedrive = daemon.connect("pipedrive")["id"].as_str().unwrap().to_owned();
    let text = format!(
        "name: two-way\nsource: {{connection: {hubspot}, object: contacts}}\ntarget: {{connection: {pipedrive}, object: persons}}\ndirection: bidirectional\nfieldPairs:\n  - {{sourceField: \"firstname,lastname\", targetField: name, transform: concatenate, reverseTransform: split_name}}\n  - {{sourceField: email, targetField: email, transform: lowercase}}\n  - {{sourceField: city, targetField: job_title}}\n"
    );
    let mapping = daemon.create_mapping(&text);
    let first = run(&daemon, &mapping);
    assert_eq!(first["status"], "completed", "{first}");
    for round in 0..10 {
        let quiet = run(&daemon, &mapping);
        assert_eq!(
            (quiet["stats"]["created"].as_u64(), quiet["stats"]["updated"].as_u64()),
            (Some(0), Some(0)),
            "round {round}: {quiet}"
        );
    }
    let base = daemon.sandbox_url();
    hubspot_index_delay(&daemon, 0);
    let contacts = http_get_json(&format!("{base}/_control/hubspot/records/contacts?limit=1"));
    let contact = &contacts["records"][0];
    let contact_id = contact["id"].as_str().unwrap();
    let status = common::http_patch_json(
        &format!("{base}/_control/hubspot/records/contacts/{contact_id}"),
        json!({"city": "Reykjavik"}),
    );
    assert_eq!(status, 200);
    let forward = run(&daemon, &mapping);
    assert_eq!(forward["stats"]["updated"], 1, "{forward}");
    let persons = http_get_json(&format!("{base}/_control/pipedrive/records/persons?limit=1000"));
    let person = persons["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["fields"]["job_title"] == "Reykjavik")
        .expect("the change reached Pipedrive")
        .clone();
    let status = common::http_patch_json(
        &format!(
            "{base}/_control/pipedrive/records/persons/{}",
            person["id"].as_str().unwrap()
        ),
        json!({"job_title": "Oslo"}),
    );
    assert_eq!(status, 200);
    let backward = run(&daemon, &mapping);
    assert_eq!(backward["stats"]["updated"], 1, "{backward}");
    let contact = http_get_json(&format!("{base}/_control/hubspot/records/contacts/{contact_id}"));
    let city = contact["fields"]["city"].as_str().or(contact["city"].as_str());
    assert_eq!(city, Some("Oslo"), "{contact}");
    for round in 0..3 {
        let quiet = run(&daemon, &mapping);
        assert_eq!(
            (quiet["stats"]["created"].as_u64(), quiet["stats"]["updated"].as_u64()),
            (Some(0), Some(0)),
            "after: round {round}: {quiet}"
        );
    }
}

#[test]
fn rate_limited_providers_slow_the_sync_down_but_it_completes() {
    let daemon = sandbox(60, &[]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let base = daemon.sandbox_url();
    let (max, window_ms) = (3u64, 1000u64);
    assert_eq!(
        http_post_json(
            &format!("{base}/_control/hubspot/limits"),
            json!({"requests": {"enabled": true, "max": max, "window_ms": window_ms}})
        ),
        200
    );
    let mapping = daemon.create_mapping(&hubspot_to_jobber(&hubspot, &jobber));
    let reverse = format!(
        "name: back\nsource: {{connection: {jobber}, object: clients}}\ntarget: {{connection: {hubspot}, object: contacts}}\nfieldPairs:\n  - {{sourceField: firstName, targetField: firstname}}\n  - {{sourceField: email, targetField: email}}\nmatchKey: email\n"
    );
    let started = std::time::Instant::now();
    let admitted = || {
        let stats = stats(&daemon, "hubspot");
        stats["requests"].as_u64().unwrap() - stats["rate_limited"].as_u64().unwrap()
    };
    let requests_before = admitted();
    let first = run(&daemon, &mapping);
    assert_eq!(first["status"], "completed", "{first}");
    let back = daemon.create_mapping(&reverse);
    let job = run(&daemon, &back);
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["stats"]["failed"], 0);
    // Whether fluxd waited on the rate-limit headers or on 429s, HubSpot never served more
    // than `max` requests a window: the requests it answered took at least this long.
    let answered = admitted() - requests_before;
    let windows = answered.div_ceil(max).saturating_sub(1);
    assert!(
        answered > max,
        "the syncs needed more than one window ({answered} requests)"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(windows * window_ms),
        "{answered} HubSpot requests in {:?}",
        started.elapsed()
    );
}

#[test]
fn sync_webhooks_have_the_seed_shape_and_verify() {
    let daemon = sandbox(10, &[]);
    let receiver = Receiver::start();
    let endpoint = daemon.ctl_json(&[
        "webhook",
        "create",
        "--url",
        &receiver.url("/hook"),
        "--events",
        "sync.*",
    ]);
    let secret = endpoint["secret"].as_str().unwrap();
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let mapping = daemon.create_mapping(&hubspot_to_jobber(&hubspot, &jobber));
    let job = run(&daemon, &mapping);
    let got = receiver.wait_for("/hook", 2, Duration::from_secs(10));
    let started = got[0].json();
    let completed = got[1].json();
    assert_eq!(started["eventType"], "sync.started");
    assert_eq!(completed["eventType"], "sync.completed");
    for (request, body) in got.iter().zip([&started, &completed]) {
        assert!(verify_standard(secret, request));
        let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["data", "eventType", "metadata", "timestamp"]);
        let data_keys: Vec<&str> = body["data"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(data_keys, ["jobId", "mappingId", "stats", "status"]);
        let stat_keys: Vec<&str> = body["data"]["stats"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(stat_keys, ["created", "failed", "fetched", "updated"]);
        assert_eq!(body["data"]["jobId"], job["id"]);
        assert!(
            body["metadata"]["fluxcascadeEventId"]
                .as_str()
                .unwrap()
                .starts_with("evt_")
        );
    }
    assert_eq!(completed["data"]["status"], "completed");
    assert_eq!(completed["data"]["stats"]["created"], job["stats"]["created"]);
}

#[test]
fn bad_records_fail_alone_are_listed_and_retried() {
    let daemon = sandbox(10, &[]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let base = daemon.sandbox_url();
    hubspot_index_delay(&daemon, 0);
    let status = http_post_json(
        &format!("{base}/_control/hubspot/records/contacts"),
        json!({"firstname": "Bad", "lastname": "Phone", "email": "bad.phone@example.com", "phone": "12"}),
    );
    assert_eq!(status, 200);
    // An optional pair's failing transform only warns (tests/mapping_controls.rs); this one is
    // told to fail the record.
    let text = hubspot_to_jobber(&hubspot, &jobber).replace(
        "transform: phone_e164 }",
        "transform: phone_e164, onError: fail_record }",
    );
    let mapping = daemon.create_mapping(&text);
    let job = run(&daemon, &mapping);
    assert_eq!(job["status"], "partial", "{job}");
    assert_eq!(job["stats"]["failed"], 1);
    assert_eq!(
        job["stats"]["created"].as_u64().unwrap() + job["stats"]["updated"].as_u64().unwrap(),
        10,
        "{job}"
    );
    let errors = daemon.ctl_json(&["sync", "errors", job["id"].as_str().unwrap()]);
    let error = &errors.as_array().unwrap()[0];
    assert_eq!(
        (&error["state"], &error["severity"]),
        (&json!("failed"), &json!("error"))
    );
    assert!(error["message"].as_str().unwrap().contains("\"12\""), "{error}");
    let again = run(&daemon, &mapping);
    assert_eq!(again["stats"]["failed"], 1, "the failed record is tried again: {again}");
}

#[test]
fn a_large_first_sync_asks_for_confirmation() {
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("fluxd.toml");
    std::fs::write(&config, "[sync]\nconfirm_threshold = 5\n").unwrap();
    let daemon = sandbox(20, &["--config", config.to_str().unwrap()]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let mapping = daemon.create_mapping(&hubspot_to_jobber(&hubspot, &jobber));
    let refused = daemon.ctl(&["sync", "run", &mapping, "--wait"]);
    assert!(!refused.success());
    assert!(
        refused.stderr().contains("would create 10 records") && refused.stderr().contains("10 of 20"),
        "{}",
        refused.stderr()
    );
    // The planning ran inside a job of its own, which ends without writing anything.
    let jobs = daemon.ctl_json(&["sync", "list", "--mapping", &mapping]);
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
    assert_eq!(jobs[0]["status"], "cancelled", "{jobs}");
    assert_eq!(
        (
            jobs[0]["stats"]["created"].as_u64(),
            jobs[0]["stats"]["updated"].as_u64()
        ),
        (Some(0), Some(0))
    );
    let refused_job = daemon.ctl_json(&["sync", "get", jobs[0]["id"].as_str().unwrap()]);
    assert!(
        refused_job["error"]
            .as_str()
            .unwrap_or_default()
            .contains("needs confirmation"),
        "{refused_job}"
    );
    assert_eq!(
        stats(&daemon, "jobber")["objects"]["clients"]["creates"],
        0,
        "nothing was written"
    );
    let confirmed = run(&daemon, &mapping);
    // Jobber's seeded clients share half of HubSpot's contacts' emails.
    assert_eq!(confirmed["stats"]["updated"], 10);
    assert_eq!(confirmed["stats"]["created"], 10);
}

#[test]
fn an_expired_salesforce_session_is_refreshed_once_on_its_401() {
    let daemon = sandbox(10, &[]);
    let salesforce = daemon.connect("salesforce")["id"].as_str().unwrap().to_owned();
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let base = daemon.sandbox_url();
    assert_eq!(
        http_post_json(&format!("{base}/_control/salesforce/expire-access-tokens"), json!({})),
        200
    );
    let text = format!(
        "name: sf-hs\nsource: {{connection: {salesforce}, object: Contact}}\ntarget: {{connection: {hubspot}, object: contacts}}\nfieldPairs:\n  - {{sourceField: LastName, targetField: lastname}}\n  - {{sourceField: Email, targetField: email}}\n"
    );
    let mapping = daemon.create_mapping(&text);
    let job = run(&daemon, &mapping);
    assert_eq!(job["status"], "completed", "{job}");
    let oauth = http_get_json(&format!("{base}/_control/salesforce/stats"));
    assert_eq!(
        oauth["refreshes"], 1,
        "one refresh after the INVALID_SESSION_ID answer: {oauth}"
    );
    let connection = daemon.ctl_json(&["connection", "get", &salesforce]);
    assert_eq!(connection["status"], "active");
}

#[test]
fn a_two_way_mapping_with_salesforce_matches_on_differently_named_fields() {
    let daemon = sandbox(20, &[]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let salesforce = daemon.connect("salesforce")["id"].as_str().unwrap().to_owned();
    let text = format!(
        "name: hs-sf two-way\nsource: {{connection: {hubspot}, object: contacts}}\ntarget: {{connection: {salesforce}, object: Contact}}\ndirection: bidirectional\nfieldPairs:\n  - {{sourceField: lastname, targetField: LastName}}\n  - {{sourceField: email, targetField: Email, transform: lowercase}}\nmatchKey: Email\n"
    );
    let mapping = daemon.create_mapping(&text);
    let first = run(&daemon, &mapping);
    assert_eq!(first["status"], "completed", "{first}");
    assert_eq!(first["stats"]["failed"], 0, "{first}");
    let quiet = run(&daemon, &mapping);
    assert_eq!(
        (quiet["stats"]["created"].as_u64(), quiet["stats"]["updated"].as_u64()),
        (Some(0), Some(0)),
        "{quiet}"
    );
}

#[test]
fn a_hubspot_change_not_yet_searchable_is_synced_by_a_later_run() {
    let daemon = sandbox(10, &[]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let mapping = daemon.create_mapping(&hubspot_to_jobber(&hubspot, &jobber));
    assert_eq!(run(&daemon, &mapping)["status"], "completed");
    let base = daemon.sandbox_url();
    let contact = http_get_json(&format!("{base}/_control/hubspot/records/contacts?limit=1"))["records"][0].clone();
    // HubSpot's search has not indexed the change yet when the next run lists it...
    hubspot_index_delay(&daemon, 3_600_000);
    let url = format!(
        "{base}/_control/hubspot/records/contacts/{}",
        contact["id"].as_str().unwrap()
    );
    assert_eq!(common::http_patch_json(&url, json!({"city": "Reykjavik"})), 200);
    let early = run(&daemon, &mapping);
    assert_eq!(early["stats"]["updated"], 0, "{early}");
    // ...and once it has, a later run finds it: each pass re-reads from before the previous
    // one started.
    hubspot_index_delay(&daemon, 0);
    let later = run(&daemon, &mapping);
    assert_eq!(later["stats"]["updated"], 1, "{later}");
}

#[test]
fn jobber_jobs_sync_as_source_and_as_target_against_jobbers_schema() {
    let daemon = sandbox(20, &[]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let jobs = object_count(&daemon, "jobber", "jobs");
    assert!(jobs > 0);
    // Jobs as the source: their totals onto the HubSpot deals of the same name.
    let out = format!(
        "name: jobs to deals\nsource: {{connection: {jobber}, object: jobs}}\ntarget: {{connection: {hubspot}, object: deals}}\nfieldPairs:\n  - {{sourceField: title, targetField: dealname}}\n  - {{sourceField: total, targetField: amount}}\nmatchKey: dealname\n"
    );
    let job = run(&daemon, &daemon.create_mapping(&out));
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["stats"]["fetched"], jobs, "{job}");
    // Jobs as the target: Jobber creates jobs only at a property, so a mapping that may create
    // them without one is refused, naming the field...
    let into = format!(
        "name: deals to jobs\nsource: {{connection: {hubspot}, object: deals}}\ntarget: {{connection: {jobber}, object: jobs}}\nfieldPairs:\n  - {{sourceField: dealname, targetField: title}}\n  - {{sourceField: dealstage, targetField: instructions}}\nmatchKey: title\n"
    );
    let file = write(&daemon, "into.yaml", &into);
    let refused = daemon.ctl(&["mapping", "create", "-f", &file]);
    assert!(!refused.success());
    assert!(refused.stderr().contains("propertyId"), "{}", refused.stderr());
    // ...while one that only updates the jobs it matches writes through jobEdit. (The deals the
    // first mapping just wrote are searchable at once here, not after HubSpot's index delay.)
    hubspot_index_delay(&daemon, 0);
    let mapping = daemon.create_mapping(&format!("{into}matchingMode: match_only\n"));
    let job = run(&daemon, &mapping);
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["stats"]["updated"], jobs, "{job}");
    let stored = http_get_json(&format!(
        "{}/_control/jobber/records/jobs?limit=1",
        daemon.sandbox_url()
    ));
    let instructions = stored["records"][0]["fields"]["instructions"]
        .as_str()
        .unwrap_or_default();
    assert!(!instructions.is_empty(), "a deal stage was written: {stored}");
}

#[test]
fn jobber_properties_sync_as_source_and_as_target_without_a_modification_time() {
    let daemon = sandbox(20, &[]);
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let salesforce = daemon.connect("salesforce")["id"].as_str().unwrap().to_owned();
    let properties = object_count(&daemon, "jobber", "properties");
    // Properties as the source: one Salesforce account per property.
    let out = format!(
        "name: properties to accounts\nsource: {{connection: {jobber}, object: properties}}\ntarget: {{connection: {salesforce}, object: Account}}\nfieldPairs:\n  - {{sourceField: street1, targetField: Name}}\n  - {{sourceField: street1, targetField: BillingStreet}}\n  - {{sourceField: city, targetField: BillingCity}}\nmatchKey: Name\n"
    );
    let outward = daemon.create_mapping(&out);
    let job = run(&daemon, &outward);
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["stats"]["created"], properties, "{job}");
    // Properties have no updatedAt: every run lists them whole, and the hashes keep it quiet.
    let again = run(&daemon, &outward);
    assert_eq!(again["stats"]["fetched"], properties);
    assert_eq!(
        (again["stats"]["created"].as_u64(), again["stats"]["updated"].as_u64()),
        (Some(0), Some(0)),
        "{again}"
    );
    // Properties as the target: an account's city, edited in Salesforce, reaches its property
    // through propertyEdit.
    let back = format!(
        "name: accounts to properties\nsource: {{connection: {salesforce}, object: Account}}\ntarget: {{connection: {jobber}, object: properties}}\nmatchingMode: match_only\nfieldPairs:\n  - {{sourceField: BillingStreet, targetField: street1}}\n  - {{sourceField: BillingCity, targetField: city}}\nmatchKey: street1\n"
    );
    let inward = daemon.create_mapping(&back);
    let first = run(&daemon, &inward);
    assert_eq!(first["status"], "completed", "{first}");
    let base = daemon.sandbox_url();
    let property = http_get_json(&format!("{base}/_control/jobber/records/properties?limit=1"))["records"][0].clone();
    let street = property["fields"]["street1"].as_str().unwrap().to_owned();
    let accounts = http_get_json(&format!("{base}/_control/salesforce/records/Account?limit=1000"));
    let account = accounts["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["fields"]["BillingStreet"] == street.as_str())
        .expect("the account made from the property")
        .clone();
    let url = format!(
        "{base}/_control/salesforce/records/Account/{}",
        account["id"].as_str().unwrap()
    );
    assert_eq!(common::http_patch_json(&url, json!({"BillingCity": "Juneau"})), 200);
    let job = run(&daemon, &inward);
    assert_eq!(job["stats"]["updated"], 1, "{job}");
    let stored = http_get_json(&format!(
        "{base}/_control/jobber/records/properties/{}",
        property["id"].as_str().unwrap()
    ));
    assert_eq!(stored["fields"]["city"], "Juneau", "{stored}");
}

#[test]
fn a_sync_whose_records_all_fail_is_failed_and_fluxctl_says_so_by_its_exit_code() {
    let daemon = sandbox(3, &[]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    // A first name is no phone number: every record's required pair fails.
    let mapping = daemon.create_mapping(&format!(
        r#"name: every record fails
source: {{ connection: {hubspot}, object: contacts }}
target: {{ connection: {jobber}, object: clients }}
fieldPairs:
  - {{ sourceField: firstname, targetField: phone, transform: phone_e164, required: true }}
  - {{ sourceField: email, targetField: email }}
matchKey: email
"#
    ));
    let job = run(&daemon, &mapping);
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["stats"]["failed"], 3, "{job}");
    assert!(job["error"].as_str().unwrap().contains("all 3 records failed"), "{job}");
    // `sync get -o json` speaks lowerCamelCase, like every JSON output.
    let shown = daemon.ctl_json(&["sync", "get", job["id"].as_str().unwrap()]);
    fn keys(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    found.push(key.clone());
                    keys(inner, found);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| keys(item, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    keys(&shown, &mut found);
    assert!(found.contains(&"mappingId".to_owned()), "{found:?}");
    assert!(
        found
            .iter()
            .all(|key| !key.contains('_') && key.starts_with(|c: char| c.is_ascii_lowercase())),
        "{found:?}"
    );
}

#[test]
fn a_provider_outage_fails_the_sync_clearly_and_the_next_run_recovers() {
    let daemon = sandbox(10, &[]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let mapping = daemon.create_mapping(&hubspot_to_jobber(&hubspot, &jobber));
    let outage = format!("{}/_control/hubspot/fail-api-calls", daemon.sandbox_url());
    assert_eq!(
        http_post_json(&outage, json!({ "count": 1_000_000, "status": 500 })),
        200
    );
    let failed = run(&daemon, &mapping);
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("500") || error.to_lowercase().contains("internal"),
        "{error}"
    );
    assert_eq!(http_post_json(&outage, json!({ "count": 0 })), 200);
    let recovered = run(&daemon, &mapping);
    assert_eq!(recovered["status"], "completed", "{recovered}");
    assert_eq!(
        recovered["stats"]["created"].as_u64().unwrap() + recovered["stats"]["updated"].as_u64().unwrap(),
        10,
        "{recovered}"
    );
}
