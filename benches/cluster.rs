//! Cluster benchmark: `cargo bench --bench cluster [-- RECORDS ORGANIZATIONS]` (default 2000
//! records, 6 organizations). Needs a PostgreSQL server: `FLUXD_TEST_POSTGRES_URL`
//! (`export FLUXD_TEST_POSTGRES_URL="$(.ci/postgres)"`).
//!
//! For 1, 2 and 3 release fluxd nodes on one fresh database (and one standalone sandbox
//! without rate limits, all on this machine): creates the organizations, each with its own
//! HubSpot and Salesforce connections, a HubSpot contacts → Salesforce Contact mapping
//! (create_only, so every record is written and announced) and a webhook endpoint for
//! `record.*` on a counting receiver; waits until the leases are spread; then runs every
//! organization's first sync at once (each through a different node) and reports sync
//! records/s (records fetched ÷ time until the last job ended) and deliveries/s (receiver
//! requests ÷ time until every `record.created` event arrived). The 1-node figures are the
//! baseline the others are compared with, in the same run.

mod support;

use std::time::{Duration, Instant};

use fluxcascade::pb;
use support::{Daemon, Receiver, Session, StandaloneSandbox, data_dir};

/// Figures of one run.
struct Figures {
    records: u64,
    sync_seconds: f64,
    deliveries: u64,
    delivery_seconds: f64,
}

impl Figures {
    fn records_per_second(&self) -> f64 {
        self.records as f64 / self.sync_seconds
    }

    fn deliveries_per_second(&self) -> f64 {
        self.deliveries as f64 / self.delivery_seconds
    }
}

/// Starts `count` nodes on `store`; the first makes the master key and operator token, the
/// others get copies.
async fn start_nodes(
    count: usize,
    store: &str,
    sandbox: &StandaloneSandbox,
    dirs: &[tempfile::TempDir],
) -> Vec<Daemon> {
    let config = format!(
        "{}\n[store]\nurl = \"{store}\"\n[cluster]\nlease_seconds = 3\n[sync]\nconfirm_threshold = 0\nmax_parallel = 8\n[webhooks]\nallow_private = true\nallow_http = true\n",
        sandbox.config
    );
    let mut nodes: Vec<Daemon> = Vec::new();
    for dir in dirs.iter().take(count) {
        if !nodes.is_empty() {
            let data = data_dir(dir.path());
            std::fs::create_dir_all(&data).expect("data dir");
            for file in ["master.key", "admin.token"] {
                std::fs::copy(data_dir(dirs[0].path()).join(file), data.join(file)).expect("copy");
            }
        }
        nodes.push(Daemon::start(dir.path(), &config).await);
    }
    nodes
}

/// Creates an organization with its connections, mapping and endpoint; returns its session
/// (its owner's token) and mapping id.
async fn organization(operator: &Session, name: &str, receiver: &Receiver) -> (Session, String) {
    let mut orgs = pb::organization_service_client::OrganizationServiceClient::new(operator.channel.clone());
    let created = orgs
        .create_organization(operator.request(pb::CreateOrganizationRequest { name: name.to_owned() }))
        .await
        .expect("organization")
        .into_inner();
    let session = operator.with_token(&created.token);
    let hubspot = session.connect(pb::Provider::Hubspot).await;
    let salesforce = session.connect(pb::Provider::Salesforce).await;
    let text = format!(
        "name: bench\nsource: {{connection: {hubspot}, object: contacts}}\ntarget: {{connection: {salesforce}, object: Contact}}\n\
         fieldPairs:\n  - {{sourceField: firstname, targetField: FirstName}}\n  - {{sourceField: lastname, targetField: LastName}}\n  - {{sourceField: email, targetField: Email, transform: lowercase}}\n  - {{sourceField: city, targetField: MailingCity}}\nmatchKey: Email\nmatchingMode: create_only\n"
    );
    let mapping = session.create_mapping(&text, true).await;
    let mut webhooks = pb::webhook_service_client::WebhookServiceClient::new(session.channel.clone());
    webhooks
        .create_webhook_endpoint(session.request(pb::CreateWebhookEndpointRequest {
            url: format!("http://{}/hook", receiver.addr),
            event_types: vec!["record.*".into()],
            ..Default::default()
        }))
        .await
        .expect("endpoint");
    (session, mapping)
}

