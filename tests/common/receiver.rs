//! A real HTTP receiver for webhook tests: records every request and answers as told.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// One received request.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// How the receiver answers.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
    pub retry_after: Option<String>,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            delay: Duration::ZERO,
            retry_after: None,
        }
    }
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    reply: Option<Reply>,
}

/// The receiver; stops with the test process.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

impl Receiver {
    /// Starts on a free loopback port, answering 200.
    pub fn start() -> Receiver {
        let shared = Arc::new(Mutex::new(Shared {
            received: Vec::new(),
            reply: Some(Reply::status(200)),
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let state = shared.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("rt");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let state = state.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request| handle(state.clone(), request));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        Receiver { addr, shared }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_reply(&self, reply: Reply) {
        self.shared.lock().unwrap().reply = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().unwrap().received.clone()
    }

    /// Requests to `path`.
    pub fn received_at(&self, path: &str) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.path == path).collect()
    }

    /// Waits until `count` requests reached `path`.
    pub fn wait_for(&self, path: &str, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received_at(path);
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "receiver got {} of {count} requests at {path}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

async fn handle(
    shared: Arc<Mutex<Shared>>,
    request: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let at = Instant::now();
    let path = request.uri().path().to_owned();
    let headers = request.headers().clone();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let reply = {
        let mut shared = shared.lock().unwrap();
        shared.received.push(Received {
            at,
            path,
            headers,
            body,
        });
        shared.reply.clone().unwrap_or(Reply::status(200))
    };
    tokio::time::sleep(reply.delay).await;
    let mut response = http::Response::new(Full::new(Bytes::from_static(b"{\"received\":true}")));
    *response.status_mut() = http::StatusCode::from_u16(reply.status).expect("status");
    if let Some(retry_after) = reply.retry_after {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, retry_after.parse().unwrap());
    }
    Ok(response)
}

/// Verifies a Standard Webhooks signature header with an independent HMAC: true if any of
/// the space-separated `v1,` signatures matches `secret`.
pub fn verify_standard(secret: &str, received: &Received) -> bool {
    use base64::Engine as _;
    use hmac::{KeyInit, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_"))
        .expect("b64");
    let signed = [
        received.header("webhook-id").as_bytes(),
        b".",
        received.header("webhook-timestamp").as_bytes(),
        b".",
        &received.body,
    ]
    .concat();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(&signed);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    received
        .header("webhook-signature")
        .split(' ')
        .any(|sig| sig == expected)
}

/// Verifies `X-FluxCascade-Signature` (`t=…,v1=<hex>`) with an independent HMAC.
pub fn verify_fluxcascade(secret: &str, received: &Received) -> bool {
    use base64::Engine as _;
    use hmac::{KeyInit, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_"))
        .expect("b64");
    let header = received.header("x-fluxcascade-signature");
    let mut parts = header.split(',');
    let Some(timestamp) = parts.next().and_then(|t| t.strip_prefix("t=")) else {
        return false;
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(&[timestamp.as_bytes(), b".", &received.body].concat());
    let expected = hex::encode(mac.finalize().into_bytes());
    parts.filter_map(|p| p.strip_prefix("v1=")).any(|sig| sig == expected)
}
