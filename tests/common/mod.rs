//! Test fixtures: the real `fluxd` on port 0 in a temp dir, `fluxctl` runs, and gRPC clients.
#![allow(dead_code)]

pub mod receiver;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Channel;

pub const FLUXD: &str = env!("CARGO_BIN_EXE_fluxd");
pub const FLUXCTL: &str = env!("CARGO_BIN_EXE_fluxctl");

/// A running fluxd; killed on drop.
pub struct TestDaemon {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub grpc: String,
    pub http: String,
    /// Base URL of the in-process sandbox, with `--sandbox`.
    pub sandbox: Option<String>,
    extra_args: Vec<String>,
    /// Restart on the same addresses (as a deployed daemon would), not on fresh ports.
    keep_ports: bool,
    /// `RUST_LOG` of the daemon.
    log_filter: String,
}

impl TestDaemon {
    /// Starts fluxd with `extra_args` and waits for `endpoints.json`.
    pub fn start(extra_args: &[&str]) -> TestDaemon {
        Self::start_logging(extra_args, "debug")
    }

    /// [`TestDaemon::start`] with `RUST_LOG=log_filter`.
    pub fn start_logging(extra_args: &[&str], log_filter: &str) -> TestDaemon {
        Self::start_with_files(extra_args, log_filter, &[])
    }

    /// [`TestDaemon::start_logging`] after writing `files` (name, contents) into the data dir
    /// (another node's `master.key` and `admin.token`, say).
    pub fn start_with_files(extra_args: &[&str], log_filter: &str, files: &[(&str, Vec<u8>)]) -> TestDaemon {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, contents) in files {
            std::fs::write(dir.path().join(name), contents).expect("data dir file");
        }
        let mut daemon = TestDaemon {
            dir,
            child: None,
            grpc: String::new(),
            http: String::new(),
            sandbox: None,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            keep_ports: false,
            log_filter: log_filter.to_owned(),
        };
        daemon.launch();
        daemon
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("fluxd.log")
    }

    /// Starts (or restarts) the process on fresh ports.
    pub fn launch(&mut self) {
        let endpoints = self.data_dir().join("endpoints.json");
        let _ = std::fs::remove_file(&endpoints);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let child = Command::new(FLUXD)
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(self.listen_args())
            .args(&self.extra_args)
            .env("RUST_LOG", &self.log_filter)
            .env_remove("FLUXD_MASTER_KEY")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn fluxd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let parsed = std::fs::read_to_string(&endpoints)
                .ok()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
            if let Some(json) = parsed {
                self.grpc = json["grpc"].as_str().expect("grpc addr").to_owned();
                self.http = json["http"].as_str().expect("http addr").to_owned();
                self.sandbox = json["sandbox"].as_str().map(str::to_owned);
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("fluxd exited early with {status}: {}", self.log());
            }
            assert!(Instant::now() < deadline, "fluxd did not start: {}", self.log());
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Creates the mapping of file `text` with `fluxctl mapping create -f`; returns its id.
    pub fn create_mapping(&self, text: &str) -> String {
        let file = self.data_dir().join("mapping.yaml");
        std::fs::write(&file, text).expect("mapping file");
        self.ctl_json(&["mapping", "create", "-f", file.to_str().unwrap()])["id"]
            .as_str()
            .expect("mapping id")
            .to_owned()
    }

    /// Later restarts keep this run's addresses, so URLs given to providers stay valid.
    pub fn keep_ports(&mut self) {
        self.keep_ports = true;
    }

    fn listen_args(&self) -> Vec<String> {
        let (grpc, http) = if self.keep_ports {
            (self.grpc.clone(), self.http.clone())
        } else {
            ("127.0.0.1:0".to_owned(), "127.0.0.1:0".to_owned())
        };
        vec!["--grpc-listen".into(), grpc, "--http-listen".into(), http]
    }

    /// Sends SIGHUP (reload the configuration).
    pub fn hangup(&self) {
        signal(self.child.as_ref().expect("running"), "HUP");
    }

    /// Freezes the process (SIGSTOP), as a long pause or a cut-off machine would.
    pub fn pause(&self) {
        signal(self.child.as_ref().expect("running"), "STOP");
    }

    /// Lets a paused process go on (SIGCONT).
    pub fn resume(&self) {
        signal(self.child.as_ref().expect("running"), "CONT");
    }

    /// Sends SIGTERM and waits; returns the exit status and how long it took.
    pub fn terminate(&mut self) -> (std::process::ExitStatus, Duration) {
        let mut child = self.child.take().expect("running");
        let started = Instant::now();
        signal(&child, "TERM");
        let deadline = started + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return (status, started.elapsed());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("fluxd did not exit within 15 s of SIGTERM: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process with SIGKILL (a crash).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Graceful restart on new ports.
    pub fn restart(&mut self) {
        let (status, _) = self.terminate();
        assert!(status.success(), "fluxd exited with {status}");
        self.launch();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("admin.token"))
            .expect("admin.token")
            .trim()
            .to_owned()
    }

    /// Runs fluxctl against this daemon.
    pub fn ctl(&self, args: &[&str]) -> CtlOutput {
        let output = Command::new(FLUXCTL)
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .env_remove("FLUXCTL_TOKEN")
            .env_remove("FLUXCTL_ADDR")
            .output()
            .expect("run fluxctl");
        CtlOutput(output)
    }

    /// Runs fluxctl and parses its `-o json` output, panicking on failure.
    pub fn ctl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.ctl(&all);
        assert!(out.success(), "fluxctl {args:?} failed: {}", out.stderr());
        serde_json::from_str(&out.stdout())
            .unwrap_or_else(|e| panic!("fluxctl {args:?} printed non-JSON ({e}): {}", out.stdout()))
    }

    /// A gRPC channel to this daemon (no credentials attached).
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc))
            .expect("uri")
            .connect()
            .await
            .expect("connect")
    }

    /// `Bearer <admin token>` metadata value.
    pub fn bearer(&self) -> tonic::metadata::MetadataValue<tonic::metadata::Ascii> {
        format!("Bearer {}", self.admin_token()).parse().expect("header")
    }

    /// A request carrying the admin token.
    pub fn authed<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", self.bearer());
        request
    }
}

