//! One actor per connection: the only holder of its access token. It refreshes ahead of expiry
//! (a lead plus jitter), on demand after a provider's 401, and single-flight: callers that ask
//! while a refresh runs wait for that one refresh. A new (possibly rotated) refresh token is
//! sealed in the same transaction as the new access token before any caller sees it.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr};

use super::records::{ACCESS_TOKEN, ConnectionRecord, ConnectionStatus, REFRESH_TOKEN};
use super::runtime::ConnectionRuntime;
use super::service::ConnectionError;
use crate::actors::supervisor::{spawn_child, stored_ids};
use crate::actors::{ChildFactory, Directory, SupervisedKind};
use crate::crypto::Secret;
use crate::events::{EventType, emit, now_rfc3339, rfc3339};
use crate::providers::oauth::{OAuthError, TokenSet};
use crate::store::{Reader, Store, StoreError};

/// Longest lead before expiry at which a refresh starts.
const MAX_LEAD: Duration = Duration::from_secs(300);
/// Longest wait between retries after transient refresh failures.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);

/// A usable access token and where to use it.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: Secret,
    pub api_base_url: String,
}

type TokenReply = RpcReplyPort<Result<AccessToken, String>>;

/// Messages to a [`ConnectionActor`].
pub enum ConnectionMsg {
    /// A valid access token, refreshing first if it expired.
    AccessToken(TokenReply),
    /// The provider answered 401 to `token`: refresh (once, however many callers report it).
    Rejected { token: Secret, reply: TokenReply },
    /// Refresh now (`fluxctl connection refresh`); replies with the record afterwards.
    Refresh(RpcReplyPort<Result<ConnectionRecord, String>>),
    /// Internal: the scheduled refresh time came, or a retry is due.
    RefreshDue,
    /// Internal: the refresh task finished (its result is already stored).
    RefreshDone(Result<(), OAuthError>),
}

/// The access token of connection `id` as stored, for a cluster node that does not run the
/// connection's actor (its owner refreshes it ahead of expiry): usable, or why not.
pub fn stored_token(store: &Store, id: &str) -> Result<AccessToken, String> {
    let (record, access) = store
        .read(|rx| Ok::<_, StoreError>((rx.get::<ConnectionRecord>(id)?, rx.secret(id, ACCESS_TOKEN)?)))
        .map_err(|error| error.to_string())?;
    let (Some(record), Some(token)) = (record, access) else {
        return Err("it has no access token".into());
    };
    let expires_at = record.token_expires_at.as_deref().and_then(|t| t.parse().ok());
    if !token_fresh(record.status, expires_at) {
        return Err("its access token expired and the node running the connection has not refreshed it yet".into());
    }
    Ok(AccessToken {
        token,
        api_base_url: record.api_base_url,
    })
}

/// Asks connection `id`'s actor to refresh now and returns the record afterwards.
pub async fn refresh_now(
    directory: &Directory,
    connection_id: &str,
) -> Result<Result<ConnectionRecord, String>, ConnectionError> {
    let actor = directory
        .actor::<ConnectionMsg>(SupervisedKind::Connections, connection_id)
        .ok_or(ConnectionError::ActorUnavailable)?;
    ractor::call!(actor, ConnectionMsg::Refresh).map_err(|_| ConnectionError::ActorUnavailable)
}

enum Waiter {
    Token(TokenReply),
    Record(RpcReplyPort<Result<ConnectionRecord, String>>),
}

pub struct ConnectionActor {
    runtime: Arc<ConnectionRuntime>,
}

pub struct ConnectionState {
    record: ConnectionRecord,
    access: Option<Secret>,
    refresh: Option<Secret>,
    expires_at: Option<jiff::Timestamp>,
    refreshing: bool,
    waiters: Vec<Waiter>,
    /// Consecutive transient failures, for backoff.
    failures: u32,
    timer: Option<JoinHandle<Result<(), ractor::MessagingErr<ConnectionMsg>>>>,
}

/// Whether an access token of a connection in `status`, expiring at `expires_at`, may be
/// used now (not within 5 s of its expiry).
fn token_fresh(status: ConnectionStatus, expires_at: Option<jiff::Timestamp>) -> bool {
    status != ConnectionStatus::Expired
        && expires_at.is_none_or(|at| at > jiff::Timestamp::now() + jiff::SignedDuration::from_secs(5))
}

impl ConnectionState {
    fn token_usable(&self) -> bool {
        self.access.is_some() && token_fresh(self.record.status, self.expires_at)
    }

