//! The inbound webhook endpoint on the HTTP listener: routes `/webhooks/<provider>/<token>`
//! (one URL per connection) and `/webhooks/<provider>` (one URL per provider app, the account
//! named in each event), reads the body within its limits, verifies it the provider's way,
//! and accepts its events durably before answering 2xx. Every refusal stores nothing.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::accept::{self, AcceptError, Accepted};
use super::event::ProviderEvent;
use super::rate_caps::RateCaps;
use super::refusal::Refusal;
use super::signed::SignedRequest;
use super::{hubspot, jobber, pipedrive, salesforce};
use crate::connections::ConnectionRecord;
use crate::connections::service::connections_of_account;
use crate::connections::webhook_keys;
use crate::metrics::InboundMetrics;
use crate::providers::Provider;
use crate::providers::config::SharedApps;
use crate::store::Store;
use crate::syncs::change_jobs::ChangeJobs;

/// Largest body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most events in one request (HubSpot and Salesforce batch up to 100).
pub const MAX_EVENTS: usize = 100;
/// How long the body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Path prefix of every inbound webhook URL.
pub const PATH_PREFIX: &str = "/webhooks/";

/// Which URL a webhook came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The provider app's shared URL: the events name their accounts.
    App(Provider),
    /// One connection's URL, by its token.
    Connection(Provider, String),
}

/// Reads `/webhooks/<provider>[/<token>]`.
pub fn route(path: &str) -> Result<Route, Refusal> {
    let rest = path.strip_prefix(PATH_PREFIX).ok_or(Refusal::UnknownRoute)?;
    let (provider, token) = match rest.split_once('/') {
        Some((provider, token)) => (provider, Some(token)),
        None => (rest, None),
    };
    let provider = Provider::parse(provider).ok_or(Refusal::UnknownRoute)?;
    match token {
        None | Some("") => Ok(Route::App(provider)),
        Some(token) if !token.contains('/') && token.len() <= 128 => Ok(Route::Connection(provider, token.to_owned())),
        Some(_) => Err(Refusal::UnknownRoute),
    }
}

/// An answer to the provider.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u32>,
}

/// Everything the endpoint needs.
pub struct Receiver {
    pub store: Store,
    /// The providers' apps: HubSpot and Jobber sign with the client secret.
    pub apps: SharedApps,
    /// `<public url>`, without a trailing slash: HubSpot signs the full URL it called.
    pub public_url: String,
    pub metrics: InboundMetrics,
    pub caps: RateCaps,
    pub jobs: Arc<ChangeJobs>,
}

impl Receiver {
    /// Answers one inbound webhook request.
    pub async fn handle(&self, request: Request<Incoming>) -> Answer {
        let route = match route(request.uri().path()) {
            Ok(route) => route,
            Err(refusal) => return self.refuse(None, refusal),
        };
        let provider = match &route {
            Route::App(provider) | Route::Connection(provider, _) => *provider,
        };
        if request.method() != Method::POST {
            return Answer {
                status: 405,
                content_type: "text/plain; charset=utf-8",
                body: "webhooks are POSTed\n".into(),
                retry_after: None,
            };
        }
        let path_and_query = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let (parts, body) = request.into_parts();
        let body = match read_body(&parts.headers, body).await {
            Ok(body) => body,
            Err(refusal) => return self.refuse(Some(provider), refusal),
        };
        let url = format!("{}{path_and_query}", self.public_url);
        let signed = SignedRequest {
            method: parts.method.as_str(),
            url: &url,
            headers: &parts.headers,
            body: &body,
            now_ms: self.store.clock().now_ms(),
        };
        match self.receive(&route, &signed).await {
            Ok(accepted) => self.accepted(provider, &accepted),
            Err(refusal) => self.refuse(Some(provider), refusal),
        }
    }