/// Waits until every organization's lease is held and no node holds more than its share.
async fn leases_spread(node: &Daemon, nodes: usize, organizations: usize) {
    let mut system = pb::system_service_client::SystemServiceClient::new(node.channel.clone());
    let total = organizations + 1; // and the first, default organization
    let share = total.div_ceil(nodes);
    for _ in 0..600 {
        let listed = system
            .list_cluster_nodes(node.request(pb::ListClusterNodesRequest {}))
            .await
            .expect("nodes")
            .into_inner();
        let live: Vec<u64> = listed
            .nodes
            .iter()
            .filter(|n| n.state == "live")
            .map(|n| n.leases)
            .collect();
        if live.len() == nodes && live.iter().sum::<u64>() == total as u64 && live.iter().all(|l| *l as usize <= share)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the leases did not spread over {nodes} nodes");
}

async fn run(server: &str, nodes: usize, records: usize, organizations: usize) -> Figures {
    let sandbox = StandaloneSandbox::start_with(records, &["--no-limits"]);
    let store = tokio::task::block_in_place(|| support::common::new_database(server, &format!("fluxd_bench_{nodes}")));
    let dirs: Vec<tempfile::TempDir> = (0..nodes).map(|_| tempfile::tempdir().expect("dir")).collect();
    let daemons = start_nodes(nodes, &store, &sandbox, &dirs).await;
    let receiver = Receiver::start().await;
    let mut orgs = Vec::new();
    for number in 0..organizations {
        orgs.push(organization(&daemons[0], &format!("bench-{number}"), &receiver).await);
    }
    leases_spread(&daemons[0], nodes, organizations).await;

    let started = Instant::now();
    let jobs = orgs.iter().enumerate().map(|(number, (session, mapping))| {
        // Each organization's calls go to a different node, as a load balancer would spread them.
        let session = daemons[number % nodes].with_token(&session.token);
        let mapping = mapping.clone();
        async move { session.sync(&mapping).await }
    });
    let finished = futures::future::join_all(jobs).await;
    let sync_seconds = started.elapsed().as_secs_f64();
    let mut fetched = 0;
    let mut created = 0;
    for (job, _) in &finished {
        assert_eq!(
            job.status,
            pb::SyncStatus::Completed as i32,
            "sync did not complete: {job:?}"
        );
        let stats = job.stats.unwrap_or_default();
        fetched += stats.fetched;
        created += stats.created;
    }
    assert!(
        receiver.wait_for(created, Duration::from_secs(600)).await,
        "{} of {created} deliveries arrived",
        receiver.count()
    );
    Figures {
        records: fetched,
        sync_seconds,
        deliveries: receiver.count(),
        delivery_seconds: started.elapsed().as_secs_f64(),
    }
}

#[tokio::main]
async fn main() {
    let Ok(server) = std::env::var("FLUXD_TEST_POSTGRES_URL") else {
        eprintln!(
            "cluster bench: set FLUXD_TEST_POSTGRES_URL (export FLUXD_TEST_POSTGRES_URL=\"$(.ci/postgres)\"); nothing measured"
        );
        return;
    };
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let records = args.first().copied().unwrap_or(2000);
    let organizations = args.get(1).copied().unwrap_or(6);
    let mut baseline: Option<Figures> = None;
    for nodes in 1..=3 {
        let figures = run(&server, nodes, records, organizations).await;
        let ratio = |rate: f64, base: fn(&Figures) -> f64| {
            baseline
                .as_ref()
                .map_or(String::new(), |b| format!(" ({:.2}× 1 node)", rate / base(b)))
        };
        println!(
            "cluster, {nodes} node(s), {organizations} organizations × {records} records: sync {} records in {:.2} s = {:.0} records/s{}; \
             {} deliveries in {:.2} s = {:.0} deliveries/s{}",
            figures.records,
            figures.sync_seconds,
            figures.records_per_second(),
            ratio(figures.records_per_second(), Figures::records_per_second),
            figures.deliveries,
            figures.delivery_seconds,
            figures.deliveries_per_second(),
            ratio(figures.deliveries_per_second(), Figures::deliveries_per_second),
        );
        baseline.get_or_insert(figures);
    }
}
