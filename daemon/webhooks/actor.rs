//! One actor per webhook endpoint: picks due deliveries from the durable queue, runs up to
//! `max_concurrency` attempts at once (one, in order, in FIFO mode), records their outcomes in
//! batches (one store write for every outcome that arrived while the previous one ran) and
//! sleeps until the next due time.
//!
//! The attempts and the batch write are the actor's own tasks: when the actor stops or
//! crashes they are aborted with it, and its successor starts from the store, where every
//! delivery not yet recorded is still queued (so it is sent again: at least once).

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt as _;
use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};
use tokio::task::JoinSet;

use super::attempt::{AttemptRequest, AttemptResult, HttpTransport, Transport};
use super::outbox::{parse_queue_key, unschedule};
use super::outcomes::{self, Outcome};
use super::records::{DeliveryRecord, DeliveryStatus, EndpointRecord};
use super::secrets::signing_secrets;
use super::ssrf::{SharedPolicy, delivery_client};
use crate::actors::supervisor::{spawn_child, stored_ids};
use crate::actors::{ChildFactory, Directory, SupervisedKind};
use crate::cluster::Ownership;
use crate::crypto::Secret;
use crate::events::{EventRecord, now_rfc3339};
use crate::metrics::DeliveryMetrics;
use crate::store::{IndexTable, Reader, Store, StoreError};

/// Outcomes recorded for an endpoint between two prunings of its delivery history.
const PRUNE_EVERY: usize = 500;
/// Outcomes waiting to be stored beyond which no new attempt starts (the store is behind).
const MAX_UNRECORDED: usize = 4096;
/// Wait before a batch the store refused is tried again.
const RECORD_RETRY: Duration = Duration::from_millis(500);

/// Shared by every endpoint actor.
pub struct WebhookRuntime {
    pub store: Store,
    pub transport: Arc<dyn Transport>,
    /// Finished deliveries kept per endpoint.
    pub retention: usize,
    /// Where attempts are counted.
    pub metrics: DeliveryMetrics,
    /// The leases outcomes are recorded under (cluster mode).
    pub ownership: Ownership,
}

impl WebhookRuntime {
    /// Builds the delivery client and installs the store's hook that wakes endpoint actors
    /// once new deliveries are durable.
    pub fn start(
        store: Store,
        policy: SharedPolicy,
        retention: usize,
        directory: Directory,
        metrics: DeliveryMetrics,
    ) -> Result<Arc<Self>, reqwest::Error> {
        let transport = Arc::new(HttpTransport {
            client: delivery_client(policy.clone())?,
            policy,
        });
        Ok(Self::with_transport(store, transport, retention, directory, metrics))
    }

    /// [`WebhookRuntime::start`] with another way of sending attempts.
    pub fn with_transport(
        store: Store,
        transport: Arc<dyn Transport>,
        retention: usize,
        directory: Directory,
        metrics: DeliveryMetrics,
    ) -> Arc<Self> {
        let ownership = directory.ownership().clone();
        store.set_wake_endpoint_hook(move |endpoint_id| {
            directory.send(SupervisedKind::WebhookEndpoints, endpoint_id, EndpointMsg::Wake);
        });
        Arc::new(WebhookRuntime {
            store,
            transport,
            retention,
            metrics,
            ownership,
        })
    }
}

/// Messages to an [`EndpointActor`].
#[derive(Debug)]
pub enum EndpointMsg {
    /// New deliveries may be due.
    Wake,
    /// The endpoint's record or secrets changed.
    Reload,
    /// Internal: an attempt ended.
    Attempted(Outcome),
    /// Internal: a batch of outcomes was stored (or could not be).
    Recorded {
        deliveries: Vec<String>,
        endpoint_changed: bool,
    },
}

pub struct EndpointActor {
    runtime: Arc<WebhookRuntime>,
}

pub struct EndpointState {
    id: String,
    endpoint: Option<EndpointRecord>,
    secrets: Vec<Secret>,
    /// Deliveries being attempted: at most `max_concurrency` (one in FIFO mode).
    attempting: HashSet<String>,
    /// Deliveries attempted whose outcome is not stored yet: still queued in the store, so
    /// not to be picked again, but no longer holding a slot.
    unstored: HashSet<String>,
    /// Outcomes waiting for the next batch write.
    unrecorded: Vec<Outcome>,
    /// A batch write is running.
    recording: bool,
    /// Outcomes stored since the delivery history was last pruned.
    since_prune: usize,
    /// Attempts and batch writes; aborted when the actor stops.
    tasks: JoinSet<()>,
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

