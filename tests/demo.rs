//! `fluxd demo`: one command that connects, maps and syncs against the sandbox, prints hints
//! that run as printed, and can be run again on the same data dir.

mod common;

use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

/// Where the demo runs: the crate root, as after `cargo build --release` in a checkout.
fn workdir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn start_demo(data: &str) -> (Child, Lines<BufReader<ChildStdout>>) {
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
        .current_dir(workdir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    (demo, lines)
}

/// What the demo printed up to and including its hints.
fn read_summary(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    let mut printed = String::new();
    loop {
        let line = lines.next().expect("the demo printed its summary").unwrap();
        let last_hint = line.contains("the web console");
        printed.push_str(&line);
        printed.push('\n');
        if last_hint {
            return printed;
        }
    }
}

fn stop(mut demo: Child) {
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

fn sh(command: &str) -> std::process::Output {
    Command::new("sh")
        .args(["-c", command])
        .current_dir(workdir())
        .output()
        .unwrap()
}

fn fluxctl_json(data: &str, args: &[&str]) -> serde_json::Value {
    let output = Command::new(common::FLUXCTL)
        .args(["--data-dir", data])
        .args(args)
        .args(["-o", "json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn the_demo_syncs_prints_hints_that_run_and_can_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (demo, mut lines) = start_demo(data);
    let printed = read_summary(&mut lines);
    assert!(
        printed.contains("connected HubSpot") && printed.contains("connected Jobber"),
        "{printed}"
    );
    assert!(printed.contains("created mapping"), "{printed}");
    assert!(printed.contains("completed"), "{printed}");
    assert!(dir.path().join("fluxd.log").is_file(), "the demo logs to its data dir");

    let jobs = fluxctl_json(data, &["sync", "list"]);
    let job = &jobs[0];
    assert_eq!(job["status"], "completed", "{jobs}");
    assert!(job["stats"]["created"].as_u64().unwrap() > 0, "{job}");
    assert_eq!(job["stats"]["failed"], 0);

    // Every hint runs as printed, from where the demo was started.
    let hints: Vec<&str> = printed
        .lines()
        .map(str::trim)
        .filter(|line| line.contains(" --data-dir "))
        .collect();
    assert!(hints.len() >= 6, "{printed}");
    for hint in hints {
        let ran = sh(hint);
        assert!(ran.status.success(), "{hint}: {}", String::from_utf8_lossy(&ran.stderr));
    }

    // The printed console address answers its sign-in page, and the printed token signs in.
    let console = printed
        .lines()
        .find_map(|line| line.trim().strip_prefix("the web console: "))
        .expect("the demo prints the console's address");
    let (url, token_file) = console.split_once(" (sign in with the token in ").unwrap();
    let (status, page) = common::http_get(url);
    assert_eq!(status, 200);
    assert!(page.contains("action=\"/sign-in\""), "{page}");
    let token_file = token_file.trim_end_matches(')');
    let token = std::fs::read_to_string(workdir().join(token_file)).expect("the printed token file");
    assert!(token.trim().starts_with("fxc_"), "{token_file}");

    // The printed real-time step, run as printed.
    let curl = printed
        .lines()
        .find(|line| line.trim_start().starts_with("curl "))
        .expect("the demo prints a change to make")
        .trim();
    let changed = sh(curl);
    assert!(
        changed.status.success(),
        "{curl}: {}",
        String::from_utf8_lossy(&changed.stderr)
    );
    let webhook_job = common::wait_for(Duration::from_secs(15), || {
        let jobs = fluxctl_json(data, &["sync", "list"]);
        jobs.as_array()?
            .iter()
            .find(|job| job["trigger"] == "webhook" && job["status"] == "completed")
            .cloned()
    })
    .expect("the change was synced by a webhook");
    assert_eq!(webhook_job["stats"]["updated"], 1, "{webhook_job}");
    let connections = fluxctl_json(data, &["connection", "list"]);
    stop(demo);

    // Again on the same dir: the same connections, one mapping, a fresh first sync.
    let (demo, mut lines) = start_demo(data);
    let printed = read_summary(&mut lines);
    assert!(printed.contains("replaced mapping"), "{printed}");
    assert!(printed.contains("completed"), "{printed}");
    let again = fluxctl_json(data, &["connection", "list"]);
    let ids = |list: &serde_json::Value| {
        let mut ids: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&again), ids(&connections), "{again}");
    assert!(
        again.as_array().unwrap().iter().all(|c| c["status"] == "active"),
        "{again}"
    );
    let mappings = fluxctl_json(data, &["mapping", "list"]);
    assert_eq!(mappings.as_array().unwrap().len(), 1, "{mappings}");
    let jobs = fluxctl_json(data, &["sync", "list"]);
    assert_eq!(jobs[0]["status"], "completed", "{jobs}");
    assert!(jobs[0]["stats"]["created"].as_u64().unwrap() > 0, "{jobs}");
    stop(demo);
}

#[test]
fn a_busy_port_fails_the_demo_before_anything_is_written() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let output = Command::new(common::FLUXD)
        .args(["demo", "--data-dir", data.to_str().unwrap()])
        .args(["--grpc-listen", &port, "--http-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&port), "{stderr}");
    assert!(
        !data.exists(),
        "the data dir was created: {:?}",
        std::fs::read_dir(&data).ok()
    );
}
