//! The providers' outgoing webhooks: record changes made through a simulator's API or its
//! control API are sent, as the provider sends them, to the URLs registered with it —
//! HubSpot's and Jobber's app-level URL (set in their developer portals, here
//! `PUT /_control/<provider>/webhooks`), Pipedrive's webhooks API (`/api/v1/webhooks`), and
//! Salesforce outbound messages (set in Setup, here `POST /_control/salesforce/webhooks`).
//! Each is signed the provider's way and retried on the provider's schedule.

mod dispatch;
mod payloads;
pub mod pipedrive_api;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Value, json};

pub use dispatch::run as dispatch;

use super::request::{Reply, SandboxRequest, json_reply};
use super::state::SandboxState;
use crate::providers::Provider;

/// Deliveries waiting before new ones are dropped (and counted).
const QUEUE_LIMIT: usize = 20_000;

/// Where a change was made: through the provider's API (an integration) or as a person
/// would, in the provider's UI (the control API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Api,
    Ui,
}

/// An app-level webhook (HubSpot, Jobber): one URL for every installed account's events.
#[derive(Debug, Clone)]
pub struct AppWebhook {
    pub url: String,
    /// Subscribed event types (HubSpot `contact.creation`, Jobber `CLIENT_UPDATE`); empty for
    /// all.
    pub events: Vec<String>,
}

/// A Pipedrive webhook, created through its API by one account.
#[derive(Debug, Clone)]
pub struct PipedriveHook {
    pub id: u64,
    pub account: u32,
    pub event_action: String,
    pub event_object: String,
    pub url: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub version: String,
    pub name: String,
    pub add_time: String,
    pub last_http_status: Option<u16>,
}

/// A Salesforce outbound message of one org: which object's creates and edits it sends, with
/// which fields, where.
#[derive(Debug, Clone)]
pub struct OutboundMessage {
    pub id: String,
    pub account: u32,
    pub object: String,
    pub url: String,
    pub fields: Vec<String>,
}

/// What one request carries; HubSpot and Pipedrive bodies change per attempt (attempt
/// numbers), so they are built when sent.
#[derive(Debug, Clone)]
pub enum Payload {
    /// A batch of events.
    Hubspot(Vec<Value>),
    /// The body, as signed.
    Jobber(String),
    /// The event and the webhook's Basic credentials.
    Pipedrive {
        hook: u64,
        event: Value,
        basic: Option<(String, String)>,
    },
    /// The SOAP envelope.
    Salesforce(String),
}

/// A request to send, with its retry state.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub provider: Provider,
    pub url: String,
    pub payload: Payload,
    /// Attempts made so far.
    pub attempts: u32,
    pub due_ms: i64,
    pub created_ms: i64,
}

/// What a provider's webhooks did.
#[derive(Debug, Clone, Default)]
pub struct DeliveryStats {
    pub attempts: u64,
    pub delivered: u64,
    pub failed_attempts: u64,
    pub given_up: u64,
    pub dropped: u64,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

/// Registrations, the delivery queue and counters.
#[derive(Debug, Default)]
pub struct WebhooksState {
    pub hubspot: Option<AppWebhook>,
    pub jobber: Option<AppWebhook>,
    pub pipedrive: Vec<PipedriveHook>,
    pub salesforce: Vec<OutboundMessage>,
    queue: VecDeque<Delivery>,
    stats: BTreeMap<Provider, DeliveryStats>,
    next_id: u64,
}

impl WebhooksState {
    /// A fresh number for event and webhook ids.
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn stats(&mut self, provider: Provider) -> &mut DeliveryStats {
        self.stats.entry(provider).or_default()
    }

    fn enqueue(&mut self, delivery: Delivery) {
        if self.queue.len() >= QUEUE_LIMIT {
            self.stats(delivery.provider).dropped += 1;
            return;
        }
        self.queue.push_back(delivery);
    }

    /// Takes up to `limit` deliveries due at `now_ms`; also returns when the next one left
    /// is due.
    pub fn take_due(&mut self, now_ms: i64, limit: usize) -> (Vec<Delivery>, Option<i64>) {
        let mut due = Vec::new();
        let mut later = VecDeque::with_capacity(self.queue.len());
        for delivery in self.queue.drain(..) {
            if delivery.due_ms <= now_ms && due.len() < limit {
                due.push(delivery);
            } else {
                later.push_back(delivery);
            }
        }
        self.queue = later;
        let next = self.queue.iter().map(|d| d.due_ms).min();
        (due, next)
    }