impl TestDaemon {
    /// The id of the first member of the organization whose `field` is `value` (`"role"`,
    /// `"owner"`), as `org members` lists them.
    pub fn member_id(&self, field: &str, value: &str) -> String {
        let members = self.ctl_json(&["org", "members"]);
        members
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m[field] == value)
            .unwrap_or_else(|| panic!("a member with {field} {value}: {members}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The sandbox base URL (the daemon must run with `--sandbox`).
    pub fn sandbox_url(&self) -> String {
        self.sandbox.clone().expect("fluxd runs with --sandbox")
    }

    /// Connects `provider` the way a person would: `connection create --no-wait`, then follow
    /// the authorize URL (the sandbox approves and redirects to fluxd's callback).
    pub fn connect(&self, provider: &str) -> serde_json::Value {
        let started = self.ctl_json(&["connection", "create", "--provider", provider, "--no-wait"]);
        let url = started["authorizeUrl"].as_str().expect("authorizeUrl");
        let (status, body) = http_get(url);
        assert_eq!(status, 200, "callback page: {body}");
        assert!(body.contains("Connected"), "{body}");
        let list = self.ctl_json(&["connection", "list"]);
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| body.contains(c["id"].as_str().unwrap()))
            .cloned()
            .expect("the new connection is listed")
    }
}

/// Runs `request` on a fresh runtime in its own thread (safe inside async tests too).
fn on_runtime<T: Send + 'static>(request: impl std::future::Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(request)
    })
    .join()
    .expect("http thread")
}

/// GET `url`, following redirects; returns status and body.
pub fn http_get(url: &str) -> (u16, String) {
    let url = url.to_owned();
    on_runtime(async move {
        let response = reqwest::get(&url).await.expect("GET");
        (response.status().as_u16(), response.text().await.unwrap_or_default())
    })
}

