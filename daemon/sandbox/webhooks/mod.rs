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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::signed::SignedRequest;
    use crate::inbound::{hubspot, jobber, pipedrive, salesforce};
    use crate::sandbox::client_secret;
    use crate::sandbox::state::RefreshGrant;
    use crate::syncs::changes::Change;

    const URL: &str = "http://fluxd.test/webhooks/x";

    fn installed(provider: Provider) -> SandboxState {
        let mut state = SandboxState::default();
        state
            .provider(provider)
            .refresh_tokens
            .insert("r".into(), RefreshGrant { account: 1 });
        state
    }

    fn fields(pairs: &[(&str, &str)]) -> serde_json::Map<String, Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect()
    }

    /// The deliveries queued, as requests of their first attempt: (headers, body).
    fn sent(state: &mut SandboxState, now_ms: i64) -> Vec<(http::HeaderMap, String)> {
        let (due, _) = state.webhooks.take_due(i64::MAX, 100);
        due.iter()
            .map(|delivery| {
                let (headers, body) = payloads::request(&delivery.payload, &delivery.url, 0, now_ms);
                let headers = headers
                    .into_iter()
                    .map(|(k, v)| (http::HeaderName::try_from(k).unwrap(), v.parse().unwrap()))
                    .collect();
                (headers, body)
            })
            .collect()
    }

    fn signed<'a>(headers: &'a http::HeaderMap, body: &'a str, now_ms: i64) -> SignedRequest<'a> {
        SignedRequest {
            method: "POST",
            url: URL,
            headers,
            body: body.as_bytes(),
            now_ms,
        }
    }

    #[test]
    fn hubspot_sends_one_signed_batch_of_creation_property_and_deletion_events() {
        let mut state = installed(Provider::Hubspot);
        state.webhooks.hubspot = Some(AppWebhook {
            url: URL.into(),
            events: Vec::new(),
        });
        let records = state.records.provider(Provider::Hubspot);
        let id = records
            .create("contacts", fields(&[("firstname", "Ann")]), None)
            .unwrap();
        records.update(
            "contacts",
            &id,
            fields(&[("firstname", "Anna"), ("lastname", "Lee")]),
            false,
        );
        records.delete("contacts", &id);
        assert_eq!(capture(&mut state, Provider::Hubspot, Origin::Api), 1, "one batch");
        let now = crate::sandbox::records::now_ms();
        let requests = sent(&mut state, now);
        let (headers, body) = &requests[0];
        hubspot::verify(&signed(headers, body, now), &client_secret(Provider::Hubspot)).expect("v3 verifies");
        let events = hubspot::parse(body.as_bytes()).unwrap();
        let kinds: Vec<(&str, Change)> = events
            .iter()
            .map(|e| (e.record_id.as_str(), e.change.clone()))
            .collect();
        assert_eq!(
            kinds,
            [
                (id.as_str(), Change::Changed),
                (id.as_str(), Change::Changed),
                (id.as_str(), Change::Changed),
                (id.as_str(), Change::Deleted),
            ],
            "creation, two property changes, deletion"
        );
        assert!(events.iter().all(|e| e.account.as_deref() == Some("62515")));
        let batch: Value = serde_json::from_str(body).unwrap();
        assert_eq!(batch[1]["subscriptionType"], "contact.propertyChange");
        assert_eq!(batch[0]["changeSource"], "INTEGRATION");
    }

    #[test]
    fn jobber_pipedrive_and_salesforce_payloads_verify_and_read_as_their_providers_define() {
        let mut state = installed(Provider::Jobber);
        state.webhooks.jobber = Some(AppWebhook {
            url: URL.into(),
            events: vec!["CLIENT_UPDATE".into()],
        });
        let records = state.records.provider(Provider::Jobber);
        let id = records
            .create("clients", fields(&[("firstName", "Ann")]), None)
            .unwrap();
        records.update("clients", &id, fields(&[("firstName", "Anna")]), false);
        assert_eq!(
            capture(&mut state, Provider::Jobber, Origin::Ui),
            1,
            "only the subscribed topic"
        );
        let (headers, body) = &sent(&mut state, 0)[0];
        jobber::verify(&signed(headers, body, 0), &client_secret(Provider::Jobber)).expect("HMAC verifies");
        assert_eq!(jobber::parse(body.as_bytes()).unwrap()[0].record_id, id);

        let mut state = installed(Provider::Pipedrive);
        state.webhooks.pipedrive.push(PipedriveHook {
            id: 7,
            account: 1,
            event_action: "*".into(),
            event_object: "person".into(),
            url: URL.into(),
            user: Some("u".into()),
            password: Some("p".into()),
            version: "2.0".into(),
            name: "n".into(),
            add_time: String::new(),
            last_http_status: None,
        });
        let records = state.records.provider(Provider::Pipedrive);
        records.create("persons", fields(&[("name", "Ann")]), None).unwrap();
        records.create("deals", fields(&[("title", "Deal")]), None).unwrap();
        assert_eq!(capture(&mut state, Provider::Pipedrive, Origin::Api), 1, "only persons");
        let (headers, body) = &sent(&mut state, 0)[0];
        pipedrive::verify(&signed(headers, body, 0), "u", "p").expect("Basic verifies");
        let event = &pipedrive::parse(body.as_bytes()).unwrap()[0];
        assert_eq!(
            (event.object.as_str(), event.account.as_deref()),
            ("persons", Some("1001"))
        );

        let mut state = installed(Provider::Salesforce);
        state.webhooks.salesforce.push(OutboundMessage {
            id: "04k5e0000000001".into(),
            account: 1,
            object: "Contact".into(),
            url: URL.into(),
            fields: vec!["LastName".into()],
        });
        let records = state.records.provider(Provider::Salesforce);
        let id = records
            .create("Contact", fields(&[("LastName", "O'Brien & <Co>")]), None)
            .unwrap();
        records.delete("Contact", &id);
        assert_eq!(capture(&mut state, Provider::Salesforce, Origin::Api), 1);
        let (_, body) = &sent(&mut state, 0)[0];
        let message = salesforce::parse(body.as_bytes(), 0).unwrap();
        assert_eq!(message.organization_id, "00D5e0000000001");
        assert_eq!(message.events.len(), 1, "the deletion sends nothing");
        assert_eq!(message.events[0].record_id, id);
    }

    #[test]
    fn failed_deliveries_wait_their_providers_retry_delay_and_are_given_up_at_the_end() {
        let mut state = WebhooksState::default();
        state.enqueue(Delivery {
            provider: Provider::Pipedrive,
            url: URL.into(),
            payload: Payload::Jobber(String::new()),
            attempts: 0,
            due_ms: 0,
            created_ms: 0,
        });
        let mut now = 0;
        for expected_wait in [3_000, 30_000, 150_000] {
            let (mut due, next) = state.take_due(now, 10);
            assert_eq!((due.len(), next), (1, None));
            state.settle(due.remove(0), Some(500), Some("HTTP 500".into()), now);
            let (early, next) = state.take_due(now + expected_wait - 1, 10);
            assert!(early.is_empty());
            assert_eq!(next, Some(now + expected_wait));
            now += expected_wait;
        }
        let (mut due, _) = state.take_due(now, 10);
        state.settle(due.remove(0), None, Some("connection refused".into()), now);
        assert_eq!(state.take_due(i64::MAX, 10).0.len(), 0, "given up after 4 attempts");
        let stats = state.stats(Provider::Pipedrive).clone();
        assert_eq!((stats.attempts, stats.failed_attempts, stats.given_up), (4, 4, 1));
    }
}
