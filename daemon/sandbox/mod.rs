//! The sandbox: local, in-memory, deterministic simulators of the four providers' real HTTP
//! APIs, one base URL each (`<sandbox>/hubspot`, `/jobber`, `/pipedrive`, `/salesforce`), plus
//! a control API under `/_control/<provider>/…` for tests (revoke grants, fail token calls,
//! shorten token lifetimes, read counters).
//!
//! Paths under each base are the real ones (`/oauth/v1/token`, `/api/oauth/token`, …), so the
//! same provider clients talk to the sandbox and to the real services. Record APIs (HubSpot
//! CRM v3, Salesforce REST/SOQL, Pipedrive v1 fields + v2, Jobber GraphQL) are answered first
//! (see `records`), everything else by the OAuth handlers. Record changes go out as each
//! provider's webhooks to the URLs registered with it (see `webhooks`).

mod control;
mod oauth;
mod records;
mod request;
mod state;
mod webhooks;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::providers::Provider;
use crate::providers::config::{ProviderSettings, ProvidersConfig};
pub use request::SandboxRequest;
use request::json_reply;
pub use state::SandboxState;

/// Shared sandbox state.
#[derive(Clone)]
pub struct Sandbox {
    state: Arc<Mutex<SandboxState>>,
    /// Jobber's schema, parsed once: its simulator executes every request against it.
    jobber: Arc<records::jobber::schema::JobberSchema>,
    /// Wakes the webhook sender when deliveries are queued.
    webhook_wake: Arc<tokio::sync::Notify>,
    /// Whether the webhook sender runs.
    sending: Arc<AtomicBool>,
}

impl Default for Sandbox {
    fn default() -> Sandbox {
        Sandbox {
            state: Arc::default(),
            jobber: Arc::new(records::jobber::schema::JobberSchema::load()),
            webhook_wake: Arc::default(),
            sending: Arc::default(),
        }
    }
}

/// The OAuth client id the sandbox knows for `provider`.
pub fn client_id(provider: Provider) -> String {
    format!("sandbox-{}-client", provider.as_str())
}

/// The OAuth client secret the sandbox knows for `provider`.
pub fn client_secret(provider: Provider) -> String {
    format!("sandbox-{}-secret", provider.as_str())
}

/// Provider settings that point fluxd at a sandbox listening at `base` (`http://host:port`).
pub fn provider_settings(base: &str) -> ProvidersConfig {
    Provider::ALL
        .into_iter()
        .map(|provider| {
            let root = format!("{base}/{}", provider.as_str());
            let (auth, token, revoke, api) = match provider {
                Provider::Hubspot => ("/oauth/authorize", "/oauth/v1/token", "/oauth/v1/refresh-tokens", ""),
                Provider::Jobber => ("/api/oauth/authorize", "/api/oauth/token", "/api/graphql", "/api"),
                Provider::Pipedrive => ("/oauth/authorize", "/oauth/token", "/oauth/revoke", ""),
                Provider::Salesforce => (
                    "/services/oauth2/authorize",
                    "/services/oauth2/token",
                    "/services/oauth2/revoke",
                    "",
                ),
            };
            let settings = ProviderSettings {
                client_id: Some(client_id(provider)),
                client_secret: Some(client_secret(provider)),
                client_secret_file: None,
                scopes: None,
                auth_url: Some(format!("{root}{auth}")),
                token_url: Some(format!("{root}{token}")),
                revoke_url: Some(format!("{root}{revoke}")),
                api_base_url: Some(format!("{root}{api}")),
            };
            (provider, settings)
        })
        .collect()
}

impl Sandbox {
    /// Serves the sandbox on `listener` until `shutdown` resolves.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let base = match listener.local_addr() {
            Ok(addr) => format!("http://{addr}"),
            Err(_) => return,
        };
        if !self.sending.swap(true, Ordering::SeqCst) {
            tokio::spawn(webhooks::dispatch(self.clone()));
        }
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            let Ok((stream, _)) = accepted else { continue };
            let sandbox = self.clone();
            let base = base.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let sandbox = sandbox.clone();
                    let base = base.clone();
                    async move { Ok::<_, Infallible>(sandbox.handle(&base, request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    /// Binds `addr` and serves in the background; returns the bound address.
    pub async fn spawn(self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        tokio::spawn(self.serve(listener, std::future::pending()));
        Ok(bound)
    }

    async fn handle(&self, base: &str, request: http::Request<hyper::body::Incoming>) -> http::Response<Full<Bytes>> {
        let request = match SandboxRequest::read(request).await {
            Ok(request) => request,
            Err(reply) => return reply.into_response(),
        };
        let mut segments = request.path.trim_start_matches('/').splitn(2, '/');
        let first = segments.next().unwrap_or_default().to_owned();
        let rest = format!("/{}", segments.next().unwrap_or_default());
        let reply = if first == "_control" {
            control::handle(self, &rest, &request)
        } else if let Some(provider) = Provider::parse(&first) {
            let provider_base = format!("{base}/{first}");
            match records::handle(self, provider, &provider_base, &rest, &request) {
                Some(reply) => reply,
                None => oauth::handle(self, provider, &provider_base, &rest, &request).await,
            }
        } else {
            json_reply(
                404,
                serde_json::json!({ "error": "unknown sandbox path", "path": request.path }),
            )
        };
        reply.into_response()
    }

    /// Forgets every provider's records and seeds each with `records_per_object` people
    /// (HubSpot contacts, Pipedrive persons, Salesforce Contacts, Jobber clients) and a fifth
    /// as many companies and deals (and Jobber properties and jobs). Deterministic: the same
    /// count gives the same data.
    pub fn seed(&self, records_per_object: usize) {
        self.with_state(|state| records::seed(&mut state.records, records_per_object));
    }

    /// Switches every provider's rate limits off (and makes HubSpot's search see changes at
    /// once), for benchmarks and tests that need speed; they are on by default.
    pub fn without_limits(&self) {
        self.with_state(|state| {
            for provider in Provider::ALL {
                records::switch_limits(state.records.provider(provider), false);
            }
        });
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut SandboxState) -> T) -> T {
        // A poisoned lock means a handler panicked mid-update; the sandbox is test tooling, so
        // carry on with the state as it is.
        let mut guard = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}