    async fn dispatch(&self, myself: &ActorRef<EndpointMsg>, state: &mut EndpointState) -> Result<(), StoreError> {
        let Some(endpoint) = state.endpoint.clone().filter(|e| e.enabled) else {
            return Ok(());
        };
        let limit = if endpoint.ordered {
            1
        } else {
            endpoint.max_concurrency.max(1) as usize
        };
        // In FIFO mode the next delivery waits until the previous outcome is stored: it may be
        // a retry that has to go first.
        let busy = state.attempting.len() + if endpoint.ordered { state.unstored.len() } else { 0 };
        if busy >= limit || state.unstored.len() >= MAX_UNRECORDED {
            return Ok(());
        }
        let prefix = format!("{}/", endpoint.id);
        let scan = if endpoint.ordered {
            10_000
        } else {
            limit + state.attempting.len() + state.unstored.len() + 1
        };
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
        let now = self.runtime.store.clock().now_ms();
        for (due, delivery_id) in queue {
            if state.attempting.contains(&delivery_id) || state.unstored.contains(&delivery_id) {
                continue;
            }
            if due > now {
                set_timer(myself, state, due, now);
                break;
            }
            if state.attempting.len() >= limit {
                break;
            }
            self.start_attempt(myself, &endpoint, state, delivery_id).await?;
        }
        Ok(())
    }

    async fn start_attempt(
        &self,
        myself: &ActorRef<EndpointMsg>,
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
            return self
                .runtime
                .store
                .write(move |tx| {
                    let mut delivery = delivery;
                    unschedule(tx, &delivery)?;
                    delivery.status = DeliveryStatus::Failed;
                    delivery.next_attempt_at_ms = None;
                    delivery.finished_at = Some(now_rfc3339());
                    tx.put(&delivery)
                })
                .await;
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
        state.attempting.insert(delivery.id.clone());
        let attempt = self.runtime.transport.send(request);
        let myself = myself.clone();
        let endpoint_id = endpoint.id.clone();
        state.tasks.spawn(async move {
            let result = AssertUnwindSafe(attempt)
                .catch_unwind()
                .await
                .unwrap_or_else(|_| AttemptResult::internal_error("the attempt failed unexpectedly"));
            let _ = myself.send_message(EndpointMsg::Attempted(Outcome {
                delivery_id: delivery.id,
                endpoint_id,
                result,
            }));
        });
        Ok(())
    }

    /// Writes every outcome waiting, as one batch, unless a batch write is already running.
    fn record(&self, myself: &ActorRef<EndpointMsg>, state: &mut EndpointState) {
        if state.recording || state.unrecorded.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut state.unrecorded);
        state.since_prune += batch.len();
        let prune_to = (state.since_prune >= PRUNE_EVERY).then_some(self.runtime.retention);
        if prune_to.is_some() {
            state.since_prune = 0;
        }
        state.recording = true;
        // Fenced by the organization's lease: a node that lost it records nothing (the
        // deliveries stay queued for the new owner: at least once).
        let fence = state
            .endpoint
            .as_ref()
            .and_then(|endpoint| self.runtime.ownership.fence(&endpoint.org_id));
        let store = self.runtime.store.fenced(fence);
        let myself = myself.clone();
        state.tasks.spawn(async move {
            let deliveries: Vec<String> = batch.iter().map(|o| o.delivery_id.clone()).collect();
            let stored = store.write(move |tx| outcomes::record(tx, &batch, prune_to)).await;
            let endpoint_changed = match stored {
                Ok(changed) => changed,
                Err(error) => {
                    // The deliveries stay queued with their old due time, so they are sent
                    // again: at least once holds even when recording fails.
                    tracing::error!(%error, outcomes = deliveries.len(), "could not record webhook attempts");
                    tokio::time::sleep(RECORD_RETRY).await;
                    false
                }
            };
            let _ = myself.send_message(EndpointMsg::Recorded {
                deliveries,
                endpoint_changed,
            });
        });
    }
}

