//! Cluster mode: several `fluxd --store postgres://…` nodes on one database share one state,
//! split the organizations by lease, and take over a killed node's organizations — its
//! mappings' syncs resume and complete with every record exactly once, its webhook events
//! are delivered.
//!
//! These tests need a PostgreSQL server: `FLUXD_TEST_POSTGRES_URL` (`.ci/run` starts one with
//! `.ci/postgres`). Without it, each test says loudly that it did not run.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use common::receiver::Receiver;
use common::{StandaloneSandbox, TestDaemon, compare, emails, http_get_json, wait_for};
use serde_json::Value;

/// Lease term of the test nodes: short, so that a killed node's organizations move quickly.
const LEASE_SECONDS: u64 = 3;

/// A fresh database on the test server, or `None` (said loudly) without one.
fn database(test: &str) -> Option<String> {
    let Ok(server) = std::env::var("FLUXD_TEST_POSTGRES_URL") else {
        eprintln!(
            "\n*** SKIPPED cluster test {test}: FLUXD_TEST_POSTGRES_URL is not set (.ci/postgres starts a server) ***\n"
        );
        return None;
    };
    Some(common::new_database(&server, "fluxd_cluster"))
}

/// Nodes on one database, with one standalone sandbox as their providers.
struct Cluster {
    sandbox: StandaloneSandbox,
    config: PathBuf,
    _config_dir: tempfile::TempDir,
    store: String,
    nodes: Vec<TestDaemon>,
}

impl Cluster {
    /// `nodes` nodes on a fresh database; the sandbox seeds `records` people per provider and
    /// takes `sandbox_flags`.
    fn start(test: &str, nodes: usize, records: usize, sandbox_flags: &[&str]) -> Option<Cluster> {
        let store = database(test)?;
        let sandbox = StandaloneSandbox::start_with(records, sandbox_flags);
        let config_dir = tempfile::tempdir().unwrap();
        let config = sandbox.config_file(config_dir.path());
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, format!("{text}\n[cluster]\nlease_seconds = {LEASE_SECONDS}\n")).unwrap();
        let mut cluster = Cluster {
            sandbox,
            config,
            _config_dir: config_dir,
            store,
            nodes: Vec::new(),
        };
        for _ in 0..nodes {
            cluster.add_node();
        }
        Some(cluster)
    }

    /// Starts one more node; the first one creates the master key and the operator token,
    /// the others get copies (as an operator would provision them).
    fn add_node(&mut self) {
        let args = [
            "--config",
            self.config.to_str().unwrap(),
            "--store",
            &self.store,
            "--allow-private-webhooks",
        ];
        let files = match self.nodes.first() {
            None => Vec::new(),
            Some(first) => ["master.key", "admin.token"]
                .into_iter()
                .map(|name| (name, std::fs::read(first.data_dir().join(name)).unwrap()))
                .collect(),
        };
        self.nodes.push(TestDaemon::start_with_files(&args, "info", &files));
    }

    /// `fluxctl cluster nodes -o json` through node `via`.
    fn nodes_seen(&self, via: usize) -> Vec<Value> {
        self.nodes[via]
            .ctl_json(&["cluster", "nodes"])
            .as_array()
            .unwrap()
            .clone()
    }

    /// Waits until Jobber has had a client created through its API; returns how many.
    fn wait_until_writing(&self) -> usize {
        let creates = || {
            let stats = http_get_json(&format!("{}/_control/jobber/records-stats", self.sandbox.base));
            stats["objects"]["clients"]["creates"].as_u64().unwrap_or(0) as usize
        };
        wait_for(Duration::from_secs(60), || Some(creates()).filter(|n| *n > 0)).expect("the owner starts writing")
    }

    /// The database's clock now (the lease log's times are its).
    fn database_now(&self) -> f64 {
        let mut client = postgres::Client::connect(&self.store, postgres::NoTls).unwrap();
        client
            .query_one("SELECT extract(epoch FROM clock_timestamp())::float8", &[])
            .unwrap()
            .get(0)
    }

    /// The cluster node id of node `index` (its log says it).
    fn node_id(&self, index: usize) -> String {
        let log = self.nodes[index].log();
        let at = log.find("node_id=").expect("the node logs its id") + "node_id=".len();
        log[at..].split_whitespace().next().unwrap().to_owned()
    }

    /// Checks the lease log: the intervals in which nodes ran organization `org` (from
    /// `started` to `stopped` or `released`; the killed node's until `killed_at`, the others'
    /// until now) never overlap.
    fn assert_never_two_at_once(&self, org: &str, killed: &str, killed_at: f64) {
        let mut client = postgres::Client::connect(&self.store, postgres::NoTls).unwrap();
        let rows = client
            .query(
                "SELECT owner, generation, event, extract(epoch FROM at)::float8 FROM cluster_lease_log
                 WHERE org_id = $1 ORDER BY id",
                &[&org],
            )
            .unwrap();
        let mut runs: Vec<(String, i64, f64, f64)> = Vec::new();
        for row in &rows {
            let (owner, generation, event, at): (String, i64, String, f64) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            match event.as_str() {
                "started" => {
                    let end = if owner == killed { killed_at } else { f64::INFINITY };
                    runs.push((owner, generation, at, end));
                }
                "stopped" | "released" => {
                    if let Some(run) = runs.iter_mut().find(|r| r.0 == owner && r.1 == generation && r.3 > at) {
                        run.3 = at;
                    }
                }
                _ => {}
            }
        }
        assert!(runs.len() >= 2, "the organization moved: {runs:?}");
        for (i, a) in runs.iter().enumerate() {
            for b in &runs[i + 1..] {
                let overlap = a.0 != b.0 && a.2.max(b.2) < a.3.min(b.3);
                assert!(!overlap, "two nodes ran the organization at once: {a:?} and {b:?}");
            }
        }
        println!("lease log: {} runs of the organization, none overlapping", runs.len());
    }

    /// The index of the node holding the (one) organization's lease, once one does.
    fn owner(&self, via: usize) -> usize {
        wait_for(Duration::from_secs(20), || {
            let seen = self.nodes_seen(via);
            let holder = seen.iter().find(|n| n["state"] == "live" && n["leases"] == 1)?;
            self.nodes
                .iter()
                .position(|node| holder["grpcAddress"] == node.grpc.as_str())
        })
        .expect("a node claims the organization")
    }
}

