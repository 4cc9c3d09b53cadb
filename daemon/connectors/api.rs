//! The HTTP layer every connector uses: bearer tokens from the connection's actor (one
//! refresh on a 401), and the providers' rate limits honoured per connection — 429 with
//! `Retry-After`, HubSpot's rate-limit headers, Salesforce's `REQUEST_LIMIT_EXCEEDED`, and
//! retries with backoff on 5xx and network errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use ractor::ActorRef;
use tokio::time::Instant;

use crate::actors::{Directory, SupervisedKind};
use crate::connections::actor::{AccessToken, ConnectionMsg, stored_token};
use crate::crypto::Secret;
use crate::providers::Provider;
use crate::store::Store;

/// Attempts for one request before giving up on rate limits or server errors.
const MAX_ATTEMPTS: u32 = 6;
/// Longest single wait honoured.
const MAX_WAIT: Duration = Duration::from_secs(120);

/// Why a provider call failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ConnectorError {
    #[error("connection {0} cannot give an access token: {1}")]
    Token(String, String),
    /// In a cluster: this node can no longer count on the lease of the connection's
    /// organization, so it creates nothing more.
    #[error("this node no longer holds the lease of the organization of connection {0}")]
    LeaseLost(String),
    #[error("{provider} rejected the access token even after a refresh")]
    Unauthorized { provider: Provider },
    #[error("{provider} answered HTTP {status}: {message}")]
    Http {
        provider: Provider,
        status: u16,
        message: String,
    },
    #[error("{provider} rate limit still exceeded after {MAX_ATTEMPTS} attempts")]
    RateLimited { provider: Provider },
    #[error("{provider} unreachable: {reason}")]
    Transport { provider: Provider, reason: String },
    #[error("{provider} sent an answer fluxd cannot read: {reason}")]
    Decode { provider: Provider, reason: String },
    #[error("{provider} has no object {object:?}")]
    UnknownObject { provider: Provider, object: String },
}

/// A response: status, headers, body.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self, provider: Provider) -> Result<serde_json::Value, ConnectorError> {
        serde_json::from_slice(&self.body).map_err(|e| ConnectorError::Decode {
            provider,
            reason: e.to_string(),
        })
    }

    /// For a batch write the provider refused as a whole (non-2xx): one failure per input, each
    /// with the provider's message. `None` when the call succeeded.
    pub fn refused_batch(&self, inputs: usize) -> Option<Vec<super::WriteResult>> {
        if self.status.is_success() {
            return None;
        }
        let message = error_message(&self.body);
        Some((0..inputs).map(|_| Err(message.clone())).collect())
    }

    /// Fails with the provider's message unless the status is 2xx.
    pub fn ok(self, provider: Provider) -> Result<Answer, ConnectorError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(ConnectorError::Http {
                provider,
                status: self.status.as_u16(),
                message: error_message(&self.body),
            })
        }
    }
}

/// The provider's error message from a body, whichever shape it has.
pub fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return text.chars().take(300).collect();
    };
    let first = if value.is_array() { &value[0] } else { &value };
    for key in ["message", "error", "error_description", "errorCode"] {
        if let Some(message) = first.get(key).and_then(|m| m.as_str()) {
            return message.to_owned();
        }
    }
    text.chars().take(300).collect()
}

/// When each connection may send its next request, after a provider asked it to slow down.
/// Entries whose time has passed are dropped as new ones arrive, so the map holds only the
/// connections being held back right now.
#[derive(Clone, Default)]
pub struct RateGates {
    until: Arc<Mutex<HashMap<String, Instant>>>,
}

impl RateGates {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.until.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn open_at(&self, connection_id: &str) -> Option<Instant> {
        self.lock().get(connection_id).copied()
    }

    fn close_until(&self, connection_id: &str, until: Instant) {
        let mut gates = self.lock();
        let now = Instant::now();
        gates.retain(|_, open_at| *open_at > now);
        let entry = gates.entry(connection_id.to_owned()).or_insert(until);
        *entry = (*entry).max(until);
    }
}

/// A provider API client for one connection.
#[derive(Clone)]
pub struct ApiClient {
    pub http: reqwest::Client,
    pub connection_id: String,
    /// The connection's organization, whose lease creates are made under (cluster mode).
    pub org_id: String,
    pub provider: Provider,
    /// Where the connection's actor (the token holder) runs.
    pub directory: Directory,
    /// Where its token is read when the actor runs on another node of a cluster.
    pub store: Store,
    pub gates: RateGates,
}

impl ApiClient {
    /// The connection's actor, when it runs on this node.
    fn actor(&self) -> Option<ActorRef<ConnectionMsg>> {
        self.directory.actor(SupervisedKind::Connections, &self.connection_id)
    }