    async fn receive(&self, route: &Route, request: &SignedRequest<'_>) -> Result<Accepted, Refusal> {
        let deliveries = match route {
            Route::Connection(provider, token) => {
                let connection = self
                    .store
                    .read(|rx| webhook_keys::connection_of_token(rx, token))
                    .map_err(|_| Refusal::Unavailable)?
                    .filter(|c| c.provider == *provider)
                    .ok_or(Refusal::UnknownRoute)?;
                let events = self.verified_events(*provider, request, Some(&connection))?;
                check_accounts(&connection, &events)?;
                if !self.caps.admit(&connection.id, request.now_ms) {
                    return Err(Refusal::RateLimited);
                }
                vec![(connection.id, events)]
            }
            Route::App(Provider::Salesforce) => return Err(Refusal::UnknownRoute),
            Route::App(provider) => {
                let events = self.verified_events(*provider, request, None)?;
                self.by_account(*provider, events, request.now_ms)?
            }
        };
        let now_ms = request.now_ms;
        let accepted = self
            .store
            .write(move |tx| accept::accept(tx, &deliveries, now_ms))
            .await
            .map_err(|error| match error {
                AcceptError::Backlogged(waiting) => {
                    tracing::warn!(waiting, "inbound webhooks refused: too many changes waiting");
                    Refusal::Backlogged
                }
                AcceptError::Store(error) => {
                    tracing::error!(%error, "could not store inbound webhook events");
                    Refusal::Unavailable
                }
            })?;
        self.jobs.queued(accepted.mappings.iter().cloned());
        Ok(accepted)
    }

    /// Verifies the request as `provider` signs it and reads its events. `connection` is the
    /// one whose URL was called; without it (an app URL) Pipedrive's credentials are checked
    /// against the connections of the account the event names.
    fn verified_events(
        &self,
        provider: Provider,
        request: &SignedRequest<'_>,
        connection: Option<&ConnectionRecord>,
    ) -> Result<Vec<ProviderEvent>, Refusal> {
        let client_secret = || {
            self.apps
                .get(provider)
                .map(|app| app.client_secret)
                .ok_or(Refusal::UnknownRoute)
        };
        let events = match provider {
            Provider::Hubspot => {
                hubspot::verify(request, client_secret()?.expose())?;
                hubspot::parse(request.body)?
            }
            Provider::Jobber => {
                jobber::verify(request, client_secret()?.expose())?;
                jobber::parse(request.body)?
            }
            Provider::Pipedrive => {
                let events = pipedrive::parse(request.body)?;
                let candidates = match connection {
                    Some(connection) => vec![connection.id.clone()],
                    None => {
                        let account = events.first().and_then(|e| e.account.clone()).unwrap_or_default();
                        self.store
                            .read(|rx| connections_of_account(rx, provider, &account))
                            .map_err(|_| Refusal::Unavailable)?
                            .into_iter()
                            .map(|c| c.id)
                            .collect()
                    }
                };
                let mut verdict = Err(Refusal::BadSignature("Authorization (HTTP Basic)"));
                for id in candidates {
                    let password = self
                        .store
                        .read(|rx| webhook_keys::basic_password(rx, &id))
                        .map_err(|_| Refusal::Unavailable)?;
                    if let Some(password) = password {
                        verdict = pipedrive::verify(request, pipedrive::BASIC_USER, password.expose());
                        if verdict.is_ok() {
                            break;
                        }
                    }
                }
                verdict?;
                events
            }
            Provider::Salesforce => {
                let connection = connection.ok_or(Refusal::UnknownRoute)?;
                let message = salesforce::parse(request.body, request.now_ms)?;
                if !salesforce::same_id(&message.organization_id, &connection.account_id) {
                    return Err(Refusal::BadSignature("OrganizationId"));
                }
                message.events
            }
        };
        if events.len() > MAX_EVENTS {
            return Err(Refusal::TooManyEvents(MAX_EVENTS));
        }
        Ok(events)
    }

    /// Assigns events sent to an app's URL to the connections of the accounts they name;
    /// events of accounts with no connection here are left out.
    fn by_account(
        &self,
        provider: Provider,
        events: Vec<ProviderEvent>,
        now_ms: i64,
    ) -> Result<Vec<(String, Vec<ProviderEvent>)>, Refusal> {
        let mut deliveries: Vec<(String, Vec<ProviderEvent>)> = Vec::new();
        let mut unknown = 0u64;
        for event in events {
            let account = event.account.clone().unwrap_or_default();
            let connections = self
                .store
                .read(|rx| connections_of_account(rx, provider, &account))
                .map_err(|_| Refusal::Unavailable)?;
            if connections.is_empty() {
                unknown += 1;
            }
            for connection in connections {
                match deliveries.iter_mut().find(|(id, _)| *id == connection.id) {
                    Some((_, events)) => events.push(event.clone()),
                    None => {
                        if !self.caps.admit(&connection.id, now_ms) {
                            return Err(Refusal::RateLimited);
                        }
                        deliveries.push((connection.id, vec![event.clone()]));
                    }
                }
            }
        }
        self.metrics.events(provider.as_str(), "ignored", unknown);
        Ok(deliveries)
    }

