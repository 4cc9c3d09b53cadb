//! Mapping controls end to end: record filters (previewed, counted, pushed into each
//! simulator's own query and applied to every record), per-pair directions, conflict policies
//! and what an optional field's failing transform does.

mod common;

use common::{TestDaemon, http_get_json, http_patch_json, http_post_json};
use serde_json::{Value, json};

fn sandbox(records: usize, extra: &[&str]) -> TestDaemon {
    let count = records.to_string();
    let mut args = vec!["--sandbox", "--sandbox-records", count.as_str()];
    args.extend_from_slice(extra);
    TestDaemon::start(&args)
}

/// Runs a sync to its end (confirmed); fluxctl exits 0 only for `completed`.
fn run(daemon: &TestDaemon, mapping: &str) -> Value {
    let out = daemon.ctl(&["sync", "run", mapping, "--wait", "--yes", "-o", "json"]);
    let job: Value = serde_json::from_str(&out.stdout())
        .unwrap_or_else(|e| panic!("sync run printed no job ({e}): {} {}", out.stdout(), out.stderr()));
    assert_eq!(out.success(), job["status"] == "completed", "{job} {}", out.stderr());
    job
}

fn stat(job: &Value, name: &str) -> u64 {
    job["stats"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no stats.{name}: {job}"))
}

fn no_search_delay(daemon: &TestDaemon) {
    let url = format!("{}/_control/hubspot/limits", daemon.sandbox_url());
    assert_eq!(http_post_json(&url, json!({ "index_delay_ms": 0 })), 200);
}

/// Every record of `object` as the simulator stores it.
fn records(daemon: &TestDaemon, provider: &str, object: &str) -> Vec<Value> {
    let url = format!(
        "{}/_control/{provider}/records/{object}?limit=10000",
        daemon.sandbox_url()
    );
    http_get_json(&url)["records"].as_array().unwrap().clone()
}

fn record(daemon: &TestDaemon, provider: &str, object: &str, id: &str) -> Value {
    http_get_json(&format!(
        "{}/_control/{provider}/records/{object}/{id}",
        daemon.sandbox_url()
    ))
}

fn patch(daemon: &TestDaemon, provider: &str, object: &str, id: &str, fields: Value) {
    let url = format!("{}/_control/{provider}/records/{object}/{id}", daemon.sandbox_url());
    assert_eq!(http_patch_json(&url, fields), 200);
}

/// The record API requests `provider`'s simulator received since the last call.
fn requests(daemon: &TestDaemon, provider: &str, seen: &mut usize) -> Vec<Value> {
    let all = http_get_json(&format!("{}/_control/{provider}/requests", daemon.sandbox_url()))["requests"]
        .as_array()
        .unwrap()
        .clone();
    let new = all[(*seen).min(all.len())..].to_vec();
    *seen = all.len();
    new
}

fn preview_ids(daemon: &TestDaemon, mapping: &str, limit: u32) -> Vec<String> {
    let limit = limit.to_string();
    let rows = daemon.ctl_json(&["mapping", "preview", mapping, "--limit", &limit]);
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["sourceId"].as_str().unwrap().to_owned())
        .collect()
}

fn ids_where(records: &[Value], keep: impl Fn(&Value) -> bool) -> Vec<String> {
    let mut ids: Vec<String> = records
        .iter()
        .filter(|r| keep(&r["fields"]))
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn jobber_client_by_email<'a>(clients: &'a [Value], email: &str) -> Option<&'a Value> {
    clients.iter().find(|c| {
        c["fields"]["emails"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["address"].as_str().is_some_and(|a| a.eq_ignore_ascii_case(email)))
    })
}

fn san_francisco_mapping(hubspot: &str, jobber: &str, extra_pairs: &str) -> String {
    format!(
        r#"name: San Francisco contacts
source: {{ connection: {hubspot}, object: contacts }}
target: {{ connection: {jobber}, object: clients }}
filter: {{all: [{{field: city, op: equals, value: "San Francisco"}}]}}
fieldPairs:
  - {{ sourceField: email, targetField: email, transform: "trim|lowercase" }}
  - {{ sourceField: firstname, targetField: firstName }}
  - {{ sourceField: lastname, targetField: lastName }}
{extra_pairs}matchKey: email
"#
    )
}