fn set_timer(myself: &ActorRef<EndpointMsg>, state: &mut EndpointState, due: i64, now: i64) {
    if state.timer_at.is_some_and(|at| at <= due && at > now) {
        return;
    }
    state.timer_at = Some(due);
    let delay = Duration::from_millis(u64::try_from(due - now).unwrap_or(0));
    myself.send_after(delay, || EndpointMsg::Wake);
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
            attempting: HashSet::new(),
            unstored: HashSet::new(),
            unrecorded: Vec::new(),
            recording: false,
            since_prune: 0,
            tasks: JoinSet::new(),
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
        // Finished tasks have told the actor what they did; let their handles go.
        while state.tasks.try_join_next().is_some() {}
        match message {
            EndpointMsg::Wake => {
                if state
                    .timer_at
                    .is_some_and(|at| at <= self.runtime.store.clock().now_ms())
                {
                    state.timer_at = None;
                }
            }
            EndpointMsg::Reload => self.load(state)?,
            EndpointMsg::Attempted(outcome) => {
                self.runtime.metrics.attempted(&outcome.result);
                state.attempting.remove(&outcome.delivery_id);
                state.unstored.insert(outcome.delivery_id.clone());
                state.unrecorded.push(outcome);
                self.record(&myself, state);
            }
            EndpointMsg::Recorded {
                deliveries,
                endpoint_changed,
            } => {
                state.recording = false;
                for delivery in &deliveries {
                    state.unstored.remove(delivery);
                }
                if endpoint_changed {
                    self.load(state)?;
                }
                self.record(&myself, state);
            }
        }
        self.dispatch(&myself, state).await?;
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
        spawn_child(actor, id, supervisor)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::time::Instant;

    use super::*;
    use crate::actors::{Factories, NoChildren, start_tree};
    use crate::clock::Clock;
    use crate::crypto::MasterKey;
    use crate::events::{EventType, emit};
    use crate::webhooks::endpoints::{self, NewEndpoint, SettingsChange};

    /// Answers every attempt the same way and notes when each one started.
    struct Scripted {
        status: u16,
        retry_after: Option<Duration>,
        started: Mutex<Vec<Instant>>,
    }

    impl Transport for Scripted {
        fn send(&self, _request: AttemptRequest) -> BoxFuture<'static, AttemptResult> {
            self.started.lock().unwrap().push(Instant::now());
            let mut result = AttemptResult::internal_error("scripted");
            result.status_code = Some(self.status);
            result.retry_after = self.retry_after;
            Box::pin(std::future::ready(result))
        }
    }

    impl Scripted {
        fn attempts(&self) -> Vec<Instant> {
            self.started.lock().unwrap().clone()
        }
    }

    /// An endpoint with `schedule` (seconds) whose receiver answers `status`, one event sent
    /// to it, on paused time; returns the attempt log and the delivery's store.
    async fn one_delivery(
        status: u16,
        retry_after: Option<Duration>,
        schedule: Vec<u32>,
    ) -> (tempfile::TempDir, Store, Arc<Scripted>, crate::actors::ActorTree) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_on_caller(
            dir.path(),
            MasterKey::generate(),
            Clock::following_tokio(whole_second()),
        )
        .unwrap();
        let transport = Arc::new(Scripted {
            status,
            retry_after,
            started: Mutex::default(),
        });
        let directory = Directory::default();
        let runtime = WebhookRuntime::with_transport(
            store.clone(),
            transport.clone(),
            100,
            directory.clone(),
            DeliveryMetrics::default(),
        );
        let policy = crate::webhooks::ssrf::AddressPolicy {
            allow_private: true,
            allow_http: true,
        };
        let new = NewEndpoint {
            url: "http://127.0.0.1:9/hook".into(),
            description: String::new(),
            event_types: vec!["sync.*".into()],
            settings: SettingsChange {
                retry_schedule_seconds: Some(schedule),
                ..SettingsChange::default()
            },
        };
        endpoints::create(&store, policy, "org_1", new).await.unwrap();
        let tree = start_tree(
            Factories {
                connections: Arc::new(NoChildren("connection")),
                mappings: Arc::new(NoChildren("mapping")),
                webhook_endpoints: Arc::new(EndpointFactory { runtime }),
            },
            directory,
        )
        .await
        .unwrap();
        store
            .write(|tx| {
                emit(
                    tx,
                    "org_1",
                    EventType::SyncCompleted,
                    serde_json::json!({"jobId": "job_1"}),
                )
            })
            .await
            .unwrap();
        (dir, store, transport, tree)
    }

    async fn settled_delivery(store: &Store) -> DeliveryRecord {
        loop {
            let deliveries = store.read(|rx| rx.list::<DeliveryRecord>()).unwrap();
            if let Some(done) = deliveries.into_iter().find(|d| d.status != DeliveryStatus::Pending) {
                return done;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn gaps_ms(attempts: &[Instant]) -> Vec<u128> {
        attempts.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect()
    }

    /// Now, to the second: stored times have second precision, so the clock starts on one.
    fn whole_second() -> jiff::Timestamp {
        jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_receiver_is_retried_1_2_and_4_seconds_apart_then_given_up() {
        let (_dir, store, transport, tree) = one_delivery(500, None, vec![1, 2, 4]).await;
        let delivery = settled_delivery(&store).await;
        assert_eq!(delivery.status, DeliveryStatus::Failed);
        assert_eq!(delivery.attempts.len(), 4);
        assert_eq!(gaps_ms(&transport.attempts()), [1000, 2000, 4000]);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(
            transport.attempts().len(),
            4,
            "no attempt after the schedule is used up"
        );
        tree.shutdown(Duration::from_secs(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_on_429_outweighs_a_shorter_schedule() {
        let (_dir, store, transport, tree) = one_delivery(429, Some(Duration::from_secs(3)), vec![1]).await;
        let delivery = settled_delivery(&store).await;
        assert_eq!(delivery.attempts.len(), 2);
        assert_eq!(gaps_ms(&transport.attempts()), [3000]);
        tree.shutdown(Duration::from_secs(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_receiver_that_succeeds_gets_one_attempt() {
        let (_dir, store, transport, tree) = one_delivery(204, None, vec![1, 2, 4]).await;
        let delivery = settled_delivery(&store).await;
        assert_eq!(delivery.status, DeliveryStatus::Succeeded);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(transport.attempts().len(), 1);
        tree.shutdown(Duration::from_secs(1)).await;
    }
}