    fn accepted(&self, provider: Provider, accepted: &Accepted) -> Answer {
        let name = provider.as_str();
        self.metrics.events(name, "queued", accepted.queued);
        self.metrics.events(name, "duplicate", accepted.duplicates);
        self.metrics.events(name, "ignored", accepted.ignored);
        tracing::debug!(
            provider = name,
            queued = accepted.queued,
            duplicates = accepted.duplicates,
            ignored = accepted.ignored,
            "inbound webhook accepted"
        );
        if provider == Provider::Salesforce {
            return Answer {
                status: 200,
                content_type: "text/xml; charset=utf-8",
                body: salesforce::ACK.into(),
                retry_after: None,
            };
        }
        Answer {
            status: 200,
            content_type: "application/json",
            body: serde_json::json!({
                "queued": accepted.queued,
                "duplicates": accepted.duplicates,
                "ignored": accepted.ignored,
            })
            .to_string(),
            retry_after: None,
        }
    }

    fn refuse(&self, provider: Option<Provider>, refusal: Refusal) -> Answer {
        let name = provider.map_or("unknown", Provider::as_str);
        self.metrics.refused(name, refusal.reason());
        tracing::info!(provider = name, reason = refusal.reason(), %refusal, "inbound webhook refused");
        Answer {
            status: refusal.status(),
            content_type: "application/json",
            body: serde_json::json!({ "error": refusal.to_string() }).to_string(),
            retry_after: match refusal {
                Refusal::RateLimited => Some(1),
                Refusal::Backlogged | Refusal::Unavailable => Some(30),
                _ => None,
            },
        }
    }
}

/// Every event sent to a connection's own URL must be of its account.
fn check_accounts(connection: &ConnectionRecord, events: &[ProviderEvent]) -> Result<(), Refusal> {
    let field = match connection.provider {
        Provider::Hubspot => "portalId",
        Provider::Jobber => "accountId",
        Provider::Pipedrive => "meta.company_id",
        Provider::Salesforce => "OrganizationId",
    };
    for event in events {
        if let Some(account) = &event.account {
            let same = match connection.provider {
                Provider::Salesforce => salesforce::same_id(account, &connection.account_id),
                _ => *account == connection.account_id,
            };
            if !same {
                return Err(Refusal::WrongAccount {
                    field,
                    value: account.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Reads the body: at most [`MAX_BODY_BYTES`] (a larger `Content-Length` is refused before
/// reading), within [`BODY_TIMEOUT`].
async fn read_body(headers: &HeaderMap, body: Incoming) -> Result<Bytes, Refusal> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(Refusal::TooLarge(MAX_BODY_BYTES));
    }
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY_BYTES).collect()).await {
        Err(_) => Err(Refusal::Timeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => Err(Refusal::TooLarge(MAX_BODY_BYTES)),
        Ok(Err(error)) => Err(Refusal::Malformed(format!("the body could not be read: {error}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_name_a_provider_and_maybe_a_token() {
        assert_eq!(route("/webhooks/hubspot"), Ok(Route::App(Provider::Hubspot)));
        assert_eq!(route("/webhooks/jobber/"), Ok(Route::App(Provider::Jobber)));
        assert_eq!(
            route("/webhooks/pipedrive/abc"),
            Ok(Route::Connection(Provider::Pipedrive, "abc".into()))
        );
        assert_eq!(route("/webhooks/zoho/abc"), Err(Refusal::UnknownRoute));
        assert_eq!(route("/webhooks/hubspot/a/b"), Err(Refusal::UnknownRoute));
        assert_eq!(
            route(&format!("/webhooks/hubspot/{}", "x".repeat(200))),
            Err(Refusal::UnknownRoute)
        );
    }
}