#[test]
fn a_filtered_mapping_previews_counts_and_syncs_only_matching_records() {
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("fluxd.toml");
    // 40 contacts, 5 in San Francisco, none in Jobber yet: only a filter keeps the first sync
    // under the confirmation threshold.
    std::fs::write(&config, "[sync]\nconfirm_threshold = 5\n").unwrap();
    let daemon = sandbox(40, &["--config", config.to_str().unwrap()]);
    no_search_delay(&daemon);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let contacts = records(&daemon, "hubspot", "contacts");
    let in_sf = ids_where(&contacts, |f| f["city"] == "San Francisco");
    assert_eq!(in_sf.len(), 5);
    let emails_in_sf: Vec<String> = contacts
        .iter()
        .filter(|c| c["fields"]["city"] == "San Francisco")
        .map(|c| c["fields"]["email"].as_str().unwrap().to_owned())
        .collect();
    let clients_before = records(&daemon, "jobber", "clients");

    let mapping = daemon.create_mapping(&san_francisco_mapping(&hubspot, &jobber, ""));
    let mut seen = 0;
    requests(&daemon, "hubspot", &mut seen);
    assert_eq!(sorted(preview_ids(&daemon, &mapping, 50)), in_sf);
    let searches = requests(&daemon, "hubspot", &mut seen);
    let body: Value = serde_json::from_str(searches.last().unwrap()["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body["filterGroups"],
        json!([{ "filters": [{ "propertyName": "city", "operator": "EQ", "value": "San Francisco" }] }]),
        "the filter reached HubSpot's search: {body}"
    );

    // No --yes: the first sync would create 5, within the threshold, because of the filter.
    let out = daemon.ctl(&["sync", "run", &mapping, "--wait", "-o", "json"]);
    assert!(out.success(), "{} {}", out.stdout(), out.stderr());
    let first: Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(stat(&first, "created") + stat(&first, "updated"), 5, "{first}");
    let listed = requests(&daemon, "hubspot", &mut seen);
    assert!(
        listed
            .iter()
            .filter(|r| r["path"].as_str().unwrap().ends_with("/search"))
            .all(|r| r["body"].as_str().unwrap().contains("San Francisco")),
        "every listing of the first sync asks HubSpot for San Francisco only: {listed:?}"
    );
    let clients = records(&daemon, "jobber", "clients");
    assert_eq!(
        clients.len() as u64,
        clients_before.len() as u64 + stat(&first, "created")
    );
    for email in &emails_in_sf {
        assert!(
            jobber_client_by_email(&clients, email).is_some(),
            "{email} reached Jobber"
        );
    }

    // A contact edited out of the filter keeps its link and gets no further writes.
    let moved = &in_sf[0];
    let moved_email = contacts.iter().find(|c| &c["id"] == moved).unwrap()["fields"]["email"]
        .as_str()
        .unwrap()
        .to_owned();
    patch(
        &daemon,
        "hubspot",
        "contacts",
        moved,
        json!({ "city": "Oakland", "firstname": "Moved" }),
    );
    let outside = contacts
        .iter()
        .find(|c| c["fields"]["city"] == "Oakland" || c["fields"]["city"] == "Albany")
        .unwrap();
    let outside_id = outside["id"].as_str().unwrap();
    patch(
        &daemon,
        "hubspot",
        "contacts",
        outside_id,
        json!({ "firstname": "Elsewhere" }),
    );
    let next = run(&daemon, &mapping);
    assert_eq!(
        (stat(&next, "created"), stat(&next, "updated"), stat(&next, "skipped")),
        (0, 0, 1),
        "{next}"
    );
    // Only the two edited contacts were read (the filtered first sync set the watermark at
    // its start, not at the newest San Francisco contact); the one outside was left out.
    assert_eq!((stat(&next, "fetched"), stat(&next, "filtered")), (2, 1), "{next}");
    let clients = records(&daemon, "jobber", "clients");
    let client = jobber_client_by_email(&clients, &moved_email).unwrap();
    assert_ne!(client["fields"]["firstName"], "Moved", "{client}");
    let errors = daemon.ctl_json(&["sync", "errors", next["id"].as_str().unwrap()]);
    assert_eq!(errors.as_array().unwrap().len(), 1, "{errors}");
    assert_eq!(
        (&errors[0]["recordId"], &errors[0]["severity"]),
        (&json!(moved), &json!("info"))
    );
    assert!(errors[0]["message"].as_str().unwrap().contains("filter"), "{errors}");

    // Another filter lists every record again: the Brooklyn contacts, unchanged since the
    // first sync, are synced by the next run.
    let brooklyn = contacts.iter().filter(|c| c["fields"]["city"] == "Brooklyn").count() as u64;
    let file = daemon.data_dir().join("brooklyn.yaml");
    let text = san_francisco_mapping(&hubspot, &jobber, "").replace("San Francisco", "Brooklyn");
    std::fs::write(&file, text).unwrap();
    assert!(
        daemon
            .ctl(&["mapping", "update", &mapping, "-f", file.to_str().unwrap()])
            .success()
    );
    let refiltered = run(&daemon, &mapping);
    assert_eq!(
        stat(&refiltered, "created") + stat(&refiltered, "updated"),
        brooklyn,
        "{refiltered}"
    );
}

#[test]
fn an_invalid_optional_phone_writes_the_rest_with_a_warning() {
    let daemon = sandbox(12, &[]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    // The seeded phones are written `(415) 234-5678`: without defaultRegion, phone_e164 cannot
    // tell their country.
    let pair = "  - { sourceField: phone, targetField: phone, transform: phone_e164, required: false }\n";
    let mapping = daemon.create_mapping(&san_francisco_mapping(&hubspot, &jobber, pair));
    let job = run(&daemon, &mapping);
    assert_eq!(job["status"], "completed", "{job}");
    let written = stat(&job, "created") + stat(&job, "updated");
    assert_eq!(written, 2, "{job}");
    assert_eq!(stat(&job, "warnings"), written, "{job}");
    assert_eq!(stat(&job, "failed"), 0, "{job}");
    let errors = daemon.ctl_json(&["sync", "errors", job["id"].as_str().unwrap()]);
    let errors = errors.as_array().unwrap();
    assert_eq!(errors.len() as u64, written, "{errors:?}");
    for error in errors {
        assert_eq!(
            (&error["severity"], &error["state"]),
            (&json!("warning"), &json!("warning"))
        );
        assert!(error["message"].as_str().unwrap().starts_with("phone: "), "{error}");
    }
    let shown = daemon.ctl(&["sync", "get", job["id"].as_str().unwrap()]);
    assert!(shown.stdout().contains("warnings"), "{}", shown.stdout());
    // The other fields were written; the client keeps the phone it had, if any.
    let contacts = records(&daemon, "hubspot", "contacts");
    let clients = records(&daemon, "jobber", "clients");
    for contact in contacts.iter().filter(|c| c["fields"]["city"] == "San Francisco") {
        let email = contact["fields"]["email"].as_str().unwrap();
        let client = jobber_client_by_email(&clients, email).expect("written");
        assert_eq!(client["fields"]["firstName"], contact["fields"]["firstname"]);
    }
    // Nothing changed, nothing written, no new warning.
    let again = run(&daemon, &mapping);
    assert_eq!(
        (
            stat(&again, "created"),
            stat(&again, "updated"),
            stat(&again, "warnings")
        ),
        (0, 0, 0),
        "{again}"
    );
}

fn two_way(hubspot: &str, jobber: &str, policy: &str) -> String {
    format!(
        r#"name: two-way with one-way lastName
source: {{ connection: {hubspot}, object: contacts }}
target: {{ connection: {jobber}, object: clients }}
direction: bidirectional
conflictPolicy: {policy}
filter: {{field: city, op: in, value: ["San Francisco", "New York"]}}
targetFilter: {{field: billingAddress.city, op: in, value: ["San Francisco", "New York"]}}
fieldPairs:
  - {{ sourceField: email, targetField: email, transform: lowercase }}
  - {{ sourceField: firstname, targetField: firstName }}
  - {{ sourceField: lastname, targetField: lastName, direction: source_to_target }}
  - {{ sourceField: company, targetField: companyName, conflictPolicy: source_wins }}
  - {{ sourceField: city, targetField: billingAddress.city }}
  - {{ sourceField: state, targetField: billingAddress.province, direction: target_to_source }}
matchKey: email
"#
    )
}

/// A linked pair of the two-way mapping: (HubSpot contact id, Jobber client id).
fn linked_pair(daemon: &TestDaemon) -> (String, String) {
    let contacts = records(daemon, "hubspot", "contacts");
    let clients = records(daemon, "jobber", "clients");
    contacts
        .iter()
        .filter(|c| c["fields"]["city"] == "San Francisco")
        .find_map(|c| {
            let client = jobber_client_by_email(&clients, c["fields"]["email"].as_str()?)?;
            Some((c["id"].as_str()?.to_owned(), client["id"].as_str()?.to_owned()))
        })
        .expect("a San Francisco contact linked to a client")
}

fn hubspot_field(daemon: &TestDaemon, id: &str, field: &str) -> Value {
    record(daemon, "hubspot", "contacts", id)["fields"][field].clone()
}

fn jobber_field(daemon: &TestDaemon, id: &str, field: &str) -> Value {
    let client = record(daemon, "jobber", "clients", id);
    match field.split_once('.') {
        Some((outer, inner)) => client["fields"][outer][inner].clone(),
        None => client["fields"][field].clone(),
    }
}

/// Sets one part of a Jobber client's billing address (the control API replaces whole values).
fn set_address(daemon: &TestDaemon, client: &str, part: &str, value: &str) {
    let mut address = record(daemon, "jobber", "clients", client)["fields"]["billingAddress"].clone();
    address[part] = value.into();
    patch(
        daemon,
        "jobber",
        "clients",
        client,
        json!({ "billingAddress": address }),
    );
}

fn quiet(daemon: &TestDaemon, mapping: &str) {
    let job = run(daemon, mapping);
    assert_eq!(
        (stat(&job, "created"), stat(&job, "updated"), stat(&job, "conflicts")),
        (0, 0, 0),
        "{job}"
    );
}

#[test]
fn a_one_way_pair_in_a_two_way_mapping_is_never_written_back() {
    let daemon = sandbox(40, &[]);
    no_search_delay(&daemon);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let mapping = daemon.create_mapping(&two_way(&hubspot, &jobber, "newest_wins"));
    let first = run(&daemon, &mapping);
    assert_eq!((stat(&first, "failed"), stat(&first, "conflicts")), (0, 0), "{first}");
    quiet(&daemon, &mapping);
    let (contact, client) = linked_pair(&daemon);
    let lastname = hubspot_field(&daemon, &contact, "lastname");

    // The target_to_source pair: Jobber's province flows back, HubSpot's state does not go out.
    set_address(&daemon, &client, "province", "WA");
    let job = run(&daemon, &mapping);
    assert_eq!(stat(&job, "updated"), 1, "{job}");
    assert_eq!(hubspot_field(&daemon, &contact, "state"), "WA");
    patch(&daemon, "hubspot", "contacts", &contact, json!({ "state": "OR" }));
    let job = run(&daemon, &mapping);
    assert_eq!(stat(&job, "updated"), 0, "{job}");
    assert_eq!(jobber_field(&daemon, &client, "billingAddress.province"), "WA");

    // targetFilter scopes what flows back: a client moved out of it is no longer read back.
    set_address(&daemon, &client, "city", "Buffalo");
    patch(&daemon, "jobber", "clients", &client, json!({ "firstName": "Outside" }));
    let job = run(&daemon, &mapping);
    assert_eq!((stat(&job, "updated"), stat(&job, "skipped")), (0, 1), "{job}");
    assert_ne!(hubspot_field(&daemon, &contact, "firstname"), "Outside");
    set_address(&daemon, &client, "city", "San Francisco");
    patch(&daemon, "jobber", "clients", &client, json!({ "firstName": "Ann" }));
    run(&daemon, &mapping);

    // Jobber's lastName does not flow back: nothing is written.
    patch(
        &daemon,
        "jobber",
        "clients",
        &client,
        json!({ "lastName": "Jobberside" }),
    );
    let job = run(&daemon, &mapping);
    assert_eq!((stat(&job, "updated"), stat(&job, "conflicts")), (0, 0), "{job}");
    assert_eq!(hubspot_field(&daemon, &contact, "lastname"), lastname);

    // A two-way field does.
    patch(&daemon, "jobber", "clients", &client, json!({ "firstName": "Zed" }));
    let job = run(&daemon, &mapping);
    assert_eq!(stat(&job, "updated"), 1, "{job}");
    assert_eq!(hubspot_field(&daemon, &contact, "firstname"), "Zed");

    // HubSpot's lastname flows forward, over Jobber's edit.
    patch(
        &daemon,
        "hubspot",
        "contacts",
        &contact,
        json!({ "lastname": "Hubside" }),
    );
    let job = run(&daemon, &mapping);
    assert_eq!(stat(&job, "updated"), 1, "{job}");
    assert_eq!(jobber_field(&daemon, &client, "lastName"), "Hubside");
    quiet(&daemon, &mapping);

    // A pair whose transform has no inverse cannot flow back; as a one-way pair it can.
    let no_inverse = two_way(&hubspot, &jobber, "newest_wins").replace(
        "{ sourceField: city, targetField: billingAddress.city }",
        "{ sourceField: \"city,state\", targetField: billingAddress.city, transform: 'concatenate(sep=\", \")' }",
    );
    let file = daemon.data_dir().join("no-inverse.yaml");
    std::fs::write(&file, &no_inverse).unwrap();
    let refused = daemon.ctl(&["mapping", "create", "-f", file.to_str().unwrap()]);
    assert!(!refused.success());
    assert!(
        refused.stderr().contains("fieldPairs[4].transform") && refused.stderr().contains("source_to_target"),
        "{}",
        refused.stderr()
    );
    let one_way = no_inverse.replace("\")' }", "\")', direction: source_to_target }");
    std::fs::write(&file, &one_way).unwrap();
    let accepted = daemon.ctl(&["mapping", "create", "-f", file.to_str().unwrap()]);
    assert!(accepted.success(), "{}", accepted.stderr());
}

#[test]
fn each_conflict_policy_decides_and_every_conflict_is_listed() {
    let daemon = sandbox(40, &[]);
    no_search_delay(&daemon);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let mapping = daemon.create_mapping(&two_way(&hubspot, &jobber, "newest_wins"));
    run(&daemon, &mapping);
    quiet(&daemon, &mapping);
    let (contact, client) = linked_pair(&daemon);

    // Different fields changed on each side merge: no conflict, both kept.
    patch(
        &daemon,
        "hubspot",
        "contacts",
        &contact,
        json!({ "firstname": "Merged" }),
    );
    set_address(&daemon, &client, "city", "New York");
    let job = run(&daemon, &mapping);
    assert_eq!(stat(&job, "conflicts"), 0, "{job}");
    assert_eq!(jobber_field(&daemon, &client, "firstName"), "Merged");
    assert_eq!(hubspot_field(&daemon, &contact, "city"), "New York");
    quiet(&daemon, &mapping);

    let conflict_round = |policy: &str, first: &str, winner: &str| -> Value {
        assert!(
            daemon
                .ctl(&["mapping", "update", &mapping, "--conflict-policy", policy])
                .success()
        );
        patch(
            &daemon,
            "hubspot",
            "contacts",
            &contact,
            json!({ "firstname": format!("Hub-{policy}") }),
        );
        if first == "jobber-later" {
            // Jobber's clock a minute ahead: its edit is the newer one beyond any skew margin.
            let url = format!("{}/_control/jobber/clock", daemon.sandbox_url());
            assert_eq!(http_post_json(&url, json!({ "advance_ms": 60_000 })), 200);
        }
        patch(
            &daemon,
            "jobber",
            "clients",
            &client,
            json!({ "firstName": format!("Job-{policy}") }),
        );
        let job = run(&daemon, &mapping);
        assert_eq!(stat(&job, "conflicts"), 1, "{policy}: {job}");
        let expected = match winner {
            "source" => format!("Hub-{policy}"),
            _ => format!("Job-{policy}"),
        };
        assert_eq!(
            hubspot_field(&daemon, &contact, "firstname"),
            expected.as_str(),
            "{policy}"
        );
        assert_eq!(
            jobber_field(&daemon, &client, "firstName"),
            expected.as_str(),
            "{policy}"
        );
        let listed = daemon.ctl_json(&["sync", "conflicts", job["id"].as_str().unwrap()]);
        assert_eq!(listed.as_array().unwrap().len(), 1, "{policy}: {listed}");
        let row = &listed[0];
        assert_eq!(
            (
                &row["sourceId"],
                &row["targetId"],
                &row["sourceValue"],
                &row["targetValue"],
                &row["policy"],
                &row["winner"]
            ),
            (
                &json!(contact),
                &json!(client),
                &json!(format!("Hub-{policy}")),
                &json!(format!("Job-{policy}")),
                &json!(policy),
                &json!(winner)
            ),
            "{policy}: {row}"
        );
        quiet(&daemon, &mapping);
        job
    };
    conflict_round("source_wins", "", "source");
    let lost = conflict_round("target_wins", "", "target");
    // The pass that lost lists its record as skipped; the conflict itself is not an error row.
    let errors = daemon.ctl_json(&["sync", "errors", lost["id"].as_str().unwrap()]);
    assert_eq!(errors.as_array().unwrap().len(), 1, "{errors}");
    assert_eq!(errors[0]["severity"], "info", "{errors}");
    assert!(
        errors[0]["message"].as_str().unwrap().contains("sync conflicts"),
        "{errors}"
    );
    let newest = conflict_round("newest_wins", "jobber-later", "target");
    let table = daemon.ctl(&["sync", "conflicts", newest["id"].as_str().unwrap()]);
    assert!(
        table.stdout().contains("Hub-newest_wins") && table.stdout().contains("target"),
        "{}",
        table.stdout()
    );

    // A pair's own policy overrides the mapping's.
    patch(
        &daemon,
        "hubspot",
        "contacts",
        &contact,
        json!({ "company": "Hub company" }),
    );
    patch(
        &daemon,
        "jobber",
        "clients",
        &client,
        json!({ "companyName": "Job company" }),
    );
    let job = run(&daemon, &mapping);
    assert_eq!(stat(&job, "conflicts"), 1, "{job}");
    assert_eq!(jobber_field(&daemon, &client, "companyName"), "Hub company");
    assert_eq!(hubspot_field(&daemon, &contact, "company"), "Hub company");
}

/// A mapping reading `object` of `provider` into HubSpot contacts, with `filter`.
fn into_hubspot(daemon: &TestDaemon, provider: &str, object: &str, pairs: &str, filter: &str) -> String {
    let source = daemon.connect(provider)["id"].as_str().unwrap().to_owned();
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    daemon.create_mapping(&format!(
        "name: {provider} filtered\nsource: {{ connection: {source}, object: {object} }}\ntarget: {{ connection: {hubspot}, object: contacts }}\nfilter: {filter}\nfieldPairs:\n{pairs}matchKey: email\n"
    ))
}

#[test]
fn salesforce_filters_go_into_the_soql_where_clause() {
    let daemon = sandbox(40, &[]);
    let mapping = into_hubspot(
        &daemon,
        "salesforce",
        "Contact",
        "  - { sourceField: Email, targetField: email }\n  - { sourceField: LastName, targetField: lastname }\n",
        "{all: [{field: MailingCity, op: in, value: [Buffalo, Albany]}, {field: Email, op: contains, value: \"o\"}, {field: Phone, op: is_known}, {field: Title, op: not_equals, value: Owner}]}",
    );
    let contacts = records(&daemon, "salesforce", "Contact");
    let expected = ids_where(&contacts, |f| {
        ["Buffalo", "Albany"].contains(&f["MailingCity"].as_str().unwrap_or_default())
            && f["Email"].as_str().unwrap_or_default().contains('o')
            && f["Phone"].as_str().is_some_and(|p| !p.is_empty())
            && f["Title"] != "Owner"
    });
    assert!(!expected.is_empty() && expected.len() < contacts.len());
    let mut seen = 0;
    requests(&daemon, "salesforce", &mut seen);
    assert_eq!(sorted(preview_ids(&daemon, &mapping, 50)), expected);
    let queries = requests(&daemon, "salesforce", &mut seen);
    let soql = queries
        .iter()
        .flat_map(|r| url::form_urlencoded::parse(r["query"].as_str().unwrap().as_bytes()).into_owned())
        .find(|(name, value)| name == "q" && value.contains("FROM Contact"))
        .map(|(_, value)| value)
        .expect("a SOQL query");
    assert!(
        soql.contains(
            "WHERE (MailingCity IN ('Buffalo', 'Albany') AND Email LIKE '%o%' AND Phone != null AND Title != 'Owner')"
        ),
        "{soql}"
    );
}

#[test]
fn pipedrive_and_jobber_filters_use_their_list_filters_and_the_engine_does_the_rest() {
    let daemon = sandbox(40, &[]);
    // Pipedrive: owner_id is a list parameter; a date comparison is the engine's.
    let mapping = into_hubspot(
        &daemon,
        "pipedrive",
        "persons",
        "  - { sourceField: email, targetField: email }\n  - { sourceField: last_name, targetField: lastname }\n",
        "{all: [{field: owner_id, op: equals, value: 10001}, {field: name, op: contains, value: an}, {field: update_time, op: before, value: 2025-01-01T00:00:20Z}]}",
    );
    let persons = records(&daemon, "pipedrive", "persons");
    let expected: Vec<String> = sorted(
        persons
            .iter()
            .filter(|p| {
                p["fields"]["name"].as_str().unwrap().to_lowercase().contains("an")
                    && p["updated_at"].as_str().unwrap() < "2025-01-01T00:00:20"
            })
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect(),
    );
    assert!(!expected.is_empty() && expected.len() < persons.len(), "{expected:?}");
    let mut seen = 0;
    requests(&daemon, "pipedrive", &mut seen);
    assert_eq!(sorted(preview_ids(&daemon, &mapping, 50)), expected);
    let lists = requests(&daemon, "pipedrive", &mut seen);
    assert!(
        lists
            .iter()
            .any(|r| r["path"] == "/api/v2/persons" && r["query"].as_str().unwrap().contains("owner_id=10001")),
        "{lists:?}"
    );

    // Jobber: isLead goes into ClientFilterAttributes; a name condition is the engine's.
    let mapping = into_hubspot(
        &daemon,
        "jobber",
        "clients",
        "  - { sourceField: email, targetField: email }\n  - { sourceField: lastName, targetField: lastname }\n",
        "{all: [{field: isLead, op: equals, value: true}, {field: firstName, op: is_known}, {field: lastName, op: not_equals, value: Smith}]}",
    );
    let clients = records(&daemon, "jobber", "clients");
    let expected = ids_where(&clients, |f| f["isLead"] == true && f["lastName"] != "Smith");
    assert!(!expected.is_empty() && expected.len() < clients.len());
    let mut seen = 0;
    requests(&daemon, "jobber", &mut seen);
    let previewed = sorted(preview_ids(&daemon, &mapping, 50));
    assert_eq!(previewed, expected);
    let queries = requests(&daemon, "jobber", &mut seen);
    let body: Value = serde_json::from_str(queries.last().unwrap()["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["variables"]["filter"], json!({ "isLead": true }), "{body}");
}

#[test]
fn filters_are_checked_against_the_field_catalog() {
    let daemon = sandbox(5, &[]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let text = san_francisco_mapping(&hubspot, &jobber, "").replace(
        "filter: {all: [{field: city, op: equals, value: \"San Francisco\"}]}",
        "filter: {all: [{field: town, op: equals, value: x}, {field: city, op: before, value: 3}, {any: []}]}\ntargetFilter: {field: firstName, op: is_known}",
    );
    let file = daemon.data_dir().join("bad.yaml");
    std::fs::write(&file, text).unwrap();
    let refused = daemon.ctl(&["mapping", "create", "-f", file.to_str().unwrap()]);
    assert!(!refused.success());
    let stderr = refused.stderr();
    for expected in [
        "filter.all[2]: give either a condition (field, op, value) or one group",
        "targetFilter: a source_to_target mapping never reads its target",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    let fixed = std::fs::read_to_string(&file)
        .unwrap()
        .replace(", {any: []}", "")
        .replace("targetFilter: {field: firstName, op: is_known}\n", "");
    std::fs::write(&file, fixed).unwrap();
    let refused = daemon.ctl(&["mapping", "create", "-f", file.to_str().unwrap()]);
    let stderr = refused.stderr();
    for expected in [
        "filter.all[0].field: unknown field \"town\" on hubspot contacts",
        "filter.all[1].op: before compares dates or numbers",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    let listed = daemon.ctl_json(&["mapping", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 0, "nothing stored: {listed}");
}

/// What the provider's list request must (or must not) carry for a filter.
enum Asked {
    /// Text the request (path, decoded query, body) holds.
    With(&'static str),
    /// Text it does not hold: the condition stays with fluxd.
    Without(&'static str),
}

/// The requests since the last look, as one text: method, path, decoded query, body.
fn asked(daemon: &TestDaemon, provider: &str, seen: &mut usize) -> String {
    requests(daemon, provider, seen)
        .iter()
        .map(|r| {
            let query: Vec<String> = url::form_urlencoded::parse(r["query"].as_str().unwrap().as_bytes())
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!(
                "{} {} {} {}",
                r["method"],
                r["path"],
                query.join("&"),
                r["body"].as_str().unwrap()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Previews a mapping of `object` with each filter; the previewed records must be exactly
/// those `keep` admits among the simulator's, and the list request must show the pushdown.
#[allow(clippy::type_complexity)]
fn check_operators(
    daemon: &TestDaemon,
    provider: &str,
    object: &str,
    pairs: &str,
    cases: &[(&str, &dyn Fn(&Value) -> bool, Asked)],
) {
    let stored = records(daemon, provider, object);
    let mut seen = 0;
    for (filter, keep, pushdown) in cases {
        let mapping = into_hubspot(daemon, provider, object, pairs, filter);
        let expected: Vec<String> = sorted(
            stored
                .iter()
                .filter(|r| keep(r))
                .map(|r| r["id"].as_str().unwrap().to_owned())
                .collect(),
        );
        assert!(
            !expected.is_empty() && expected.len() < stored.len(),
            "{provider} {filter}: a case must tell records apart ({} of {})",
            expected.len(),
            stored.len()
        );
        asked(daemon, provider, &mut seen);
        let got = sorted(preview_ids(daemon, &mapping, 50));
        assert_eq!(got, expected, "{provider} {filter}");
        let sent = asked(daemon, provider, &mut seen);
        match pushdown {
            Asked::With(text) => assert!(sent.contains(text), "{provider} {filter}: {text:?} not in {sent}"),
            Asked::Without(text) => assert!(!sent.contains(text), "{provider} {filter}: {text:?} in {sent}"),
        }
    }
}

fn text<'a>(record: &'a Value, field: &str) -> &'a str {
    record["fields"][field].as_str().unwrap_or_default()
}

fn created_before(record: &Value, at: &str) -> bool {
    record["created_at"].as_str().unwrap() < at
}

#[test]
fn every_operator_against_hubspot_and_salesforce_pushed_into_their_queries() {
    let daemon = sandbox(40, &[]);
    no_search_delay(&daemon);
    let contacts = records(&daemon, "hubspot", "contacts");
    let untitled = contacts[3]["id"].as_str().unwrap().to_owned();
    patch(&daemon, "hubspot", "contacts", &untitled, json!({ "jobtitle": null }));
    let pairs =
        "  - { sourceField: email, targetField: email }\n  - { sourceField: lastname, targetField: lastname }\n";
    let untitled_id = untitled.clone();
    check_operators(
        &daemon,
        "hubspot",
        "contacts",
        pairs,
        &[
            (
                "{field: city, op: equals, value: brooklyn}",
                &|r| text(r, "city") == "Brooklyn",
                Asked::With(r#""operator":"EQ","propertyName":"city","value":"brooklyn""#),
            ),
            (
                "{field: city, op: not_equals, value: Brooklyn}",
                &|r| text(r, "city") != "Brooklyn",
                Asked::Without("filterGroups"),
            ),
            (
                "{field: lifecyclestage, op: in, value: [Customer]}",
                &|r| text(r, "lifecyclestage") == "customer",
                Asked::With(r#""operator":"IN","propertyName":"lifecyclestage","values":["customer"]"#),
            ),
            (
                "{field: email, op: contains, value: ADA}",
                &|r| text(r, "email").contains("ada"),
                Asked::Without("filterGroups"),
            ),
            (
                "{field: jobtitle, op: is_known}",
                &|r| r["id"] != untitled_id.as_str(),
                Asked::With(r#""operator":"HAS_PROPERTY""#),
            ),
            (
                "{field: jobtitle, op: is_unknown}",
                &|r| r["id"] == untitled_id.as_str(),
                Asked::With(r#""operator":"NOT_HAS_PROPERTY""#),
            ),
            (
                "{field: createdate, op: before, value: '2025-01-01T00:00:10Z'}",
                &|r| created_before(r, "2025-01-01T00:00:10"),
                Asked::With(r#""operator":"LT","propertyName":"createdate","value":"1735689610000""#),
            ),
            (
                "{field: hs_object_id, op: after, value: 1030}",
                &|r| r["id"].as_str().unwrap().parse::<u64>().unwrap() > 1030,
                Asked::With(r#""operator":"GT","propertyName":"hs_object_id","value":"1030""#),
            ),
        ],
    );

    let people = records(&daemon, "salesforce", "Contact");
    let untitled = people[5]["id"].as_str().unwrap().to_owned();
    patch(&daemon, "salesforce", "Contact", &untitled, json!({ "Title": null }));
    let pairs =
        "  - { sourceField: Email, targetField: email }\n  - { sourceField: LastName, targetField: lastname }\n";
    let untitled_id = untitled.clone();
    check_operators(
        &daemon,
        "salesforce",
        "Contact",
        pairs,
        &[
            (
                "{field: MailingCity, op: equals, value: Brooklyn}",
                &|r| text(r, "MailingCity") == "Brooklyn",
                Asked::With("WHERE MailingCity = 'Brooklyn'"),
            ),
            (
                "{field: MailingCity, op: not_equals, value: Brooklyn}",
                &|r| text(r, "MailingCity") != "Brooklyn",
                Asked::With("WHERE MailingCity != 'Brooklyn'"),
            ),
            (
                "{field: MailingState, op: in, value: [NY]}",
                &|r| text(r, "MailingState") == "NY",
                Asked::With("WHERE MailingState IN ('NY')"),
            ),
            (
                "{field: Email, op: contains, value: MU}",
                &|r| text(r, "Email").contains("mu"),
                Asked::With("WHERE Email LIKE '%MU%'"),
            ),
            (
                "{field: Title, op: is_known}",
                &|r| r["id"] != untitled_id.as_str(),
                Asked::With("WHERE Title != null"),
            ),
            (
                "{field: Title, op: is_unknown}",
                &|r| r["id"] == untitled_id.as_str(),
                Asked::With("WHERE Title = null"),
            ),
            (
                "{field: CreatedDate, op: before, value: 2025-01-01T00:00:10Z}",
                &|r| created_before(r, "2025-01-01T00:00:10"),
                Asked::With("WHERE CreatedDate < 2025-01-01T00:00:10Z"),
            ),
            (
                "{field: CreatedDate, op: after, value: 2025-01-01T00:00:10Z}",
                &|r| !created_before(r, "2025-01-01T00:00:10.001"),
                Asked::With("WHERE CreatedDate > 2025-01-01T00:00:10Z"),
            ),
        ],
    );
}

#[test]
fn every_operator_against_pipedrive_and_jobber_with_their_list_filters() {
    let daemon = sandbox(40, &[]);
    let persons = records(&daemon, "pipedrive", "persons");
    let untitled = persons[2]["id"].as_str().unwrap().to_owned();
    patch(&daemon, "pipedrive", "persons", &untitled, json!({ "job_title": null }));
    let pairs =
        "  - { sourceField: email, targetField: email }\n  - { sourceField: last_name, targetField: lastname }\n";
    let untitled_id = untitled.clone();
    check_operators(
        &daemon,
        "pipedrive",
        "persons",
        pairs,
        &[
            (
                "{field: org_id, op: equals, value: 2}",
                &|r| r["fields"]["org_id"] == 2,
                Asked::With("org_id=2"),
            ),
            (
                "{field: job_title, op: not_equals, value: owner}",
                &|r| text(r, "job_title") != "Owner",
                Asked::Without("owner_id="),
            ),
            (
                "{field: job_title, op: in, value: [Owner, Property Manager]}",
                &|r| ["Owner", "Property Manager"].contains(&text(r, "job_title")),
                Asked::Without("org_id="),
            ),
            (
                "{field: name, op: contains, value: AN}",
                &|r| text(r, "name").to_lowercase().contains("an"),
                Asked::Without("org_id="),
            ),
            (
                "{field: job_title, op: is_known}",
                &|r| r["id"] != untitled_id.as_str(),
                Asked::Without("org_id="),
            ),
            (
                "{field: job_title, op: is_unknown}",
                &|r| r["id"] == untitled_id.as_str(),
                Asked::Without("org_id="),
            ),
            (
                "{field: add_time, op: before, value: 2025-01-01T00:00:10Z}",
                &|r| created_before(r, "2025-01-01T00:00:10"),
                Asked::Without("org_id="),
            ),
            (
                "{field: add_time, op: after, value: 2025-01-01T00:00:10Z}",
                &|r| !created_before(r, "2025-01-01T00:00:10.001"),
                Asked::Without("org_id="),
            ),
        ],
    );

    let clients = records(&daemon, "jobber", "clients");
    let solo = clients[4]["id"].as_str().unwrap().to_owned();
    patch(&daemon, "jobber", "clients", &solo, json!({ "companyName": null }));
    let pairs =
        "  - { sourceField: email, targetField: email }\n  - { sourceField: lastName, targetField: lastname }\n";
    let solo_id = solo.clone();
    check_operators(
        &daemon,
        "jobber",
        "clients",
        pairs,
        &[
            (
                "{field: isLead, op: equals, value: true}",
                &|r| r["fields"]["isLead"] == true,
                Asked::With(r#""filter":{"isLead":true}"#),
            ),
            (
                "{field: firstName, op: not_equals, value: ada}",
                &|r| text(r, "firstName") != "Ada",
                Asked::Without(r#""filter""#),
            ),
            (
                "{field: firstName, op: in, value: [Ada, Mia]}",
                &|r| ["Ada", "Mia"].contains(&text(r, "firstName")),
                Asked::Without(r#""filter""#),
            ),
            (
                "{field: companyName, op: contains, value: ACME}",
                &|r| text(r, "companyName").contains("Acme"),
                Asked::Without(r#""filter""#),
            ),
            (
                "{field: companyName, op: is_known}",
                &|r| r["id"] != solo_id.as_str(),
                Asked::Without(r#""filter""#),
            ),
            (
                "{field: companyName, op: is_unknown}",
                &|r| r["id"] == solo_id.as_str(),
                Asked::Without(r#""filter""#),
            ),
            (
                "{field: createdAt, op: before, value: 2025-01-01T00:00:10Z}",
                &|r| created_before(r, "2025-01-01T00:00:10"),
                Asked::With(r#""filter":{"createdAt":{"before":"2025-01-01T00:00:10Z"}}"#),
            ),
            (
                "{field: createdAt, op: after, value: 2025-01-01T00:00:10Z}",
                &|r| !created_before(r, "2025-01-01T00:00:10.001"),
                Asked::With(r#""filter":{"createdAt":{"after":"2025-01-01T00:00:10Z"}}"#),
            ),
        ],
    );
}

/// Sets a Jobber client's primary email (the control API replaces the whole list).
fn set_jobber_email(daemon: &TestDaemon, client: &str, email: &str) {
    let mut emails = record(daemon, "jobber", "clients", client)["fields"]["emails"].clone();
    emails[0]["address"] = email.into();
    patch(daemon, "jobber", "clients", client, json!({ "emails": emails }));
}

#[test]
fn one_sided_edits_are_not_conflicts_whatever_the_transforms_normalize() {
    let daemon = sandbox(40, &[]);
    no_search_delay(&daemon);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let mapping = daemon.create_mapping(&two_way(&hubspot, &jobber, "source_wins"));
    run(&daemon, &mapping);
    quiet(&daemon, &mapping);
    let (contact, client) = linked_pair(&daemon);

    // HubSpot's email in mixed case reaches Jobber lowercased (the pair's transform): the two
    // sides now hold different text for the same synced value.
    patch(
        &daemon,
        "hubspot",
        "contacts",
        &contact,
        json!({ "email": "Mixed.Case@Example.com" }),
    );
    let job = run(&daemon, &mapping);
    assert_eq!(stat(&job, "updated"), 1, "{job}");
    assert_eq!(
        record(&daemon, "jobber", "clients", &client)["fields"]["emails"][0]["address"],
        "mixed.case@example.com"
    );
    quiet(&daemon, &mapping);
    // An edit in Jobber alone is no conflict, even under source_wins: it flows back.
    set_jobber_email(&daemon, &client, "new.mail@example.com");
    let job = run(&daemon, &mapping);
    assert_eq!((stat(&job, "updated"), stat(&job, "conflicts")), (1, 0), "{job}");
    assert_eq!(hubspot_field(&daemon, &contact, "email"), "new.mail@example.com");
    quiet(&daemon, &mapping);

    // A field HubSpot empties is not cleared in Jobber (no overwriteWithEmpty); when HubSpot
    // sets it again, that is no conflict either, under target_wins.
    assert!(
        daemon
            .ctl(&["mapping", "update", &mapping, "--conflict-policy", "target_wins"])
            .success()
    );
    let company = jobber_field(&daemon, &client, "companyName");
    patch(&daemon, "hubspot", "contacts", &contact, json!({ "company": null }));
    let job = run(&daemon, &mapping);
    assert_eq!((stat(&job, "updated"), stat(&job, "conflicts")), (0, 0), "{job}");
    assert_eq!(jobber_field(&daemon, &client, "companyName"), company);
    patch(
        &daemon,
        "hubspot",
        "contacts",
        &contact,
        json!({ "company": "Later Co" }),
    );
    let job = run(&daemon, &mapping);
    assert_eq!((stat(&job, "updated"), stat(&job, "conflicts")), (1, 0), "{job}");
    assert_eq!(jobber_field(&daemon, &client, "companyName"), "Later Co");
    quiet(&daemon, &mapping);
}

/// The finished jobs inbound webhooks started for `mapping`, once there are `count`.
fn webhook_jobs(daemon: &TestDaemon, mapping: &str, count: usize) -> Vec<Value> {
    common::wait_for(std::time::Duration::from_secs(20), || {
        let jobs: Vec<Value> = daemon
            .ctl_json(&["sync", "list", "--mapping", mapping])
            .as_array()
            .unwrap()
            .iter()
            .filter(|job| job["trigger"] == "webhook" && job["finishedAt"].is_string())
            .cloned()
            .collect();
        (jobs.len() >= count).then_some(jobs)
    })
    .unwrap_or_else(|| panic!("{count} webhook jobs did not finish: {}", daemon.log()))
}

#[test]
fn changes_arriving_by_webhook_are_filtered_like_listed_ones() {
    let daemon = sandbox(40, &[]);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let mapping = daemon.create_mapping(&san_francisco_mapping(&hubspot, &jobber, ""));
    run(&daemon, &mapping);
    let url = daemon.ctl_json(&["connection", "webhooks", &hubspot])["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let hooks = format!("{}/_control/hubspot/webhooks", daemon.sandbox_url());
    assert_eq!(common::http_put_json(&hooks, json!({ "targetUrl": url })), 200);
    let contacts = records(&daemon, "hubspot", "contacts");
    let outside = contacts.iter().find(|c| c["fields"]["city"] == "Albany").unwrap();
    patch(
        &daemon,
        "hubspot",
        "contacts",
        outside["id"].as_str().unwrap(),
        json!({ "firstname": "Far" }),
    );
    let jobs = webhook_jobs(&daemon, &mapping, 1);
    assert_eq!(
        (stat(&jobs[0], "filtered"), stat(&jobs[0], "updated")),
        (1, 0),
        "{jobs:?}"
    );

    let inside = contacts
        .iter()
        .find(|c| c["fields"]["city"] == "San Francisco")
        .unwrap();
    let email = inside["fields"]["email"].as_str().unwrap();
    patch(
        &daemon,
        "hubspot",
        "contacts",
        inside["id"].as_str().unwrap(),
        json!({ "city": "Oakland", "firstname": "Moved" }),
    );
    let jobs = webhook_jobs(&daemon, &mapping, 2);
    let moved = jobs
        .iter()
        .find(|j| stat(j, "skipped") == 1)
        .expect("a job skipped the moved contact");
    assert_eq!(stat(moved, "updated"), 0, "{jobs:?}");
    let clients = records(&daemon, "jobber", "clients");
    assert_ne!(
        jobber_client_by_email(&clients, email).unwrap()["fields"]["firstName"],
        "Moved"
    );
}

#[test]
fn a_write_of_one_part_of_a_split_name_is_not_echoed_back() {
    let daemon = sandbox(20, &[]);
    no_search_delay(&daemon);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let pipedrive = daemon.connect("pipedrive")["id"].as_str().unwrap().to_owned();
    let mapping = daemon.create_mapping(&format!(
        "name: names\nsource: {{connection: {hubspot}, object: contacts}}\ntarget: {{connection: {pipedrive}, object: persons}}\ndirection: bidirectional\nfieldPairs:\n  - {{sourceField: \"firstname,lastname\", targetField: name, transform: concatenate, reverseTransform: split_name}}\n  - {{sourceField: email, targetField: email, transform: lowercase}}\n"
    ));
    run(&daemon, &mapping);
    quiet(&daemon, &mapping);
    let persons = records(&daemon, "pipedrive", "persons");
    let contacts = records(&daemon, "hubspot", "contacts");
    let (person, contact) = persons
        .iter()
        .find_map(|p| {
            let email = p["fields"]["emails"][0]["value"].as_str()?;
            let contact = contacts.iter().find(|c| c["fields"]["email"] == email)?;
            Some((p["id"].as_str()?.to_owned(), contact["id"].as_str()?.to_owned()))
        })
        .expect("a person linked to a contact");
    let lastname = hubspot_field(&daemon, &contact, "lastname");
    let name = format!("Eve {}", lastname.as_str().unwrap());
    patch(&daemon, "pipedrive", "persons", &person, json!({ "name": name }));
    // Only HubSpot's firstname changes; the write determines the whole name on the way back.
    let job = run(&daemon, &mapping);
    assert_eq!(stat(&job, "updated"), 1, "{job}");
    assert_eq!(hubspot_field(&daemon, &contact, "firstname"), "Eve");
    quiet(&daemon, &mapping);
}

#[test]
fn a_one_way_pair_reading_a_two_way_field_follows_changes_that_came_from_the_other_side() {
    let daemon = sandbox(20, &[]);
    no_search_delay(&daemon);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let mapping = daemon.create_mapping(&format!(
        "name: shared\nsource: {{connection: {hubspot}, object: contacts}}\ntarget: {{connection: {jobber}, object: clients}}\ndirection: bidirectional\nfieldPairs:\n  - {{sourceField: email, targetField: email, transform: lowercase}}\n  - {{sourceField: firstname, targetField: firstName}}\n  - {{sourceField: firstname, targetField: companyName, direction: source_to_target}}\nmatchKey: email\n"
    ));
    run(&daemon, &mapping);
    // Contacts created from Jobber clients feed companyName only on the next forward pass.
    let second = run(&daemon, &mapping);
    assert_eq!(stat(&second, "updated"), 10, "{second}");
    quiet(&daemon, &mapping);
    let contacts = records(&daemon, "hubspot", "contacts");
    let clients = records(&daemon, "jobber", "clients");
    let (contact, client) = contacts
        .iter()
        .find_map(|c| {
            let client = jobber_client_by_email(&clients, c["fields"]["email"].as_str()?)?;
            Some((c["id"].as_str()?.to_owned(), client["id"].as_str()?.to_owned()))
        })
        .unwrap();
    // Jobber's firstName flows back into HubSpot's firstname, which then feeds companyName.
    patch(&daemon, "jobber", "clients", &client, json!({ "firstName": "Zed" }));
    run(&daemon, &mapping);
    assert_eq!(hubspot_field(&daemon, &contact, "firstname"), "Zed");
    run(&daemon, &mapping);
    assert_eq!(jobber_field(&daemon, &client, "companyName"), "Zed");
    quiet(&daemon, &mapping);
}

#[test]
fn a_won_conflict_keeps_the_winners_whole_value() {
    let daemon = sandbox(20, &[]);
    no_search_delay(&daemon);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let pipedrive = daemon.connect("pipedrive")["id"].as_str().unwrap().to_owned();
    // Pipedrive's name split into HubSpot's first and last names; Pipedrive wins conflicts.
    let mapping = daemon.create_mapping(&format!(
        "name: names\nsource: {{connection: {pipedrive}, object: persons}}\ntarget: {{connection: {hubspot}, object: contacts}}\ndirection: bidirectional\nconflictPolicy: source_wins\nfieldPairs:\n  - {{sourceField: name, targetField: firstname, transform: 'split_name(part=first)', reverseTransform: concatenate}}\n  - {{sourceField: name, targetField: lastname, transform: 'split_name(part=last)', reverseTransform: concatenate}}\n  - {{sourceField: email, targetField: email, transform: lowercase}}\n  - {{sourceField: job_title, targetField: jobtitle, overwriteWithEmpty: false}}\n"
    ));
    run(&daemon, &mapping);
    quiet(&daemon, &mapping);
    let persons = records(&daemon, "pipedrive", "persons");
    let contacts = records(&daemon, "hubspot", "contacts");
    let (person, contact) = persons
        .iter()
        .find_map(|p| {
            let email = p["fields"]["emails"][0]["value"].as_str()?;
            let contact = contacts.iter().find(|c| c["fields"]["email"] == email)?;
            Some((p["id"].as_str()?.to_owned(), contact["id"].as_str()?.to_owned()))
        })
        .unwrap();
    let last = hubspot_field(&daemon, &contact, "lastname")
        .as_str()
        .unwrap()
        .to_owned();
    // Pipedrive changes the first name only, HubSpot the whole name: Pipedrive's whole name
    // wins, not its first name with HubSpot's last.
    patch(
        &daemon,
        "pipedrive",
        "persons",
        &person,
        json!({ "name": format!("Maria {last}") }),
    );
    patch(
        &daemon,
        "hubspot",
        "contacts",
        &contact,
        json!({ "firstname": "Molly", "lastname": "Jones" }),
    );
    let job = run(&daemon, &mapping);
    assert_eq!(stat(&job, "conflicts"), 1, "{job}");
    assert_eq!(
        (
            hubspot_field(&daemon, &contact, "firstname"),
            hubspot_field(&daemon, &contact, "lastname")
        ),
        (json!("Maria"), json!(last.clone()))
    );
    assert_eq!(
        record(&daemon, "pipedrive", "persons", &person)["fields"]["name"],
        format!("Maria {last}")
    );
    quiet(&daemon, &mapping);

    // Pipedrive empties the job title while HubSpot changes it: Pipedrive wins but writes no
    // emptiness; HubSpot's title is not carried back over the emptied one either.
    patch(&daemon, "pipedrive", "persons", &person, json!({ "job_title": null }));
    patch(&daemon, "hubspot", "contacts", &contact, json!({ "jobtitle": "Chief" }));
    let job = run(&daemon, &mapping);
    assert_eq!(stat(&job, "conflicts"), 1, "{job}");
    assert!(record(&daemon, "pipedrive", "persons", &person)["fields"]["job_title"].is_null());
    quiet(&daemon, &mapping);
}

#[test]
fn a_conflict_with_a_record_outside_the_other_filter_goes_to_this_side() {
    let daemon = sandbox(40, &[]);
    no_search_delay(&daemon);
    let hubspot = daemon.connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = daemon.connect("jobber")["id"].as_str().unwrap().to_owned();
    let mapping = daemon.create_mapping(&two_way(&hubspot, &jobber, "target_wins"));
    run(&daemon, &mapping);
    quiet(&daemon, &mapping);
    let (contact, client) = linked_pair(&daemon);
    // The client leaves the target filter (never read back again) and both sides edit the
    // first name: Jobber's edit can never come back, so HubSpot's is written.
    set_address(&daemon, &client, "city", "Buffalo");
    patch(&daemon, "jobber", "clients", &client, json!({ "firstName": "Jobside" }));
    patch(
        &daemon,
        "hubspot",
        "contacts",
        &contact,
        json!({ "firstname": "Hubside" }),
    );
    let job = run(&daemon, &mapping);
    assert_eq!(stat(&job, "conflicts"), 0, "{job}");
    assert_eq!(jobber_field(&daemon, &client, "firstName"), "Hubside");
}
