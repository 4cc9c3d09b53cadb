//! Sync benchmark: `cargo bench --bench sync [-- RECORDS...]` (default 10000 100000).
//!
//! `BENCH_MATCHING=match_then_create,create_only` runs each count in both modes.
//!
//! For each record count it starts a standalone sandbox (`fluxd sandbox --records N`) and a
//! release `fluxd` pointed at it, as separate processes; connects HubSpot and Salesforce
//! through the OAuth flow; creates a HubSpot contacts → Salesforce Contact mapping in the
//! default matching mode (match on email, else create: the first sync lists every Salesforce
//! contact into the match index, then writes); runs the first sync and reports records/s end
//! to end, fluxd's CPU seconds per 100 k records (and the sandbox's, on the same two cores)
//! and fluxd's peak RSS, so the figures for different counts show whether memory stays flat.

mod support;

use fluxcascade::pb;
use support::{Daemon, StandaloneSandbox, cpu_seconds, peak_rss_mb};

async fn run(records: usize, matching: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sandbox = StandaloneSandbox::start_with(records, &["--no-limits"]);
    let sandbox_pid = sandbox.pid();
    let config = format!("{}\n[sync]\nconfirm_threshold = 0\n", sandbox.config);
    let daemon = Daemon::start(dir.path(), &config).await;
    let pid = daemon.process.pid();
    let hubspot = daemon.connect(pb::Provider::Hubspot).await;
    let salesforce = daemon.connect(pb::Provider::Salesforce).await;
    let text = format!(
        "name: bench\nsource: {{connection: {hubspot}, object: contacts}}\ntarget: {{connection: {salesforce}, object: Contact}}\n\
         fieldPairs:\n  - {{sourceField: firstname, targetField: FirstName}}\n  - {{sourceField: lastname, targetField: LastName}}\n  - {{sourceField: email, targetField: Email, transform: lowercase}}\n  - {{sourceField: phone, targetField: Phone, transform: phone_e164}}\n  - {{sourceField: address, targetField: MailingStreet}}\n  - {{sourceField: city, targetField: MailingCity}}\n  - {{sourceField: state, targetField: MailingState}}\n  - {{sourceField: zip, targetField: MailingPostalCode}}\nmatchKey: Email\nmatchingMode: {matching}\ndefaultRegion: US\n"
    );
    let mapping = daemon.create_mapping(&text, true).await;
    let rss_before = peak_rss_mb(pid);
    let (fluxd_cpu, sandbox_cpu) = (cpu_seconds(pid), cpu_seconds(sandbox_pid));
    let (job, elapsed) = daemon.sync(&mapping).await;
    let stats = job.stats.unwrap_or_default();
    assert_eq!(
        job.status,
        pb::SyncStatus::Completed as i32,
        "sync did not complete: {job:?}"
    );
    let per_100k = |cpu: f64| cpu * 100_000.0 / stats.fetched.max(1) as f64;
    println!(
        "sync HubSpot -> Salesforce ({matching}), {records} records: {} fetched, {} created, {} updated in {:.2} s = {:.0} records/s; \
         CPU s per 100k records: fluxd {:.2}, sandbox {:.2}; fluxd peak RSS {:.1} MB (after setup {:.1} MB)",
        stats.fetched,
        stats.created,
        stats.updated,
        elapsed.as_secs_f64(),
        stats.fetched as f64 / elapsed.as_secs_f64(),
        per_100k(cpu_seconds(pid) - fluxd_cpu),
        per_100k(cpu_seconds(sandbox_pid) - sandbox_cpu),
        peak_rss_mb(pid),
        rss_before,
    );
}

#[tokio::main]
async fn main() {
    let counts: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let counts = if counts.is_empty() {
        vec![10_000, 100_000]
    } else {
        counts
    };
    // The default mode, and the one without matching as a reference.
    let modes: Vec<String> = std::env::var("BENCH_MATCHING")
        .map(|m| m.split(',').map(str::to_owned).collect())
        .unwrap_or_else(|_| vec!["match_then_create".into()]);
    for records in counts {
        for mode in &modes {
            run(records, mode).await;
        }
    }
}
