//! `fluxd demo`: one command that connects, maps and syncs against the sandbox.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_demo_syncs_and_leaves_a_completed_job_for_fluxctl() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let mut demo = Command::new(common::FLUXD)
        .args([
            "demo",
            "--data-dir",
            data,
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut printed = String::new();
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    while !printed.contains("Where to look next") {
        let line = lines.next().expect("the demo printed its summary").unwrap();
        printed.push_str(&line);
        printed.push('\n');
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the demo took {:?}",
        started.elapsed()
    );
    assert!(
        printed.contains("connected HubSpot") && printed.contains("connected Jobber"),
        "{printed}"
    );
    assert!(printed.contains("completed"), "{printed}");

    let list = Command::new(common::FLUXCTL)
        .args(["--data-dir", data, "sync", "list", "-o", "json"])
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    let jobs: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let job = &jobs[0];
    assert_eq!(job["status"], "completed", "{jobs}");
    assert!(job["stats"]["created"].as_u64().unwrap() > 0, "{job}");
    assert_eq!(job["stats"]["failed"], 0);

    // The printed real-time step, run as printed.
    let curl = printed
        .lines()
        .find(|line| line.trim_start().starts_with("curl "))
        .expect("the demo prints a change to make")
        .trim();
    let changed = Command::new("sh").args(["-c", curl]).output().unwrap();
    assert!(
        changed.status.success(),
        "{curl}: {}",
        String::from_utf8_lossy(&changed.stderr)
    );
    let webhook_job = common::wait_for(Duration::from_secs(15), || {
        let list = Command::new(common::FLUXCTL)
            .args(["--data-dir", data, "sync", "list", "-o", "json"])
            .output()
            .unwrap();
        let jobs: serde_json::Value = serde_json::from_slice(&list.stdout).ok()?;
        jobs.as_array()?
            .iter()
            .find(|job| job["trigger"] == "webhook" && job["status"] == "completed")
            .cloned()
    })
    .expect("the change was synced by a webhook");
    assert_eq!(webhook_job["stats"]["updated"], 1, "{webhook_job}");

    assert!(
        Command::new("kill")
            .args(["-TERM", &demo.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = demo.wait().unwrap();
    assert!(status.success(), "demo exited with {status}");
}