    /// Records the outcome of an attempt at `now_ms`: a failed one is retried on the
    /// provider's schedule, or given up.
    pub fn settle(&mut self, mut delivery: Delivery, status: Option<u16>, error: Option<String>, now_ms: i64) {
        let provider = delivery.provider;
        delivery.attempts += 1;
        let delivered = error.is_none();
        if let Payload::Pipedrive { hook, .. } = &delivery.payload
            && let Some(hook) = self.pipedrive.iter_mut().find(|h| h.id == *hook)
        {
            hook.last_http_status = status;
        }
        let stats = self.stats(provider);
        stats.attempts += 1;
        stats.last_status = status;
        if delivered {
            stats.delivered += 1;
            return;
        }
        stats.failed_attempts += 1;
        stats.last_error = error;
        match dispatch::retry_delay_ms(provider, delivery.attempts, now_ms - delivery.created_ms) {
            Some(delay) => {
                delivery.due_ms = now_ms + delay;
                self.queue.push_back(delivery);
            }
            None => stats.given_up += 1,
        }
    }
}

/// The accounts that installed `provider`'s app (hold a live grant).
fn installed_accounts(state: &SandboxState, provider: Provider) -> BTreeSet<u32> {
    state
        .providers
        .get(&provider)
        .map(|p| {
            p.refresh_tokens
                .values()
                .map(|g| g.account)
                .chain(p.access_tokens.values().map(|g| g.account))
                .collect()
        })
        .unwrap_or_default()
}

/// Turns the record changes `provider` made since the last call into deliveries to its
/// subscribers; returns how many were queued.
pub fn capture(state: &mut SandboxState, provider: Provider, origin: Origin) -> usize {
    let changes: Vec<_> = state.records.provider(provider).changes.drain(..).collect();
    if changes.is_empty() {
        return 0;
    }
    let accounts = installed_accounts(state, provider);
    let now_ms = super::records::now_ms();
    let deliveries = payloads::deliveries(&mut state.webhooks, provider, &changes, &accounts, origin);
    let queued = deliveries.len();
    for (url, payload) in deliveries {
        state.webhooks.enqueue(Delivery {
            provider,
            url,
            payload,
            attempts: 0,
            due_ms: now_ms,
            created_ms: now_ms,
        });
    }
    queued
}

/// `GET|PUT|POST|DELETE /_control/<provider>/webhooks`: the registrations a provider's
/// developer portal or Setup would hold, and what the webhooks did.
pub fn control(state: &mut SandboxState, provider: Provider, request: &SandboxRequest) -> Reply {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
    let webhooks = &mut state.webhooks;
    match (&request.method, provider) {
        (&http::Method::GET, _) => {}
        (&http::Method::DELETE, _) => match provider {
            Provider::Hubspot => webhooks.hubspot = None,
            Provider::Jobber => webhooks.jobber = None,
            Provider::Pipedrive => webhooks.pipedrive.clear(),
            Provider::Salesforce => webhooks.salesforce.clear(),
        },
        (&http::Method::PUT, Provider::Hubspot | Provider::Jobber) => {
            let (url_key, events_key) = if provider == Provider::Hubspot {
                ("targetUrl", "events")
            } else {
                ("url", "topics")
            };
            let Some(url) = body[url_key].as_str().filter(|u| url::Url::parse(u).is_ok()) else {
                return json_reply(400, json!({ "error": format!("{url_key} must be a URL") }));
            };
            let events = body[events_key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            let app = AppWebhook {
                url: url.to_owned(),
                events,
            };
            if provider == Provider::Hubspot {
                webhooks.hubspot = Some(app);
            } else {
                webhooks.jobber = Some(app);
            }
        }
        (&http::Method::POST, Provider::Salesforce) => {
            let Some(url) = body["url"].as_str().filter(|u| url::Url::parse(u).is_ok()) else {
                return json_reply(400, json!({ "error": "url must be a URL" }));
            };
            let Some(object) = body["object"]
                .as_str()
                .and_then(|o| super::records::canonical_object(provider, o))
            else {
                return json_reply(
                    400,
                    json!({ "error": "object must be Contact, Account or Opportunity" }),
                );
            };
            let account = body["account"]
                .as_u64()
                .and_then(|a| u32::try_from(a).ok())
                .unwrap_or(1);
            let fields = body["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            let id = format!("04k5e0000{:09}", webhooks.next_id());
            webhooks.salesforce.push(OutboundMessage {
                id,
                account,
                object: object.to_owned(),
                url: url.to_owned(),
                fields,
            });
        }
        _ => {
            return json_reply(
                405,
                json!({ "error": "GET, PUT (HubSpot, Jobber), POST (Salesforce) or DELETE" }),
            );
        }
    }
    let stats = webhooks.stats(provider).clone();
    let pending = webhooks.queue.iter().filter(|d| d.provider == provider).count();
    let registrations: Vec<Value> = match provider {
        Provider::Hubspot => webhooks
            .hubspot
            .iter()
            .map(|a| json!({ "targetUrl": a.url, "events": a.events }))
            .collect(),
        Provider::Jobber => webhooks
            .jobber
            .iter()
            .map(|a| json!({ "url": a.url, "topics": a.events }))
            .collect(),
        Provider::Pipedrive => webhooks.pipedrive.iter().map(pipedrive_api::hook_json).collect(),
        Provider::Salesforce => webhooks
            .salesforce
            .iter()
            .map(|m| json!({ "id": m.id, "account": m.account, "object": m.object, "url": m.url, "fields": m.fields }))
            .collect(),
    };
    json_reply(
        200,
        json!({
            "registrations": registrations,
            "pending": pending,
            "attempts": stats.attempts,
            "delivered": stats.delivered,
            "failed_attempts": stats.failed_attempts,
            "given_up": stats.given_up,
            "dropped": stats.dropped,
            "last_status": stats.last_status,
            "last_error": stats.last_error,
        }),
    )
}