    fn current(&self) -> Option<AccessToken> {
        self.access.clone().map(|token| AccessToken {
            token,
            api_base_url: self.record.api_base_url.clone(),
        })
    }

    fn set_timer(&mut self, myself: &ActorRef<ConnectionMsg>, delay: Duration) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
        self.timer = Some(myself.send_after(delay, || ConnectionMsg::RefreshDue));
    }

    /// Schedules the next proactive refresh: ahead of expiry by a fifth of the remaining
    /// lifetime (at most 5 min), minus up to a twentieth more as jitter.
    fn schedule_proactive(&mut self, myself: &ActorRef<ConnectionMsg>) {
        let (Some(expires_at), Some(_)) = (self.expires_at, &self.refresh) else {
            return;
        };
        let remaining = expires_at.duration_since(jiff::Timestamp::now()).as_secs_f64().max(0.0);
        let lead = (remaining / 5.0).min(MAX_LEAD.as_secs_f64());
        let jitter = rand::random::<f64>() * (remaining / 20.0).min(30.0);
        let delay = (remaining - lead - jitter).max(0.0);
        self.set_timer(myself, Duration::from_secs_f64(delay));
    }
}

impl ConnectionActor {
    fn start_refresh(&self, myself: &ActorRef<ConnectionMsg>, state: &mut ConnectionState) {
        if state.refreshing {
            return;
        }
        if state.refresh.is_none() {
            // No refresh token (an imported access token): nothing to refresh with.
            let reason = "this connection has no refresh token; import a new access token".to_owned();
            self.answer_waiters(state, Err(reason), None);
            return;
        }
        state.refreshing = true;
        let runtime = self.runtime.clone();
        let record = state.record.clone();
        let myself = myself.clone();
        // Whatever happens to the refresh, a panic included, the actor hears of its end, so
        // callers waiting for a token are always answered. It is not aborted when the actor
        // stops: a rotated refresh token must reach the store once the provider issued it.
        tokio::spawn(async move {
            let refresh = std::panic::AssertUnwindSafe(refresh_and_store(&runtime, &record));
            let result = futures::FutureExt::catch_unwind(refresh).await.unwrap_or_else(|_| {
                tracing::error!(connection_id = %record.id, "the token refresh failed unexpectedly; it is retried");
                Err(OAuthError::Transient {
                    provider: record.provider,
                    reason: "the refresh failed unexpectedly".into(),
                })
            });
            let _ = myself.send_message(ConnectionMsg::RefreshDone(result));
        });
    }

    /// Answers everyone waiting: token askers with `outcome`; refresh askers with the record, or
    /// with `refresh_failed` when the refresh itself failed.
    fn answer_waiters(&self, state: &mut ConnectionState, outcome: Result<(), String>, refresh_failed: Option<String>) {
        for waiter in std::mem::take(&mut state.waiters) {
            match waiter {
                Waiter::Token(reply) => {
                    let answer = match (&outcome, state.current()) {
                        (Ok(()), Some(token)) => Ok(token),
                        (Err(reason), _) => Err(reason.clone()),
                        (Ok(()), None) => Err("no access token".into()),
                    };
                    let _ = reply.send(answer);
                }
                Waiter::Record(reply) => {
                    let answer = match &refresh_failed {
                        Some(reason) => Err(reason.clone()),
                        None => outcome.clone().map(|()| state.record.clone()),
                    };
                    let _ = reply.send(answer);
                }
            }
        }
    }

    fn reload(&self, state: &mut ConnectionState) -> Result<(), StoreError> {
        let id = state.record.id.clone();
        let loaded = self.runtime.store.read(|rx| {
            Ok::<_, StoreError>((
                rx.get::<ConnectionRecord>(&id)?,
                rx.secret(&id, ACCESS_TOKEN)?,
                rx.secret(&id, REFRESH_TOKEN)?,
            ))
        })?;
        if let (Some(record), access, refresh) = loaded {
            state.expires_at = record.token_expires_at.as_deref().and_then(|t| t.parse().ok());
            state.record = record;
            state.access = access;
            state.refresh = refresh;
        }
        Ok(())
    }
}

