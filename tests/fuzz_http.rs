//! The HTTP listener fed generated requests (proptest, 1 000 cases per route family): inbound
//! webhook routes of every provider with arbitrary tokens, signature headers and bodies, the
//! OAuth callback with arbitrary query strings, and arbitrary paths and methods. No answer is
//! a server error, nothing is accepted without a valid signature, and the daemon keeps
//! answering.

mod common;

use common::TestDaemon;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

/// One generated request.
#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn header_value() -> impl Strategy<Value = String> {
    "[ -~]{0,80}"
}

fn inbound() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec!["hubspot", "jobber", "pipedrive", "salesforce", "nope"]),
        prop::option::of("[A-Za-z0-9_-]{0,64}"),
        header_value(),
        header_value(),
        prop::collection::vec(any::<u8>(), 0..600),
        prop::sample::select(vec!["{}", "[]", "[{\"portalId\":1,\"objectId\":2,\"eventId\":3}]", ""]),
    )
        .prop_map(|(provider, token, signature, timestamp, noise, json)| {
            let path = match token {
                Some(token) => format!("/webhooks/{provider}/{token}"),
                None => format!("/webhooks/{provider}"),
            };
            let body = if noise.len() % 2 == 0 {
                json.as_bytes().to_vec()
            } else {
                noise
            };
            Case {
                method: "POST",
                path,
                headers: vec![
                    ("x-hubspot-signature-v3", signature.clone()),
                    ("x-hubspot-request-timestamp", timestamp),
                    ("x-jobber-hmac-sha256", signature.clone()),
                    ("authorization", format!("Basic {signature}")),
                    ("content-type", "application/json".into()),
                ],
                body,
            }
        })
}

fn callback() -> impl Strategy<Value = Case> {
    "[A-Za-z0-9=&%_.-]{0,200}".prop_map(|query| Case {
        method: "GET",
        path: format!("/oauth/callback?{query}"),
        headers: Vec::new(),
        body: Vec::new(),
    })
}

fn anything() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
        "/[A-Za-z0-9/_.%-]{0,100}",
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(method, path, body)| Case {
            method,
            path,
            headers: Vec::new(),
            body,
        })
}

#[test]
fn generated_requests_get_client_errors_never_server_errors() {
    let daemon = TestDaemon::start(&["--sandbox"]);
    daemon.connect("hubspot");
    daemon.connect("pipedrive");
    let base = format!("http://{}", daemon.http);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let mut runner = TestRunner::new(Config::default());
    let families: Vec<(&str, BoxedStrategy<Case>)> = vec![
        ("inbound webhooks", inbound().boxed()),
        ("OAuth callback", callback().boxed()),
        ("any path", anything().boxed()),
    ];
    let mut wrong = Vec::new();
    for (family, strategy) in families {
        let cases: Vec<Case> = (0..1000)
            .map(|_| strategy.new_tree(&mut runner).unwrap().current())
            .collect();
        for chunk in cases.chunks(50) {
            let sent = chunk.iter().cloned().map(|case| {
                let client = client.clone();
                let url = format!("{base}{}", case.path);
                async move {
                    let method = http::Method::from_bytes(case.method.as_bytes()).unwrap();
                    let mut request = client.request(method, &url).body(case.body.clone());
                    for (name, value) in &case.headers {
                        request = request.header(*name, value.as_str());
                    }
                    let status = request.send().await.map(|r| r.status().as_u16());
                    (case, status)
                }
            });
            for (case, status) in runtime.block_on(futures::future::join_all(sent)) {
                match status {
                    // 429 is the per-connection cap and 503 a full queue: both are limits, not
                    // failures. A 2xx on an inbound route would mean an unsigned event passed.
                    Ok(code) if code >= 500 && code != 503 => wrong.push(format!("{family}: {code} for {case:?}")),
                    Ok(code) if (200..300).contains(&code) && case.path.starts_with("/webhooks/") => {
                        wrong.push(format!("{family}: accepted {case:?}"))
                    }
                    Ok(_) => {}
                    Err(error) => wrong.push(format!("{family}: {error} for {:?}", case.path)),
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{:#?}", &wrong[..wrong.len().min(10)]);
    assert_eq!(daemon.ctl_json(&["status"])["version"], env!("CARGO_PKG_VERSION"));
    let (health, _) = common::http_get(&format!("{base}/healthz"));
    assert_eq!(health, 200);
}