    /// The token as stored, on a cluster node that does not run the connection's actor.
    fn stored_token(&self) -> Result<AccessToken, ConnectorError> {
        if !self.directory.ownership().is_clustered() {
            return Err(ConnectorError::Token(
                self.connection_id.clone(),
                "its actor is not running".into(),
            ));
        }
        stored_token(&self.store, &self.connection_id)
            .map_err(|reason| ConnectorError::Token(self.connection_id.clone(), reason))
    }

    async fn token(&self) -> Result<AccessToken, ConnectorError> {
        let Some(actor) = self.actor() else {
            return self.stored_token();
        };
        let reply = ractor::call!(actor, ConnectionMsg::AccessToken)
            .map_err(|e| ConnectorError::Token(self.connection_id.clone(), e.to_string()))?;
        reply.map_err(|reason| ConnectorError::Token(self.connection_id.clone(), reason))
    }

    async fn rejected(&self, token: Secret) -> Result<AccessToken, ConnectorError> {
        let Some(actor) = self.actor() else {
            // The owner refreshes; a token it stored since is worth one more try.
            let stored = self.stored_token()?;
            if stored.token.expose() == token.expose() {
                return Err(ConnectorError::Token(
                    self.connection_id.clone(),
                    "the provider refused its token; the node running the connection refreshes it".into(),
                ));
            }
            return Ok(stored);
        };
        let reply = ractor::call!(actor, |reply| ConnectionMsg::Rejected { token, reply })
            .map_err(|e| ConnectorError::Token(self.connection_id.clone(), e.to_string()))?;
        reply.map_err(|reason| ConnectorError::Token(self.connection_id.clone(), reason))
    }

    async fn wait_gate(&self) {
        let until = self.gates.open_at(&self.connection_id);
        if let Some(until) = until.filter(|u| *u > Instant::now()) {
            tokio::time::sleep_until(until).await;
        }
    }

    fn close_gate_for(&self, wait: Duration) {
        self.gates
            .close_until(&self.connection_id, Instant::now() + wait.min(MAX_WAIT));
    }

    /// Sends the request `build` makes from the API base and a bearer token. Retries on 401
    /// (once, with a refreshed token), rate limits, 5xx and network errors; returns every other
    /// answer. For reads and idempotent writes.
    pub async fn send<F>(&self, build: F) -> Result<Answer, ConnectorError>
    where
        F: Fn(&reqwest::Client, &str, &str) -> reqwest::RequestBuilder,
    {
        self.send_with(build, true).await
    }

    /// Like [`ApiClient::send`] for a request that creates records: it is sent again only when
    /// the provider surely did not act on it (connection refused, 401, rate limited), never
    /// after a timeout or a 5xx, which could mean the records exist without their answer.
    pub async fn send_create<F>(&self, build: F) -> Result<Answer, ConnectorError>
    where
        F: Fn(&reqwest::Client, &str, &str) -> reqwest::RequestBuilder,
    {
        self.send_with(build, false).await
    }

