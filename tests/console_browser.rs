//! The web console in a real browser (Debian's Chromium through chromedriver, driven with
//! WebDriver): sign in, connect sandbox HubSpot and Jobber through the real OAuth redirects,
//! build a mapping with the field pickers, preview it, run a sync and watch it complete, open
//! a failed record, redeliver a webhook, reveal a signing secret. A screenshot of each page
//! is kept in `target/console-screenshots/`. Without chromedriver (`.ci/run` installs it)
//! the test says it did not run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::TestDaemon;
use common::receiver::Receiver;
use fantoccini::{Client, ClientBuilder, Locator};

const WAIT: Duration = Duration::from_secs(30);

/// chromedriver on a free port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMEDRIVER").map_or_else(|| PathBuf::from("/usr/bin/chromedriver"), PathBuf::from);
    path.exists().then_some(path)
}

async fn start_browser(driver: &Path) -> (Driver, Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: profile,
    };
    let mut capabilities = fantoccini::wd::Capabilities::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                format!("--user-data-dir={}", driver._profile.path().display()),
            ]
        }),
    );
    let mut client = None;
    for _ in 0..100 {
        match ClientBuilder::rustls()
            .expect("tls")
            .capabilities(capabilities.clone())
            .connect(&driver.url)
            .await
        {
            Ok(connected) => {
                client = Some(connected);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    (driver, client.expect("chromedriver answers"))
}

/// The browser on one daemon's console, keeping screenshots.
struct Browser {
    client: Client,
    base: String,
    shots: PathBuf,
}

impl Browser {
    async fn open(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.expect("goto");
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    /// The element `css` selects, once the page has it.
    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
    }

    async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    async fn type_into(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Waits until the page's source contains `needle`.
    async fn wait_for_text(&self, needle: &str) {
        for _ in 0..300 {
            if self.source().await.contains(needle) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{needle:?} never appeared: {}", self.source().await);
    }

    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("screenshot written");
    }
}

fn failing_mapping(hubspot: &str, jobber: &str) -> String {
    format!(
        "name: phones from emails\nsource: {{ connection: {hubspot}, object: contacts }}\ntarget: {{ connection: {jobber}, object: clients }}\nfieldPairs:\n  - {{ sourceField: email, targetField: email }}\n  - {{ sourceField: email, targetField: phone, transform: phone_e164, required: true }}\nmatchKey: email\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_connects_maps_syncs_and_inspects_deliveries_in_the_browser() {
    let Some(driver) = chromedriver() else {
        println!("*** SKIPPED: no chromedriver (install chromium-driver, or set CHROMEDRIVER) ***");
        return;
    };
    let daemon = TestDaemon::start(&["--sandbox", "--sandbox-records", "8", "--allow-private-webhooks"]);
    let receiver = Receiver::start();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let (_driver, client) = start_browser(&driver).await;
    let browser = Browser {
        client,
        base: format!("http://{}", daemon.http),
        shots,
    };

    // Sign in.
    browser.open("/").await;
    assert_eq!(browser.path().await, "/sign-in");
    browser.shot("sign-in").await;
    browser.type_into("#token", &daemon.admin_token()).await;
    browser.click("form[action='/sign-in'] button").await;
    browser.wait_for_text("Overview").await;
    assert_eq!(browser.path().await, "/");
    browser.shot("overview-empty").await;

    // A webhook endpoint for every event; its signing secret is shown once.
    browser.open("/endpoints").await;
    browser.type_into("#url", &receiver.url("/hook")).await;
    browser.type_into("#description", "ops alerts").await;
    browser.click("form[action='/endpoints'] button[type='submit']").await;
    let first_secret = browser.text("#secret").await;
    assert!(first_secret.starts_with("whsec_"), "{first_secret}");
    let endpoint_link = browser
        .find("a[href^='/endpoints/']:not([href='/endpoints'])")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let endpoint_id = endpoint_link.trim_start_matches("/endpoints/").to_owned();

    // Connect HubSpot and Jobber: the provider's consent, its redirect to fluxd, back here.
    for (provider, name) in [("PROVIDER_HUBSPOT", "HubSpot"), ("PROVIDER_JOBBER", "Jobber")] {
        browser.open("/connections").await;
        browser.select("#provider", provider).await;
        browser.click("form[action='/connections'] button").await;
        browser.click("#consent").await;
        browser.wait_for_text("Connected.").await;
        assert_eq!(browser.path().await, "/connections");
        assert!(browser.source().await.contains(name));
    }
    let connections = daemon.ctl_json(&["connection", "list"]);
    let id_of = |provider: &str| {
        connections
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["provider"] == provider)
            .unwrap_or_else(|| panic!("{provider} connected: {connections}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (hubspot, jobber) = (id_of("hubspot"), id_of("jobber"));
    let page = browser.source().await;
    for connection in connections.as_array().unwrap() {
        assert!(page.contains(connection["accountName"].as_str().unwrap()), "{page}");
    }
    browser.shot("connections").await;

    // Build a mapping with the pickers: sides first, then fields from their catalogs.
    browser.open("/mappings/new").await;
    browser.type_into("#name", "Contacts to clients").await;
    browser.select("#source", &format!("{hubspot}|contacts")).await;
    browser.select("#target", &format!("{jobber}|clients")).await;
    browser.click("button[value='load']").await;
    browser.wait_for_text("source fields to pick from").await;
    let source_fields = browser.source().await;
    assert!(
        source_fields.contains("<option value=\"firstname\""),
        "HubSpot's catalog offered"
    );
    assert!(
        source_fields.contains("<option value=\"firstName\""),
        "Jobber's catalog offered"
    );
    browser.type_into("[id='pair0.source']", "email").await;
    browser.type_into("[id='pair0.target']", "email").await;
    browser.type_into("[id='pair0.transform']", "trim|lowercase").await;
    browser.type_into("[id='pair1.source']", "firstname").await;
    browser.type_into("[id='pair1.target']", "firstName").await;
    browser.type_into("[id='pair2.source']", "no_such_field").await;
    browser.type_into("[id='pair2.target']", "lastName").await;
    browser.type_into("#match_key", "email").await;
    // A field the catalog does not have is refused at its row.
    browser.click("button[value='save']").await;
    browser.wait_for_text("Not saved").await;
    let refused = browser.text("tr.row-problems").await;
    assert!(refused.contains("no_such_field"), "{refused}");
    browser.shot("mapping-invalid").await;
    browser.type_into("[id='pair2.source']", "lastname").await;
    browser.click("button[value='preview']").await;
    browser.wait_for_text("Preview").await;
    let preview = browser.text("table.preview").await;
    assert!(preview.contains('@'), "mapped emails shown: {preview}");
    browser.shot("mapping-preview").await;
    browser.click("button[value='save']").await;
    browser.wait_for_text("Created.").await;
    let mapping_path = browser.path().await;
    assert!(mapping_path.starts_with("/mappings/map_"), "{mapping_path}");
    browser.shot("mapping").await;

    // Run a sync and watch it complete: the page follows the server's progress stream (Jobber
    // held to 2 requests a second so the sync takes a few seconds): the loaded page turns
    // `completed` with the final numbers, then reloads with the finished sync.
    let limits = format!("{}/_control/jobber/limits", daemon.sandbox_url());
    let slow = serde_json::json!({"requests": {"enabled": true, "max": 2, "window_ms": 1000}});
    assert_eq!(common::http_post_json(&limits, slow), 200);
    browser
        .click(&format!("form[action='{mapping_path}/run'] button"))
        .await;
    if browser.source().await.contains("Run it") {
        browser.click("button[type='submit']:not(.link)").await;
    }
    browser.wait_for_text("data-watch").await;
    let live = "return [window.liveMarker === 1, document.getElementById('job-status').textContent, \
                Number(document.getElementById('job-progress').value)];";
    browser.client.execute("window.liveMarker = 1;", vec![]).await.unwrap();
    let at_load = browser.client.execute(live, vec![]).await.unwrap();
    assert_eq!(at_load[1], "running", "{at_load}");
    let mut streamed = None;
    for _ in 0..600 {
        let now = browser.client.execute(live, vec![]).await.unwrap();
        if now[0] != true {
            break;
        }
        if now[1] == "completed" {
            streamed = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let streamed = streamed.expect("the loaded page showed the sync completing");
    assert!(at_load[2].as_u64() < Some(8), "{at_load}");
    assert_eq!(streamed[2], 8, "the numbers came with it");
    browser.wait_for_text(">completed<").await;
    let fast = serde_json::json!({"requests": {"enabled": false}});
    assert_eq!(common::http_post_json(&limits, fast), 200);
    assert!(browser.path().await.starts_with("/syncs/"));
    let written: u32 = browser.text("#stat-created").await.parse::<u32>().unwrap()
        + browser.text("#stat-updated").await.parse::<u32>().unwrap();
    assert_eq!(written, 8, "every contact created or matched and updated");
    browser.shot("sync-completed").await;

    // A sync whose records fail, and one of them opened.
    let failing = daemon.create_mapping(&failing_mapping(&hubspot, &jobber));
    browser.open(&format!("/mappings/{failing}")).await;
    browser
        .click(&format!("form[action='/mappings/{failing}/run'] button"))
        .await;
    browser.wait_for_text("record-failed").await;
    browser.click("tr.record-failed summary").await;
    let opened = browser.text("tr.record-failed details p").await;
    assert!(!opened.is_empty(), "the failed record's message is shown");
    browser.shot("sync-failed-record").await;

    // Deliveries: redeliver one; the receiver gets it again.
    let before = receiver.wait_for("/hook", 1, WAIT).len();
    browser.open("/endpoints").await;
    browser.shot("webhooks").await;
    browser.click(&format!("a[href='/endpoints/{endpoint_id}']")).await;
    browser.wait_for_text("Deliveries").await;
    browser.click("tbody tr details summary").await;
    browser.shot("webhook-deliveries").await;
    browser.click("form[action$='/redeliver'] button").await;
    browser.wait_for_text("Queued for delivery again.").await;
    receiver.wait_for("/hook", before + 1, WAIT);

    // The signing secret, behind a confirmation.
    browser
        .click(&format!("a[href='/endpoints/{endpoint_id}/secret']"))
        .await;
    browser.wait_for_text("Reveal the secret").await;
    browser
        .click(&format!("form[action='/endpoints/{endpoint_id}/secret'] button"))
        .await;
    let secret = browser.text("#secret").await;
    assert_eq!(secret, first_secret);

    // The overview and the organization, for the screenshots and their charts.
    browser.open("/").await;
    assert!(browser.source().await.contains("Records synced per day"));
    browser.shot("overview").await;
    // The keyboard reaches the skip link first, and it leads to the content.
    browser
        .client
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{E004}")
        .await
        .unwrap();
    let focused = browser.client.active_element().await.unwrap();
    assert_eq!(focused.text().await.unwrap(), "Skip to content");
    assert_eq!(focused.attr("href").await.unwrap().as_deref(), Some("#main"));
    // On a phone's width, pages fit without scrolling sideways (wide tables scroll in place).
    browser.client.set_window_size(390, 844).await.unwrap();
    for (path, name) in [
        ("/", "overview"),
        ("/connections", "connections"),
        ("/syncs", "syncs"),
        (&mapping_path, "mapping"),
    ] {
        browser.open(path).await;
        browser.shot(&format!("phone-{name}")).await;
        let overflow = browser
            .client
            .execute(
                "return document.documentElement.scrollWidth - window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            overflow.as_i64().unwrap() <= 0,
            "{path} is {overflow} px too wide on a phone"
        );
    }
    browser.client.set_window_size(1280, 1000).await.unwrap();
    browser.open("/syncs").await;
    browser.shot("syncs").await;
    browser.open("/mappings").await;
    browser.shot("mappings").await;
    browser.open("/organization").await;
    let organization = browser.source().await;
    assert!(organization.contains("Audit log") && organization.contains("(this session)"));
    browser.shot("organization").await;

    // Sign out: back to the sign-in page, and the pages need a session again.
    browser.click("form[action='/sign-out'] button").await;
    browser.wait_for_text("API token").await;
    assert_eq!(browser.path().await, "/sign-in");
    browser.open("/connections").await;
    assert_eq!(browser.path().await, "/sign-in");
    browser.client.close().await.unwrap();
}
