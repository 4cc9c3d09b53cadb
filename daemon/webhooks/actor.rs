//! One actor per webhook endpoint: picks due deliveries from the durable queue, runs up to
//! `max_concurrency` attempts at once (one, in order, in FIFO mode) and sleeps until the next
//! due time. Outcomes are recorded by the recorder, which tells the actor when a slot frees.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::attempt::{self, AttemptRequest};
use super::outbox::{now_ms, parse_queue_key, unschedule};
use super::recorder::{self, Outcome};
use super::records::{DeliveryRecord, DeliveryStatus, EndpointRecord};
use super::secrets::signing_secrets;
use super::ssrf::{AddressPolicy, delivery_client};
use crate::actors::ChildFactory;
use crate::actors::supervisor::{spawn_child, stored_ids};
use crate::crypto::Secret;
use crate::events::{EventRecord, now_rfc3339};
use crate::store::{IndexTable, Reader, Store, StoreError};

/// Shared by every endpoint actor.
pub struct WebhookRuntime {
    pub store: Store,
    pub client: reqwest::Client,
    pub outcomes: mpsc::Sender<Outcome>,
}

impl WebhookRuntime {
    /// Builds the delivery client, starts the outcome recorder and installs the store's hook
    /// that wakes endpoint actors after new deliveries commit. The recorder ends once the
    /// runtime and every in-flight attempt are dropped.
    pub fn start(
        store: Store,
        policy: AddressPolicy,
        retention: usize,
    ) -> Result<(Arc<Self>, JoinHandle<()>), reqwest::Error> {
        let (outcomes, outcome_queue) = mpsc::channel(8192);
        let recorder = tokio::spawn(recorder::run(store.clone(), outcome_queue, retention));
        store.set_wake_endpoint_hook(|endpoint_id| notify_endpoint(endpoint_id, EndpointMsg::Wake));
        let client = delivery_client(policy)?;
        Ok((
            Arc::new(WebhookRuntime {
                store,
                client,
                outcomes,
            }),
            recorder,
        ))
    }
}

/// Messages to an [`EndpointActor`].
#[derive(Debug)]
pub enum EndpointMsg {
    /// New deliveries may be due.
    Wake,
    /// The endpoint's record or secrets changed.
    Reload,
    /// An attempt's outcome was recorded; its slot is free.
    Recorded(String),
}

/// The actor name of endpoint `id`.
pub fn actor_name(endpoint_id: &str) -> String {
    format!("webhook_endpoint:{endpoint_id}")
}

/// Sends `message` to endpoint `id`'s actor, if it runs.
pub fn notify_endpoint(endpoint_id: &str, message: EndpointMsg) {
    if let Some(cell) = ractor::registry::where_is(actor_name(endpoint_id)) {
        let _ = cell.send_message(message);
    }
}

pub struct EndpointActor {
    runtime: Arc<WebhookRuntime>,
}

pub struct EndpointState {
    id: String,
    endpoint: Option<EndpointRecord>,
    secrets: Vec<Secret>,
    in_flight: HashSet<String>,
    /// Unix ms of the pending timer's wake-up, if one is set.
    timer_at: Option<i64>,
}

impl EndpointActor {
    fn load(&self, state: &mut EndpointState) -> Result<(), StoreError> {
        let id = state.id.clone();
        let (endpoint, secrets) = self.runtime.store.read(|rx| {
            let endpoint = rx.get::<EndpointRecord>(&id)?;
            let secrets = match &endpoint {
                Some(endpoint) => signing_secrets(rx, endpoint)?,
                None => Vec::new(),
            };
            Ok::<_, StoreError>((endpoint, secrets))
        })?;
        state.endpoint = endpoint;
        state.secrets = secrets;
        Ok(())
    }

    fn dispatch(&self, myself: &ActorRef<EndpointMsg>, state: &mut EndpointState) -> Result<(), StoreError> {
        let Some(endpoint) = state.endpoint.clone().filter(|e| e.enabled) else {
            return Ok(());
        };
        let limit = if endpoint.ordered {
            1
        } else {
            endpoint.max_concurrency.max(1) as usize
        };
        if state.in_flight.len() >= limit {
            return Ok(());
        }
        let prefix = format!("{}/", endpoint.id);
        let scan = if endpoint.ordered { 10_000 } else { limit + 1 };
        let keys = self
            .runtime
            .store
            .read(|rx| rx.index_keys(IndexTable::DeliveryQueue, &prefix, scan))?;
        let mut queue: Vec<(i64, String)> = keys
            .iter()
            .filter_map(|key| parse_queue_key(key).map(|(due, id)| (due, id.to_owned())))
            .collect();
        if endpoint.ordered {
            // FIFO: the oldest delivery (ids are time-ordered) goes first, even while it waits to retry.
            queue.sort_by(|a, b| a.1.cmp(&b.1));
            queue.truncate(1);
        }
        let now = now_ms();
        for (due, delivery_id) in queue {
            if state.in_flight.contains(&delivery_id) {
                continue;
            }
            if due > now {
                self.set_timer(myself, state, due, now);
                break;
            }
            if state.in_flight.len() >= limit {
                break;
            }
            self.start_attempt(&endpoint, state, delivery_id)?;
        }
        Ok(())
    }