    async fn send_with<F>(&self, build: F, repeatable: bool) -> Result<Answer, ConnectorError>
    where
        F: Fn(&reqwest::Client, &str, &str) -> reqwest::RequestBuilder,
    {
        let provider = self.provider;
        let mut token = self.token().await?;
        let mut refreshed = false;
        for attempt in 0..MAX_ATTEMPTS {
            self.wait_gate().await;
            // Checked last thing before a create leaves (after any wait): a node frozen past
            // its lease must not create what the new owner creates too.
            if !repeatable
                && self
                    .directory
                    .ownership()
                    .fence(&self.org_id)
                    .is_some_and(|fence| !fence.fresh())
            {
                return Err(ConnectorError::LeaseLost(self.connection_id.clone()));
            }
            let sent = build(
                &self.http,
                token.api_base_url.trim_end_matches('/'),
                token.token.expose(),
            )
            .send()
            .await;
            let response = match sent {
                Ok(response) => response,
                Err(error) if attempt + 1 < MAX_ATTEMPTS && (repeatable || error.is_connect()) => {
                    tracing::debug!(error = %error.without_url(), provider = provider.as_str(), "request failed; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(error) => {
                    return Err(ConnectorError::Transport {
                        provider,
                        reason: error.without_url().to_string(),
                    });
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(|e| ConnectorError::Transport {
                provider,
                reason: e.without_url().to_string(),
            })?;
            if let Some(wait) = proactive_wait(provider, &headers) {
                self.close_gate_for(wait);
            }
            match classify(provider, status, &headers, &body) {
                Outcome::Done => return Ok(Answer { status, headers, body }),
                Outcome::Unauthorized if !refreshed => {
                    refreshed = true;
                    token = self.rejected(token.token.clone()).await?;
                }
                Outcome::Unauthorized => return Err(ConnectorError::Unauthorized { provider }),
                Outcome::RateLimited(wait) => {
                    let wait = wait.unwrap_or_else(|| backoff(attempt));
                    tracing::info!(provider = provider.as_str(), connection_id = %self.connection_id, wait_ms = wait.as_millis() as u64, "rate limited; waiting");
                    self.close_gate_for(wait);
                    if attempt + 1 == MAX_ATTEMPTS {
                        return Err(ConnectorError::RateLimited { provider });
                    }
                }
                Outcome::ServerError if repeatable && attempt + 1 < MAX_ATTEMPTS => {
                    tokio::time::sleep(backoff(attempt)).await
                }
                Outcome::ServerError => return Ok(Answer { status, headers, body }),
            }
        }
        Err(ConnectorError::RateLimited { provider })
    }

    /// Sends and requires a 2xx JSON answer.
    pub async fn json<F>(&self, build: F) -> Result<serde_json::Value, ConnectorError>
    where
        F: Fn(&reqwest::Client, &str, &str) -> reqwest::RequestBuilder,
    {
        self.send(build).await?.ok(self.provider)?.json(self.provider)
    }

    /// Remembers that the provider asked to slow down (e.g. Jobber's throttle in a 200 body).
    pub fn slow_down(&self, wait: Duration) {
        self.close_gate_for(wait);
    }
}

enum Outcome {
    Done,
    Unauthorized,
    RateLimited(Option<Duration>),
    ServerError,
}

fn classify(provider: Provider, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Outcome {
    match status.as_u16() {
        401 => Outcome::Unauthorized,
        429 => Outcome::RateLimited(retry_after(headers).or_else(|| hubspot_interval(headers))),
        403 if provider == Provider::Salesforce && String::from_utf8_lossy(body).contains("REQUEST_LIMIT_EXCEEDED") => {
            Outcome::RateLimited(None)
        }
        500..=599 => Outcome::ServerError,
        _ => Outcome::Done,
    }
}

/// HubSpot: when the window's remaining requests hit zero, wait out the window before the next.
fn proactive_wait(provider: Provider, headers: &HeaderMap) -> Option<Duration> {
    if provider != Provider::Hubspot && provider != Provider::Pipedrive {
        return None;
    }
    let remaining = header_number(headers, "x-hubspot-ratelimit-remaining")
        .or_else(|| header_number(headers, "x-ratelimit-remaining"))?;
    if remaining > 0 {
        return None;
    }
    hubspot_interval(headers).or_else(|| header_number(headers, "x-ratelimit-reset").map(Duration::from_secs))
}

fn hubspot_interval(headers: &HeaderMap) -> Option<Duration> {
    header_number(headers, "x-hubspot-ratelimit-interval-milliseconds").map(Duration::from_millis)
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    header_number(headers, "retry-after").map(Duration::from_secs)
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 * (1u64 << attempt.min(8))).min(MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn rate_limit_answers_are_recognised() {
        let retry = headers(&[("retry-after", "3")]);
        assert!(
            matches!(classify(Provider::Pipedrive, StatusCode::TOO_MANY_REQUESTS, &retry, b""), Outcome::RateLimited(Some(d)) if d == Duration::from_secs(3))
        );
        let hubspot = headers(&[
            ("x-hubspot-ratelimit-interval-milliseconds", "10000"),
            ("x-hubspot-ratelimit-remaining", "0"),
        ]);
        assert!(
            matches!(classify(Provider::Hubspot, StatusCode::TOO_MANY_REQUESTS, &hubspot, b""), Outcome::RateLimited(Some(d)) if d == Duration::from_secs(10))
        );
        assert_eq!(
            proactive_wait(Provider::Hubspot, &hubspot),
            Some(Duration::from_secs(10))
        );
        let salesforce = br#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;
        assert!(matches!(
            classify(
                Provider::Salesforce,
                StatusCode::FORBIDDEN,
                &HeaderMap::new(),
                salesforce
            ),
            Outcome::RateLimited(None)
        ));
        assert!(matches!(
            classify(Provider::Salesforce, StatusCode::FORBIDDEN, &HeaderMap::new(), b"[]"),
            Outcome::Done
        ));
        assert!(matches!(
            classify(Provider::Jobber, StatusCode::UNAUTHORIZED, &HeaderMap::new(), b""),
            Outcome::Unauthorized
        ));
    }

    #[test]
    fn error_messages_are_read_from_each_shape() {
        assert_eq!(
            error_message(br#"[{"message":"Session expired","errorCode":"INVALID_SESSION_ID"}]"#),
            "Session expired"
        );
        assert_eq!(
            error_message(br#"{"success":false,"error":"Person not found"}"#),
            "Person not found"
        );
        assert_eq!(error_message(b"plain"), "plain");
    }
}
