//! The crash suite: fluxd is killed with SIGKILL at a random moment of a first sync (one-way
//! and two-way, with its record and sync events going to a webhook receiver), restarted, and
//! then every record must be in the other system exactly once, every event in the outbox must
//! have reached the receiver at least once, the interrupted job must have resumed to its end,
//! and the store must open.
//!
//! A second test kills fluxd during a burst of inbound webhooks (Jobber client changes, which
//! Jobber sends to the app URL and retries after 1 s, 10 s and 60 s): after the restart every
//! change must reach HubSpot.
//!
//! CI runs `FLUXD_CRASH_TRIALS` trials (default 2; a fifth as many inbound ones, at least one).
//! The full run, whose figures are in docs/reliability.md:
//! `FLUXD_CRASH_TRIALS=50 cargo test --test crash -- --nocapture`.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::receiver::Receiver;
use common::{StandaloneSandbox, TestDaemon, compare, emails, http_get_json, wait_for};
use serde_json::Value;

/// People seeded per provider in each trial.
const RECORDS: usize = 300;

#[derive(Default, Debug)]
struct Figures {
    trials: usize,
    two_way: usize,
    killed_mid_sync: usize,
    records_checked: usize,
    lost: usize,
    duplicated: usize,
    events: usize,
    events_missing: usize,
    redelivered: usize,
    /// Jobs whose created count, or whose `record.created` events, differ from the records
    /// they created.
    miscounted: usize,
}