    fn set_timer(&self, myself: &ActorRef<EndpointMsg>, state: &mut EndpointState, due: i64, now: i64) {
        if state.timer_at.is_some_and(|at| at <= due && at > now) {
            return;
        }
        state.timer_at = Some(due);
        let delay = Duration::from_millis(u64::try_from(due - now).unwrap_or(0));
        myself.send_after(delay, || EndpointMsg::Wake);
    }

    fn start_attempt(
        &self,
        endpoint: &EndpointRecord,
        state: &mut EndpointState,
        delivery_id: String,
    ) -> Result<(), StoreError> {
        let loaded = self.runtime.store.read(|rx| {
            let Some(delivery) = rx.get::<DeliveryRecord>(&delivery_id)? else {
                return Ok(None);
            };
            let event = rx.get::<EventRecord>(&delivery.event_id)?;
            Ok::<_, StoreError>(Some((delivery, event)))
        })?;
        let Some((delivery, event)) = loaded.filter(|(d, _)| d.status == DeliveryStatus::Pending) else {
            return Ok(());
        };
        let Some(event) = event else {
            // Redelivering an event older than the outbox keeps: nothing left to send.
            return self.runtime.store.write(|tx| {
                let mut delivery = delivery;
                unschedule(tx, &delivery)?;
                delivery.status = DeliveryStatus::Failed;
                delivery.next_attempt_at_ms = None;
                delivery.finished_at = Some(now_rfc3339());
                tx.put(&delivery)
            });
        };
        // Invariant: the payload is a JSON value built by `EventRecord::payload`.
        let body = Bytes::from(serde_json::to_vec(&event.payload()).expect("payload serializes"));
        let request = AttemptRequest {
            url: endpoint.url.clone(),
            body,
            event_id: event.id.clone(),
            event_type: event.event_type.as_str().to_owned(),
            delivery_id: delivery.id.clone(),
            attempt_number: u32::try_from(delivery.attempts.len() + 1).unwrap_or(u32::MAX),
            secrets: current_secrets(endpoint, &state.secrets),
            timeout: Duration::from_secs(u64::from(endpoint.timeout_seconds.max(1))),
        };
        state.in_flight.insert(delivery.id.clone());
        let runtime = self.runtime.clone();
        let endpoint_id = endpoint.id.clone();
        tokio::spawn(async move {
            let result = attempt::send(&runtime.client, request).await;
            let outcome = Outcome {
                delivery_id: delivery.id,
                endpoint_id,
                result,
            };
            if runtime.outcomes.send(outcome).await.is_err() {
                tracing::debug!("recorder stopped; the delivery stays queued and is retried after restart");
            }
        });
        Ok(())
    }
}

/// The loaded secrets, without the previous one once its overlap window has passed.
fn current_secrets(endpoint: &EndpointRecord, loaded: &[Secret]) -> Vec<Secret> {
    let previous_expired = endpoint
        .previous_secret_expires_at
        .as_deref()
        .and_then(|at| at.parse::<jiff::Timestamp>().ok())
        .is_none_or(|expires| expires <= jiff::Timestamp::now());
    let keep = if previous_expired { 1 } else { loaded.len() };
    loaded.iter().take(keep).cloned().collect()
}

impl Actor for EndpointActor {
    type Msg = EndpointMsg;
    type State = EndpointState;
    type Arguments = String;

    async fn pre_start(&self, myself: ActorRef<EndpointMsg>, id: String) -> Result<EndpointState, ActorProcessingErr> {
        let mut state = EndpointState {
            id,
            endpoint: None,
            secrets: Vec::new(),
            in_flight: HashSet::new(),
            timer_at: None,
        };
        self.load(&mut state)?;
        myself.send_message(EndpointMsg::Wake)?;
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<EndpointMsg>,
        message: EndpointMsg,
        state: &mut EndpointState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            EndpointMsg::Wake => {
                if state.timer_at.is_some_and(|at| at <= now_ms()) {
                    state.timer_at = None;
                }
            }
            EndpointMsg::Reload => self.load(state)?,
            EndpointMsg::Recorded(delivery_id) => {
                state.in_flight.remove(&delivery_id);
            }
        }
        self.dispatch(&myself, state)?;
        Ok(())
    }
}

/// Starts one [`EndpointActor`] per stored endpoint.
pub struct EndpointFactory {
    pub runtime: Arc<WebhookRuntime>,
}

impl ChildFactory for EndpointFactory {
    fn kind(&self) -> &'static str {
        "webhook endpoint"
    }

    fn initial_ids(&self) -> Vec<String> {
        stored_ids::<EndpointRecord>(&self.runtime.store, "webhook endpoint")
    }

    fn spawn(&self, id: String, supervisor: ActorCell) -> BoxFuture<'static, Result<ActorCell, SpawnErr>> {
        let actor = EndpointActor {
            runtime: self.runtime.clone(),
        };
        spawn_child(actor_name(&id), actor, id, supervisor)
    }
}