fn sync_until_finished(node: &TestDaemon, job: &str) -> Value {
    wait_for(Duration::from_secs(120), || {
        let current = node.ctl_json(&["sync", "get", job]);
        let status = current["status"].as_str().unwrap_or_default();
        ["completed", "partial", "failed", "cancelled"]
            .contains(&status)
            .then_some(current)
    })
    .expect("the job ends")
}

fn mapping_spec(hubspot: &str, jobber: &str) -> String {
    format!(
        "name: cluster\nsource: {{ connection: {hubspot}, object: contacts }}\ntarget: {{ connection: {jobber}, object: clients }}\nfieldPairs:\n  - {{ sourceField: firstname, targetField: firstName }}\n  - {{ sourceField: email, targetField: email, transform: lowercase }}\nmatchKey: email\n"
    )
}

#[test]
fn two_nodes_share_one_state_and_a_sync_completes_after_the_lease_holder_is_killed() {
    let Some(mut cluster) = Cluster::start("two_nodes_share_one_state", 2, 50, &["--no-limits"]) else {
        return;
    };
    // A connection created through one node is listed by the other.
    let hubspot = cluster.nodes[0].connect("hubspot");
    let jobber = cluster.nodes[0].connect("jobber");
    let listed = cluster.nodes[1].ctl_json(&["connection", "list"]);
    let names: HashSet<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["accountName"].as_str().unwrap())
        .collect();
    assert!(names.contains(hubspot["accountName"].as_str().unwrap()), "{listed}");
    assert!(names.contains(jobber["accountName"].as_str().unwrap()), "{listed}");
    // A console session started on one node is served by the other (sealed with the shared key).
    let cookie = common::console_cookie(&cluster.nodes[0].http, &cluster.nodes[0].admin_token());
    let (status, _, page) = common::http_get_with(
        &format!("http://{}/connections", cluster.nodes[1].http),
        &[("cookie", &cookie)],
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(hubspot["accountName"].as_str().unwrap()), "{page}");

    // Both nodes are listed, live, by either.
    let live = wait_for(Duration::from_secs(10), || {
        let seen = cluster.nodes_seen(1);
        (seen.iter().filter(|n| n["state"] == "live").count() == 2).then_some(seen)
    })
    .expect("both nodes live");
    let addresses: HashSet<&str> = live.iter().map(|n| n["grpcAddress"].as_str().unwrap()).collect();
    assert!(addresses.contains(cluster.nodes[0].grpc.as_str()) && addresses.contains(cluster.nodes[1].grpc.as_str()));
    assert_eq!(live.iter().filter(|n| n["answering"] == true).count(), 1);

    // A mapping created through one node; a first sync run through the other completes.
    let mapping = cluster.nodes[1].create_mapping(&mapping_spec(
        hubspot["id"].as_str().unwrap(),
        jobber["id"].as_str().unwrap(),
    ));
    let owner = cluster.owner(0);
    let other = 1 - owner;
    let live_endpoints =
        |node: usize| common::metric(&cluster.nodes[node], "fluxd_live_actors", &["webhook_endpoints"]) as u64;
    // An endpoint created through the other node runs on the owner; deleted through the
    // other node, it stops there.
    let endpoint = cluster.nodes[other].ctl_json(&[
        "webhook",
        "create",
        "--url",
        "http://127.0.0.1:9/hook",
        "--events",
        "sync.*",
    ])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = wait_for(Duration::from_secs(10), || (live_endpoints(owner) == 1).then_some(()));
    assert!(started.is_some(), "the owner runs the endpoint");
    assert_eq!(live_endpoints(other), 0);
    assert!(cluster.nodes[other].ctl(&["webhook", "delete", &endpoint]).success());
    let stopped = wait_for(Duration::from_secs(10), || (live_endpoints(owner) == 0).then_some(()));
    assert!(stopped.is_some(), "the owner stopped the deleted endpoint's actor");

    let first = cluster.nodes[other].ctl_json(&["sync", "run", &mapping, "--yes", "--wait"]);
    assert_eq!(first["status"], "completed", "{first}");

    // kill -9 of the lease holder: a sync run through the other node completes.
    cluster.nodes[owner].kill9();
    let after = cluster.nodes[other].ctl_json(&["sync", "run", &mapping, "--full", "--wait"]);
    assert_eq!(after["status"], "completed", "{after}");
    assert_eq!(
        after["stats"]["created"], 0,
        "the first sync left every record in place: {after}"
    );
    let contacts = emails(&cluster.sandbox, "hubspot", "contacts");
    let clients = emails(&cluster.sandbox, "jobber", "clients");
    assert_eq!(
        compare(&contacts, &clients),
        (0, 0),
        "every contact exactly once in Jobber"
    );
    // The survivor holds the lease now (its metrics say so), and reports the killed node lost.
    assert_eq!(cluster.owner(other), other);
    assert_eq!(
        common::metric(&cluster.nodes[other], "fluxd_cluster_leases_held", &[]),
        1.0
    );
    let lost = wait_for(Duration::from_secs(4 * LEASE_SECONDS + 5), || {
        cluster
            .nodes_seen(other)
            .into_iter()
            .find(|n| n["grpcAddress"] == cluster.nodes[owner].grpc.as_str() && n["state"] == "lost")
    });
    assert!(lost.is_some(), "the killed node is reported lost");
}