fn trial(number: usize, two_way: bool, figures: &mut Figures) {
    let sandbox = StandaloneSandbox::start_with(RECORDS, &["--no-limits"]);
    let receiver = Receiver::start();
    let config_dir = tempfile::tempdir().unwrap();
    let config = sandbox.config_file(config_dir.path());
    let mut daemon = TestDaemon::start(&["--config", config.to_str().unwrap(), "--allow-private-webhooks"]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    daemon.ctl_json(&[
        "webhook",
        "create",
        "--url",
        &receiver.url("/hook"),
        "--events",
        "sync.*,record.*",
    ]);
    let direction = if two_way { "bidirectional" } else { "source_to_target" };
    let mapping = daemon.create_mapping(&format!(
        "name: crash\nsource: {{ connection: {hubspot}, object: contacts }}\ntarget: {{ connection: {jobber}, object: clients }}\ndirection: {direction}\nfieldPairs:\n  - {{ sourceField: firstname, targetField: firstName }}\n  - {{ sourceField: lastname, targetField: lastName }}\n  - {{ sourceField: email, targetField: email, transform: lowercase }}\nmatchKey: email\n"
    ));
    let contacts_before = emails(&sandbox, "hubspot", "contacts");
    let clients_before = emails(&sandbox, "jobber", "clients");
    let job = daemon.ctl_json(&["sync", "run", &mapping, "--yes"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A random moment of the sync: the harness's only use of the wall clock.
    let pause = Duration::from_millis(rand::random_range(0..1500));
    std::thread::sleep(pause);
    daemon.kill9();
    let status_at_kill = {
        let written = emails(&sandbox, "jobber", "clients").len() - clients_before.len();
        written > 0 && written < contacts_before.len()
    };
    daemon.launch();
    let finished = wait_for(Duration::from_secs(180), || {
        let current = daemon.ctl_json(&["sync", "get", &job]);
        (current["status"] != "running" && current["status"] != "pending").then_some(current)
    })
    .expect("the interrupted job resumed to its end");
    assert_eq!(finished["status"], "completed", "trial {number}: {finished}");
    // A second run changes nothing if the first left everything in place.
    let again = daemon.ctl_json(&["sync", "run", &mapping, "--wait"]);
    assert_eq!(again["stats"]["created"], 0, "trial {number}: {again}");

    let clients = emails(&sandbox, "jobber", "clients");
    let contacts = emails(&sandbox, "hubspot", "contacts");
    let (lost, duplicated) = compare(&contacts_before, &clients);
    let (mut lost, mut duplicated) = (lost, duplicated);
    figures.records_checked += contacts_before.len();
    if two_way {
        let (back_lost, back_duplicated) = compare(&clients_before, &contacts);
        lost += back_lost;
        duplicated += back_duplicated;
        figures.records_checked += clients_before.len();
    }

    // Each record the sync created is counted once as created and announced once as
    // `record.created`, a kill between the provider's write and the checkpoint included.
    let before: HashSet<&String> = clients_before.iter().collect();
    let mut expected_created = contacts_before.iter().filter(|e| !before.contains(e)).count();
    if two_way {
        let contacts: HashSet<&String> = contacts_before.iter().collect();
        expected_created += clients_before.iter().filter(|e| !contacts.contains(e)).count();
    }
    let created_events = daemon
        .ctl_json(&["events", "list", "--all", "--type", "record.created"])
        .as_array()
        .unwrap()
        .len();
    let counted = finished["stats"]["created"].as_u64().unwrap() as usize;
    let miscounted = counted != expected_created || created_events != expected_created;
    if miscounted {
        println!(
            "trial {number}: expected {expected_created} created, counted {counted}, {created_events} record.created events"
        );
    }

    // Every event of the outbox reaches the receiver at least once.
    let outbox: HashSet<String> = daemon
        .ctl_json(&["events", "list", "--all", "--type", "sync.*,record.*"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let received = wait_for(Duration::from_secs(120), || {
        let received = receiver.received();
        let ids: HashSet<String> = received.iter().map(|r| r.header("webhook-id")).collect();
        outbox.is_subset(&ids).then_some(received)
    });
    let (missing, redelivered) = match &received {
        Some(received) => {
            let distinct: HashSet<String> = received.iter().map(|r| r.header("webhook-id")).collect();
            (0, received.len() - distinct.len())
        }
        None => {
            let ids: HashSet<String> = receiver.received().iter().map(|r| r.header("webhook-id")).collect();
            (outbox.difference(&ids).count(), 0)
        }
    };
    println!(
        "trial {number}: {} kill after {} ms{}; {lost} lost, {duplicated} duplicated; {} events, {missing} missing, {redelivered} redelivered",
        if two_way { "two-way," } else { "one-way," },
        pause.as_millis(),
        if status_at_kill { " (mid-sync)" } else { "" },
        outbox.len(),
    );
    figures.trials += 1;
    figures.two_way += usize::from(two_way);
    figures.killed_mid_sync += usize::from(status_at_kill);
    figures.lost += lost;
    figures.duplicated += duplicated;
    figures.events += outbox.len();
    figures.events_missing += missing;
    figures.redelivered += redelivered;
    figures.miscounted += usize::from(miscounted);
    let _: Value = daemon.ctl_json(&["status"]);
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let trials: usize = std::env::var("FLUXD_CRASH_TRIALS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    let mut figures = Figures::default();
    for number in 0..trials {
        trial(number, number % 2 == 1, &mut figures);
    }
    println!("{figures:#?}");
    assert_eq!(figures.lost, 0, "{figures:#?}");
    assert_eq!(figures.duplicated, 0, "{figures:#?}");
    assert_eq!(figures.events_missing, 0, "{figures:#?}");
    assert_eq!(figures.miscounted, 0, "{figures:#?}");
}

/// Changes made in Jobber during one inbound trial.
const CHANGES: usize = 100;

/// Kills fluxd at a random moment of a burst of Jobber client changes; returns how many of
/// them never reached HubSpot.
fn inbound_trial(number: usize) -> usize {
    let sandbox = StandaloneSandbox::start_with(RECORDS, &["--no-limits"]);
    let config_dir = tempfile::tempdir().unwrap();
    let config = sandbox.config_file(config_dir.path());
    let mut daemon = TestDaemon::start(&["--config", config.to_str().unwrap()]);
    // Jobber keeps retrying the URL it was given: the restarted daemon listens there again.
    daemon.keep_ports();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let mapping = daemon.create_mapping(&format!(
        "name: inbound\nsource: {{ connection: {jobber}, object: clients }}\ntarget: {{ connection: {hubspot}, object: contacts }}\nfieldPairs:\n  - {{ sourceField: firstName, targetField: firstname }}\n  - {{ sourceField: email, targetField: email, transform: lowercase }}\nmatchKey: email\n"
    ));
    let first = daemon.ctl_json(&["sync", "run", &mapping, "--wait", "--yes"]);
    assert_eq!(first["status"], "completed", "{first}");
    let app_url = daemon.ctl_json(&["connection", "webhooks", &jobber])["appUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let registered = common::http_put_json(
        &format!("{}/_control/jobber/webhooks", sandbox.base),
        serde_json::json!({ "url": app_url }),
    );
    assert_eq!(registered, 200);

    let url = format!("{}/_control/jobber/records/clients?limit=100000", sandbox.base);
    let clients = http_get_json(&url)["records"].as_array().unwrap().clone();
    let targets: Vec<(String, String, String)> = clients
        .iter()
        .take(CHANGES)
        .enumerate()
        .filter_map(|(index, client)| {
            let email = client["fields"]["emails"][0]["address"].as_str()?.to_lowercase();
            let name = format!("Burst{number}x{index}");
            Some((client["id"].as_str()?.to_owned(), email, name))
        })
        .collect();
    let changed: Vec<(String, String)> = targets
        .iter()
        .map(|(_, email, name)| (email.clone(), name.clone()))
        .collect();
    // The burst goes on in the background; fluxd is killed after a random number of changes.
    let made = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let burst = {
        let (made, base) = (made.clone(), sandbox.base.clone());
        std::thread::spawn(move || {
            for (id, _, name) in targets {
                let status = common::http_patch_json(
                    &format!("{base}/_control/jobber/records/clients/{id}"),
                    serde_json::json!({ "firstName": name }),
                );
                assert_eq!(status, 200);
                made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };
    let kill_after = rand::random_range(5..changed.len() - 5);
    while made.load(std::sync::atomic::Ordering::SeqCst) < kill_after {
        std::thread::sleep(Duration::from_millis(1));
    }
    let missing = || {
        let url = format!("{}/_control/hubspot/records/contacts?limit=100000", sandbox.base);
        let contacts = http_get_json(&url)["records"].as_array().unwrap().clone();
        let names: HashMap<String, String> = contacts
            .iter()
            .filter_map(|c| {
                Some((
                    c["fields"]["email"].as_str()?.to_lowercase(),
                    c["fields"]["firstname"].as_str()?.to_owned(),
                ))
            })
            .collect();
        changed
            .iter()
            .filter(|(email, name)| names.get(email) != Some(name))
            .count()
    };
    daemon.kill9();
    let pending_at_kill = missing();
    burst.join().unwrap();
    daemon.launch();
    // Jobber retries after 1 s, 10 s and 60 s.
    let arrived = wait_for(Duration::from_secs(90), || (missing() == 0).then_some(()));
    let lost = if arrived.is_some() { 0 } else { missing() };
    assert_eq!(daemon.ctl_json(&["status"])["version"], env!("CARGO_PKG_VERSION"));
    println!(
        "inbound trial {number}: {} changes, killed after change {kill_after} with {pending_at_kill} not yet in HubSpot, {lost} never arrived",
        changed.len()
    );
    lost
}

#[test]
fn sigkill_during_inbound_bursts_loses_no_change() {
    let trials = std::env::var("FLUXD_CRASH_TRIALS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(2)
        .div_ceil(5);
    let lost: usize = (0..trials).map(inbound_trial).sum();
    println!("inbound: {trials} trials, {lost} changes lost");
    assert_eq!(lost, 0);
}