/// GET `url` with `headers`; returns status, content type and body.
pub fn http_get_with(url: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let url = url.to_owned();
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    on_runtime(async move {
        let mut request = reqwest::Client::new().get(&url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("GET");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (
            response.status().as_u16(),
            content_type,
            response.text().await.unwrap_or_default(),
        )
    })
}

/// Signs in to the web console at `http` (an HTTP listener's address) with `token`; returns
/// the session cookie as a `Cookie` header value.
pub fn console_cookie(http: &str, token: &str) -> String {
    let url = format!("http://{http}/sign-in");
    let token = token.to_owned();
    on_runtime(async move {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let response = client.post(&url).form(&[("token", token)]).send().await.expect("POST");
        assert_eq!(response.status().as_u16(), 303, "signed in");
        let cookie = response.headers()["set-cookie"].to_str().unwrap();
        cookie.split(';').next().unwrap().to_owned()
    })
}

/// Every RPC of the API, from its descriptors, sorted.
pub fn every_rpc() -> Vec<String> {
    use prost::Message;
    let set = prost_types::FileDescriptorSet::decode(fluxcascade::pb::FILE_DESCRIPTOR_SET).unwrap();
    let mut methods = Vec::new();
    for file in set.file.iter().filter(|f| f.package() == "fluxcascade.v1") {
        for service in &file.service {
            for method in &service.method {
                methods.push(format!("/fluxcascade.v1.{}/{}", service.name(), method.name()));
            }
        }
    }
    methods.sort();
    methods
}

/// GET `url` without following redirects; returns status and the `location` header.
pub fn http_get_location(url: &str) -> (u16, Option<String>) {
    let url = url.to_owned();
    on_runtime(async move {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let response = client.get(&url).send().await.expect("GET");
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (response.status().as_u16(), location)
    })
}

/// PATCH JSON to `url`.
pub fn http_patch_json(url: &str, body: serde_json::Value) -> u16 {
    let url = url.to_owned();
    on_runtime(async move {
        let response = reqwest::Client::new()
            .patch(&url)
            .json(&body)
            .send()
            .await
            .expect("PATCH");
        response.status().as_u16()
    })
}

/// GET `url` and parse JSON.
pub fn http_get_json(url: &str) -> serde_json::Value {
    let (status, body) = http_get(url);
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

/// POST JSON to `url`.
pub fn http_post_json(url: &str, body: serde_json::Value) -> u16 {
    let url = url.to_owned();
    on_runtime(async move {
        let response = reqwest::Client::new()
            .post(&url)
            .json(&body)
            .send()
            .await
            .expect("POST");
        response.status().as_u16()
    })
}

/// POST `body` with `headers` to `url`; returns status and body.
pub fn http_post_raw(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, String) {
    let url = url.to_owned();
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    on_runtime(async move {
        let mut request = reqwest::Client::new().post(&url).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("POST");
        (response.status().as_u16(), response.text().await.unwrap_or_default())
    })
}

/// PUT JSON to `url`.
pub fn http_put_json(url: &str, body: serde_json::Value) -> u16 {
    let url = url.to_owned();
    on_runtime(async move {
        let response = reqwest::Client::new().put(&url).json(&body).send().await.expect("PUT");
        response.status().as_u16()
    })
}

/// The value of metric `name` with all of `labels` (`key="value"` pairs) in `/metrics` of
/// `daemon`; 0 when absent.
pub fn metric(daemon: &TestDaemon, name: &str, labels: &[&str]) -> f64 {
    let (_, text) = http_get(&format!("http://{}/metrics", daemon.http));
    text.lines()
        .filter(|line| line.starts_with(name) && labels.iter().all(|l| line.contains(l)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Output of a fluxctl run.
pub struct CtlOutput(pub Output);

impl CtlOutput {
    pub fn success(&self) -> bool {
        self.0.status.success()
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
}

/// Mode bits of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// Polls `check` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A standalone `fluxd sandbox`, so provider state outlives fluxd restarts and kills.
pub struct StandaloneSandbox {
    child: Child,
    /// The `[providers.*]` config that points fluxd at it.
    pub config: String,
    /// Its base URL.
    pub base: String,
}

impl StandaloneSandbox {
    /// Starts a sandbox seeded with `records` people per provider, with the providers' rate
    /// limits on (as they are by default).
    pub fn start(records: usize) -> StandaloneSandbox {
        Self::start_with(records, &[])
    }

    /// [`StandaloneSandbox::start`] with more `fluxd sandbox` flags (`--no-limits`).
    pub fn start_with(records: usize, flags: &[&str]) -> StandaloneSandbox {
        use std::io::BufRead;
        let mut child = Command::new(FLUXD)
            .args([
                "sandbox",
                "--listen",
                "127.0.0.1:0",
                "--print-config",
                "--records",
                &records.to_string(),
            ])
            .args(flags)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn sandbox");
        let mut config = String::new();
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut bases = 0;
        while bases < 4 {
            let line = lines.next().expect("sandbox config line").expect("utf-8");
            bases += usize::from(line.starts_with("api_base_url"));
            config.push_str(&line);
            config.push('\n');
        }
        let parsed: toml::Value = toml::from_str(&config).expect("sandbox config");
        let hubspot_base = parsed["providers"]["hubspot"]["api_base_url"]
            .as_str()
            .expect("hubspot base");
        let base = hubspot_base.trim_end_matches("/hubspot").to_owned();
        StandaloneSandbox { child, config, base }
    }

    /// The sandbox process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes its config to a file in `dir` and returns the path.
    pub fn config_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join("sandbox.toml");
        std::fs::write(&path, &self.config).expect("write config");
        path
    }
}

impl Drop for StandaloneSandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A mapping file: HubSpot contacts to Jobber clients, email and first name, matched on email.
pub fn contacts_to_clients(name: &str, hubspot: &str, jobber: &str) -> String {
    format!(
        "name: {name}\nsource: {{ connection: {hubspot}, object: contacts }}\ntarget: {{ connection: {jobber}, object: clients }}\nfieldPairs:\n  - {{ sourceField: email, targetField: email }}\n  - {{ sourceField: firstname, targetField: firstName }}\nmatchKey: email\n"
    )
}

/// The (lowercased) emails of every record of `object` in `sandbox`'s `provider`.
pub fn emails(sandbox: &StandaloneSandbox, provider: &str, object: &str) -> Vec<String> {
    let url = format!("{}/_control/{provider}/records/{object}?limit=100000", sandbox.base);
    let records = http_get_json(&url)["records"].as_array().unwrap().clone();
    records
        .iter()
        .flat_map(|record| {
            let fields = &record["fields"];
            match provider {
                "jobber" => fields["emails"]
                    .as_array()
                    .map(|emails| {
                        emails
                            .iter()
                            .filter_map(|e| e["address"].as_str().map(str::to_lowercase))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default(),
                _ => fields["email"]
                    .as_str()
                    .map(|e| vec![e.to_lowercase()])
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// How many of `expected` are missing from, and duplicated in, `found`.
pub fn compare(expected: &[String], found: &[String]) -> (usize, usize) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for email in found {
        *counts.entry(email.as_str()).or_default() += 1;
    }
    let missing = expected.iter().filter(|e| !counts.contains_key(e.as_str())).count();
    let duplicated = expected
        .iter()
        .filter(|e| counts.get(e.as_str()).is_some_and(|n| *n > 1))
        .count();
    (missing, duplicated)
}

/// A new, empty database named `<prefix>_<random>` on the PostgreSQL server at `server`;
/// returns its URL.
pub fn new_database(server: &str, prefix: &str) -> String {
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let mut admin = postgres::Client::connect(server, postgres::NoTls).expect("PostgreSQL server");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    let mut url = url::Url::parse(server).expect("server URL");
    url.set_path(&name);
    url.to_string()
}