/// Refreshes with the provider and stores the outcome: new tokens (keeping the old refresh
/// token when none came back) and `connection.refreshed`; or `expired` and
/// `connection.expired` for a revoked grant; or `error` once the token has really expired.
///
/// One refresh per connection at a time, across actor restarts: the refresh token is read
/// from the store under the connection's refresh lock, so a refresh that starts after another
/// one rotated the token uses the new one.
async fn refresh_and_store(runtime: &ConnectionRuntime, record: &ConnectionRecord) -> Result<(), OAuthError> {
    let _refreshing = runtime.refresh_locks.lock(&record.id).await;
    let oauth = runtime.oauth(record.provider).map_err(|error| OAuthError::Protocol {
        provider: record.provider,
        reason: error.to_string(),
    })?;
    let refresh_token = runtime
        .store
        .read(|rx| rx.secret(&record.id, REFRESH_TOKEN))
        .map_err(|error| OAuthError::Transient {
            provider: record.provider,
            reason: format!("store: {error}"),
        })?
        .ok_or_else(|| OAuthError::Protocol {
            provider: record.provider,
            reason: "the connection has no refresh token".into(),
        })?;
    // A node that can no longer count on the organization's lease does not refresh: its
    // result could not be stored, and a provider that rotates refresh tokens would have
    // spent the one the new owner holds.
    let fence = runtime.directory.ownership().fence(&record.org_id);
    if fence.as_ref().is_some_and(|fence| !fence.fresh()) {
        return Err(OAuthError::Protocol {
            provider: record.provider,
            reason: "this node no longer holds the organization's lease".into(),
        });
    }
    let result = oauth.refresh(&refresh_token).await;
    runtime.metrics.refreshed(
        record.provider.as_str(),
        match &result {
            Ok(_) => "ok",
            Err(OAuthError::Revoked { .. }) => "revoked",
            Err(_) => "failed",
        },
    );
    let (id, outcome) = (record.id.clone(), result.clone());
    // Fenced by the organization's lease: a node that lost it stores no tokens.
    let stored = runtime.store.fenced(fence).write(move |tx| {
        let result = outcome;
        let Some(mut current) = tx.get::<ConnectionRecord>(&id)? else { return Ok(()) };
        let now = now_rfc3339();
        current.updated_at = now.clone();
        match &result {
            Ok(tokens) => {
                store_tokens(tx, &mut current, tokens)?;
                current.status = ConnectionStatus::Active;
                current.last_refreshed_at = Some(now);
                current.last_error = None;
                tx.put(&current)?;
                let data = serde_json::json!({ "connectionId": current.id, "provider": current.provider, "expiresAt": current.token_expires_at });
                emit(tx, &current.org_id, EventType::ConnectionRefreshed, data)?;
            }
            Err(error @ OAuthError::Revoked { .. }) => {
                let was_expired = current.status == ConnectionStatus::Expired;
                current.status = ConnectionStatus::Expired;
                current.last_error = Some(error.to_string());
                tx.put(&current)?;
                if !was_expired {
                    let data = serde_json::json!({ "connectionId": current.id, "provider": current.provider, "reason": error.to_string() });
                    emit(tx, &current.org_id, EventType::ConnectionExpired, data)?;
                }
            }
            Err(error) => {
                let expired = current.token_expires_at.as_deref().and_then(|t| t.parse::<jiff::Timestamp>().ok()).is_some_and(|t| t <= jiff::Timestamp::now());
                current.last_error = Some(error.to_string());
                if expired {
                    current.status = ConnectionStatus::Error;
                }
                tx.put(&current)?;
            }
        }
        Ok::<_, StoreError>(())
    }).await;
    if let Err(error) = stored {
        tracing::error!(connection_id = %record.id, %error, "could not store the refresh outcome");
        return Err(OAuthError::Transient {
            provider: record.provider,
            reason: format!("store: {error}"),
        });
    }
    match &result {
        Ok(_) => {
            tracing::info!(connection_id = %record.id, provider = record.provider.as_str(), "access token refreshed")
        }
        Err(error) => tracing::warn!(connection_id = %record.id, %error, "refresh failed"),
    }
    result.map(|_| ())
}

fn store_tokens(
    tx: &mut crate::store::Tx<'_>,
    record: &mut ConnectionRecord,
    tokens: &TokenSet,
) -> Result<(), StoreError> {
    tx.put_secret(&record.id, ACCESS_TOKEN, &tokens.access_token)?;
    if let Some(refresh) = &tokens.refresh_token {
        tx.put_secret(&record.id, REFRESH_TOKEN, refresh)?;
    }
    record.token_expires_at = tokens.expires_at.map(rfc3339);
    if let Some(base) = &tokens.api_base_url {
        record.api_base_url = base.clone();
    }
    Ok(())
}