#[test]
fn killing_the_owner_mid_sync_moves_the_job_and_its_webhooks_to_another_node() {
    // The providers' published rate limits (on by default) make the sync last long enough.
    let Some(mut cluster) = Cluster::start("killing_the_owner_mid_sync", 3, 1000, &[]) else {
        return;
    };
    let receiver = Receiver::start();
    let hubspot = cluster.nodes[0].connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = cluster.nodes[0].connect("jobber")["id"].as_str().unwrap().to_owned();
    cluster.nodes[0].ctl_json(&[
        "webhook",
        "create",
        "--url",
        &receiver.url("/hook"),
        "--events",
        "sync.*,record.*",
    ]);
    let mapping = cluster.nodes[0].create_mapping(&mapping_spec(&hubspot, &jobber));
    let contacts = emails(&cluster.sandbox, "hubspot", "contacts");
    let owner = cluster.owner(0);
    let via = (owner + 1) % 3;
    // Queued through a node that does not run it; killed once the owner is writing.
    let job = cluster.nodes[via].ctl_json(&["sync", "run", &mapping, "--yes"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let written = cluster.wait_until_writing();
    cluster.nodes[owner].kill9();
    let killed_at = cluster.database_now();
    let finished = sync_until_finished(&cluster.nodes[via], &job);
    assert_eq!(finished["status"], "completed", "{finished}");
    let org = cluster.nodes[via].ctl_json(&["status"])["organizationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let killed = cluster.node_id(owner);
    cluster.assert_never_two_at_once(&org, &killed, killed_at);
    let clients = emails(&cluster.sandbox, "jobber", "clients");
    let (lost, duplicated) = compare(&contacts, &clients);
    println!(
        "killed the owner after {written} of {} records were written: {lost} lost, {duplicated} duplicated",
        contacts.len()
    );
    assert_eq!((lost, duplicated), (0, 0));
    assert!(written < contacts.len(), "the kill came mid-sync ({written} written)");

    // Every event of the outbox reaches the receiver at least once; duplicates are counted.
    let outbox: HashSet<String> = cluster.nodes[via]
        .ctl_json(&["events", "list", "--all", "--type", "sync.*,record.*"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        outbox.len() > contacts.len(),
        "record and sync events: {}",
        outbox.len()
    );
    let received = wait_for(Duration::from_secs(120), || {
        let received = receiver.received();
        let ids: HashSet<String> = received.iter().map(|r| r.header("webhook-id")).collect();
        outbox.is_subset(&ids).then_some(received)
    });
    let received = received.unwrap_or_else(|| {
        let ids: HashSet<String> = receiver.received().iter().map(|r| r.header("webhook-id")).collect();
        panic!(
            "{} of {} events never delivered",
            outbox.difference(&ids).count(),
            outbox.len()
        )
    });
    let distinct: HashSet<String> = received.iter().map(|r| r.header("webhook-id")).collect();
    println!(
        "{} events delivered, {} delivered again after the failover",
        distinct.len(),
        received.len() - distinct.len()
    );
}

#[test]
fn a_paused_owner_that_wakes_after_losing_its_lease_cannot_overwrite_the_new_owner() {
    let Some(cluster) = Cluster::start("a_paused_owner_is_fenced", 2, 1000, &[]) else {
        return;
    };
    let hubspot = cluster.nodes[0].connect("hubspot")["id"].as_str().unwrap().to_owned();
    let jobber = cluster.nodes[0].connect("jobber")["id"].as_str().unwrap().to_owned();
    let mapping = cluster.nodes[0].create_mapping(&mapping_spec(&hubspot, &jobber));
    let contacts = emails(&cluster.sandbox, "hubspot", "contacts");
    let owner = cluster.owner(0);
    let other = 1 - owner;
    let job = cluster.nodes[other].ctl_json(&["sync", "run", &mapping, "--yes"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    cluster.wait_until_writing();
    // Frozen past its lease: the other node takes the organization and finishes the job.
    cluster.nodes[owner].pause();
    let finished = sync_until_finished(&cluster.nodes[other], &job);
    assert_eq!(finished["status"], "completed", "{finished}");
    assert_eq!(cluster.owner(other), other);
    // Woken, the old owner's job carries on where it was frozen: whatever it writes to the
    // store is refused, and it lets the organization go (or, if it was frozen inside a write
    // transaction, which the server ended, it stops for its supervisor to restart it).
    cluster.nodes[owner].resume();
    let stopped = wait_for(Duration::from_secs(20), || {
        let log = cluster.nodes[owner].log();
        (log.contains("the lease of an organization; stopping its actors") || log.contains("the store cannot write"))
            .then_some(())
    });
    assert!(
        stopped.is_some(),
        "the woken node let the organization go: {}",
        cluster.nodes[owner].log()
    );
    let fenced = cluster.nodes[owner].log().matches("refused a write").count();
    let after = cluster.nodes[other].ctl_json(&["sync", "get", &job]);
    assert_eq!(
        after["status"], "completed",
        "the new owner's record of the job stands: {after}"
    );
    assert_eq!(after["stats"], finished["stats"], "{after}");
    let clients = emails(&cluster.sandbox, "jobber", "clients");
    let (lost, duplicated) = compare(&contacts, &clients);
    println!("paused owner woke: {fenced} of its writes refused; {lost} lost, {duplicated} duplicated");
    assert_eq!((lost, duplicated), (0, 0));
}
