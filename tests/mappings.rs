//! Mappings through the real daemon and fluxctl, against sandbox connections.

mod common;

use std::time::Duration;

use common::receiver::Receiver;
use common::{TestDaemon, wait_for};
use serde_json::Value;

/// A daemon with HubSpot and Jobber connected; returns (daemon, hubspot id, jobber id).
fn connected() -> (TestDaemon, String, String) {
    let daemon = TestDaemon::start(&["--sandbox", "--sandbox-records", "20", "--allow-private-webhooks"]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    (daemon, hubspot, jobber)
}

fn mapping_file(hubspot: &str, jobber: &str, extra_pair: &str) -> String {
    format!(
        r#"name: HubSpot contacts to Jobber clients
source: {{ connection: {hubspot}, object: contacts }}
target: {{ connection: {jobber}, object: clients }}
direction: source_to_target
fieldPairs:
  - {{ sourceField: firstname, targetField: firstName, required: true }}
  - {{ sourceField: lastname, targetField: lastName }}
  - {{ sourceField: email, targetField: email, transform: "trim|lowercase" }}
  - {{ sourceField: phone, targetField: phone, transform: phone_e164 }}
  - {{ sourceField: "address,city", targetField: billingAddress.street1, transform: 'concatenate(sep=", ")' }}
{extra_pair}matchKey: email
defaultRegion: US
"#
    )
}

fn write(daemon: &TestDaemon, name: &str, text: &str) -> String {
    let path = daemon.data_dir().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn create_from_a_file_round_trips_previews_and_deactivates() {
    let (daemon, hubspot, jobber) = connected();
    let file = write(&daemon, "mapping.yaml", &mapping_file(&hubspot, &jobber, ""));
    let created = daemon.ctl_json(&["mapping", "create", "-f", &file]);
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("map_"));

    let fetched = daemon.ctl_json(&["mapping", "get", id]);
    let original: serde_json::Value =
        serde_json::to_value(fluxcascade::mappings::spec::parse_file(&mapping_file(&hubspot, &jobber, "")).unwrap())
            .unwrap();
    assert_eq!(fetched["fieldPairs"], original["fieldPairs"]);
    assert_eq!(fetched["name"], original["name"]);
    assert_eq!(fetched["active"], true);
    // The printed JSON is itself a mapping file: `apply` takes it back without duplicating,
    // and `create` refuses to copy it by mistake.
    let again = write(&daemon, "again.json", &fetched.to_string());
    let refused = daemon.ctl(&["mapping", "create", "-f", &again]);
    assert!(!refused.success());
    assert!(refused.stderr().contains("mapping apply"), "{}", refused.stderr());
    for _ in 0..2 {
        let applied = daemon.ctl_json(&["mapping", "apply", "-f", &again]);
        assert_eq!(applied["id"], id);
    }
    assert_eq!(daemon.ctl_json(&["mapping", "list"]).as_array().unwrap().len(), 1);
    let mut renamed = fetched.clone();
    renamed["schedule"] = "30m".into();
    let edited = write(&daemon, "edited.json", &renamed.to_string());
    let applied = daemon.ctl_json(&["mapping", "apply", "-f", &edited]);
    assert_eq!(
        (applied["id"].as_str(), applied["schedule"].as_str()),
        (Some(id), Some("30m"))
    );
    // Without an id, apply finds the mapping by name.
    renamed.as_object_mut().unwrap().remove("id");
    let by_name = write(&daemon, "by-name.json", &renamed.to_string());
    assert_eq!(daemon.ctl_json(&["mapping", "apply", "-f", &by_name])["id"], id);

    let preview = daemon.ctl_json(&["mapping", "preview", id, "--limit", "3"]);
    let records = preview.as_array().unwrap();
    assert_eq!(records.len(), 3);
    for record in records {
        let values = &record["values"];
        let email = values["email"].as_str().unwrap();
        assert_eq!(email, email.to_lowercase());
        assert!(values["phone"].as_str().unwrap().starts_with("+1"), "{record}");
        assert!(
            values["billingAddress.street1"].as_str().unwrap().contains(", "),
            "{record}"
        );
        assert_eq!(record["errors"], serde_json::json!([]));
    }

    daemon.ctl_json(&["mapping", "deactivate", id]);
    assert_eq!(daemon.ctl_json(&["mapping", "get", id])["active"], false);
    daemon.ctl_json(&["mapping", "activate", id]);
    assert_eq!(daemon.ctl_json(&["mapping", "get", id])["active"], true);
}

#[test]
fn an_unknown_transform_is_refused_by_name_and_nothing_is_stored() {
    let (daemon, hubspot, jobber) = connected();
    let bad = mapping_file(
        &hubspot,
        &jobber,
        "  - { sourceField: company, targetField: companyName, transform: nosuch }\n",
    );
    let file = write(&daemon, "bad.yaml", &bad);
    let out = daemon.ctl(&["mapping", "create", "-f", &file]);
    assert!(!out.success());
    assert!(
        out.stderr().contains("nosuch") && out.stderr().contains("fieldPairs[5].transform"),
        "{}",
        out.stderr()
    );
    assert_eq!(daemon.ctl_json(&["mapping", "list"]), serde_json::json!([]));
}

#[test]
fn validation_names_the_pair_and_field_for_every_problem() {
    let daemon = TestDaemon::start(&["--sandbox", "--sandbox-records", "5"]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let salesforce = daemon.connect("salesforce")["id"].as_str().unwrap().to_owned();
    let text = format!(
        r#"name: bad
source: {{ connection: {hubspot}, object: contacts }}
target: {{ connection: {salesforce}, object: Contact }}
direction: bidirectional
fieldPairs:
  - {{ sourceField: emial, targetField: Email }}
  - {{ sourceField: firstname, targetField: Nope }}
  - {{ sourceField: "firstname,lastname", targetField: Title, transform: concatenate }}
"#
    );
    let file = write(&daemon, "bad.yaml", &text);
    let out = daemon.ctl(&["mapping", "create", "-f", &file]);
    let message = out.stderr();
    assert!(!out.success());
    for expected in [
        "fieldPairs[0].sourceField: unknown field \"emial\"",
        "fieldPairs[1].targetField: unknown field \"Nope\"",
        "fieldPairs[2].transform",
        "required target field \"LastName\"",
    ] {
        assert!(message.contains(expected), "missing {expected:?} in {message}");
    }
    let wrong_object = daemon.ctl(&[
        "mapping",
        "create",
        "--name",
        "x",
        "--source",
        &format!("{hubspot}:Contact"),
        "--target",
        &format!("{salesforce}:Contact"),
        "--pair",
        "email=Email",
    ]);
    assert!(
        wrong_object.stderr().contains("source.object"),
        "{}",
        wrong_object.stderr()
    );
    let missing = daemon.ctl(&[
        "mapping",
        "create",
        "--name",
        "x",
        "--source",
        "conn_nope:contacts",
        "--target",
        &format!("{salesforce}:Contact"),
        "--pair",
        "email=Email",
    ]);
    assert!(missing.stderr().contains("source.connection"), "{}", missing.stderr());
}

#[test]
fn field_catalogs_come_from_each_provider() {
    let daemon = TestDaemon::start(&["--sandbox", "--sandbox-records", "5"]);
    for (provider, object, field) in [
        ("hubspot", "contacts", "email"),
        ("jobber", "clients", "firstName"),
        ("pipedrive", "persons", "email"),
        ("salesforce", "Contact", "LastName"),
    ] {
        let id = daemon.connect(provider)["id"].as_str().unwrap().to_owned();
        let fields = daemon.ctl_json(&["mapping", "fields", "--connection", &id, "--object", object]);
        let found = fields
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == field)
            .unwrap_or_else(|| panic!("{provider} {object} has no {field}: {fields}"));
        if provider == "salesforce" {
            assert_eq!(found["required"], true, "LastName is required on Contact");
        }
    }
}

#[test]
fn mapping_changes_emit_their_events() {
    let (daemon, hubspot, jobber) = connected();
    let receiver = Receiver::start();
    daemon.ctl_json(&[
        "webhook",
        "create",
        "--url",
        &receiver.url("/m"),
        "--events",
        "mapping.*",
    ]);
    let file = write(&daemon, "m.yaml", &mapping_file(&hubspot, &jobber, ""));
    let id = daemon.ctl_json(&["mapping", "create", "-f", &file])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    daemon.ctl_json(&["mapping", "update", &id, "--name", "renamed"]);
    daemon.ctl_json(&["mapping", "deactivate", &id]);
    daemon.ctl_json(&["mapping", "activate", &id]);
    daemon.ctl_json(&["mapping", "delete", &id]);
    let got = receiver.wait_for("/m", 5, Duration::from_secs(10));
    let types: Vec<String> = got
        .iter()
        .map(|r| r.json()["eventType"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        [
            "mapping.created",
            "mapping.updated",
            "mapping.deactivated",
            "mapping.activated",
            "mapping.deleted"
        ]
    );
    assert_eq!(got[1].json()["data"]["name"], "renamed");
}

#[test]
fn a_schedule_triggers_syncs_and_survives_a_restart() {
    let sandbox = common::StandaloneSandbox::start(20);
    let config_dir = tempfile::tempdir().unwrap();
    let config = sandbox.config_file(config_dir.path());
    let mut daemon = TestDaemon::start(&["--config", config.to_str().unwrap()]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let text = mapping_file(&hubspot, &jobber, "").replace("matchKey: email", "matchKey: email\nschedule: 10s");
    let file = write(&daemon, "s.yaml", &text);
    let mapping = daemon.ctl_json(&["mapping", "create", "-f", &file]);
    let id = mapping["id"].as_str().unwrap().to_owned();
    let next: jiff::Timestamp = mapping["nextRunAt"].as_str().unwrap().parse().unwrap();
    daemon.restart();
    let ran = wait_for(Duration::from_secs(20), || {
        let jobs = daemon.ctl_json(&["sync", "list", "--mapping", &id]);
        jobs.as_array()
            .unwrap()
            .first()
            .filter(|j| j["status"] == "completed")
            .cloned()
    });
    assert!(ran.is_some(), "no scheduled sync ran: {}", daemon.log());
    assert!(jiff::Timestamp::now() >= next);
    let after: Value = daemon.ctl_json(&["mapping", "get", &id]);
    let later: jiff::Timestamp = after["nextRunAt"].as_str().unwrap().parse().unwrap();
    assert!(later > next, "the next run moved forward");
}