fn retry_delay(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(9)).min(MAX_RETRY_DELAY)
}

impl Actor for ConnectionActor {
    type Msg = ConnectionMsg;
    type State = ConnectionState;
    type Arguments = String;

    async fn pre_start(
        &self,
        myself: ActorRef<ConnectionMsg>,
        id: String,
    ) -> Result<ConnectionState, ActorProcessingErr> {
        let record = self
            .runtime
            .store
            .read(|rx| rx.get::<ConnectionRecord>(&id))?
            .ok_or_else(|| format!("connection {id} is not stored"))?;
        let mut state = ConnectionState {
            record,
            access: None,
            refresh: None,
            expires_at: None,
            refreshing: false,
            waiters: Vec::new(),
            failures: 0,
            timer: None,
        };
        self.reload(&mut state)?;
        if state.record.status != ConnectionStatus::Expired {
            state.schedule_proactive(&myself);
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<ConnectionMsg>,
        message: ConnectionMsg,
        state: &mut ConnectionState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ConnectionMsg::AccessToken(reply) => {
                if state.record.status == ConnectionStatus::Expired {
                    let reason = state
                        .record
                        .last_error
                        .clone()
                        .unwrap_or_else(|| "the grant was revoked".into());
                    let _ = reply.send(Err(format!("connection expired: {reason}")));
                } else if state.token_usable() && !state.refreshing {
                    let _ = reply.send(state.current().ok_or_else(|| "no access token".to_owned()));
                } else {
                    state.waiters.push(Waiter::Token(reply));
                    self.start_refresh(&myself, state);
                }
            }
            ConnectionMsg::Rejected { token, reply } => {
                let stale = state.access.as_ref() != Some(&token);
                if stale && state.token_usable() && !state.refreshing {
                    // Someone else's refresh already replaced the rejected token.
                    let _ = reply.send(state.current().ok_or_else(|| "no access token".to_owned()));
                } else {
                    state.waiters.push(Waiter::Token(reply));
                    self.start_refresh(&myself, state);
                }
            }
            ConnectionMsg::Refresh(reply) => {
                state.waiters.push(Waiter::Record(reply));
                self.start_refresh(&myself, state);
            }
            ConnectionMsg::RefreshDue => {
                if state.record.status != ConnectionStatus::Expired {
                    self.start_refresh(&myself, state);
                }
            }
            ConnectionMsg::RefreshDone(result) => {
                state.refreshing = false;
                self.reload(state)?;
                match result {
                    Ok(()) => {
                        state.failures = 0;
                        state.schedule_proactive(&myself);
                        self.answer_waiters(state, Ok(()), None);
                    }
                    Err(error) if error.is_transient() => {
                        let delay = retry_delay(state.failures);
                        state.failures += 1;
                        state.set_timer(&myself, delay);
                        // Callers still get the current token while it has not expired; someone
                        // who asked for the refresh itself learns that it failed.
                        let outcome = if state.token_usable() {
                            Ok(())
                        } else {
                            Err(error.to_string())
                        };
                        self.answer_waiters(state, outcome, Some(error.to_string()));
                    }
                    Err(error) => {
                        // A revoked grant or a protocol error: no retry storm, wait for the user.
                        if let Some(timer) = state.timer.take() {
                            timer.abort();
                        }
                        self.answer_waiters(state, Err(error.to_string()), None);
                    }
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ConnectionMsg>,
        state: &mut ConnectionState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.timer.take() {
            timer.abort();
        }
        self.answer_waiters(state, Err("the connection is shutting down".into()), None);
        Ok(())
    }
}

/// Starts one [`ConnectionActor`] per stored connection.
pub struct ConnectionFactory {
    pub runtime: Arc<ConnectionRuntime>,
}

impl ChildFactory for ConnectionFactory {
    fn kind(&self) -> &'static str {
        "connection"
    }

    fn initial_ids(&self) -> Vec<String> {
        stored_ids::<ConnectionRecord>(&self.runtime.store, "connection")
    }

    fn spawn(&self, id: String, supervisor: ActorCell) -> BoxFuture<'static, Result<ActorCell, SpawnErr>> {
        let actor = ConnectionActor {
            runtime: self.runtime.clone(),
        };
        spawn_child(actor, id, supervisor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_cap() {
        assert_eq!(retry_delay(0), Duration::from_secs(1));
        assert_eq!(retry_delay(3), Duration::from_secs(8));
        assert_eq!(retry_delay(30), MAX_RETRY_DELAY);
    }
}
