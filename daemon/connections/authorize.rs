//! The authorization-code flow: start (authorize URL, single-use `state`, PKCE), complete on
//! the provider's redirect, and wait for completion.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::records::{AuthorizationOutcome, AuthorizationRecord, ConnectionRecord};
use super::runtime::ConnectionRuntime;
use super::service::{ConnectionError, api_base, connection_in_org, save_connection};
use crate::crypto::Secret;
use crate::events::now_rfc3339;
use crate::providers::Provider;
use crate::providers::identity;
use crate::providers::oauth::Pkce;
use crate::store::{Reader, StoreError};

/// How long a `state` stays valid.
pub const STATE_LIFETIME: Duration = Duration::from_secs(600);
const PKCE_VERIFIER: &str = "pkce_verifier";

/// A started authorization.
pub struct Started {
    pub authorize_url: String,
    pub state: String,
    pub expires_at: String,
}

/// Why a callback was refused.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("unknown state: this authorization was not started here")]
    UnknownState,
    #[error("this state was already used; start the connection again")]
    Replayed,
    #[error("this authorization expired; start the connection again")]
    Expired,
    #[error("the provider did not authorize: {0}")]
    Denied(String),
    #[error("the callback has no authorization code")]
    MissingCode,
    #[error(transparent)]
    Connection(#[from] ConnectionError),
}

fn state_hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// Starts an authorization of `provider` for `org_id`.
pub async fn begin(
    runtime: &ConnectionRuntime,
    org_id: &str,
    provider: Provider,
    scopes: Vec<String>,
    return_to_console: bool,
) -> Result<Started, ConnectionError> {
    let mut oauth = runtime.oauth(provider)?;
    if !scopes.is_empty() {
        oauth.app.scopes = scopes;
    }
    let state = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let pkce = provider.supports_pkce().then(Pkce::generate);
    let authorize_url = oauth.authorize_url(&state, pkce.as_ref())?;
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let expires_at_ms = now_ms + i64::try_from(STATE_LIFETIME.as_millis()).unwrap_or(i64::MAX);
    let record = AuthorizationRecord {
        state_hash: state_hash(&state),
        org_id: org_id.to_owned(),
        provider,
        created_at: now_rfc3339(),
        expires_at_ms,
        outcome: AuthorizationOutcome::Pending,
        return_to_console,
    };
    let verifier = pkce.map(|pkce| pkce.verifier);
    runtime
        .store
        .write(move |tx| {
            // Forget authorizations that expired more than an hour ago.
            for old in tx.list::<AuthorizationRecord>()? {
                if old.expires_at_ms < now_ms - 3_600_000 {
                    tx.remove::<AuthorizationRecord>(&old.state_hash)?;
                    tx.remove_secret(&old.state_hash, PKCE_VERIFIER)?;
                }
            }
            tx.put(&record)?;
            if let Some(verifier) = &verifier {
                tx.put_secret(&record.state_hash, PKCE_VERIFIER, verifier)?;
            }
            Ok::<_, StoreError>(())
        })
        .await?;
    let expires_at = jiff::Timestamp::from_millisecond(expires_at_ms)
        .map(|t| t.to_string())
        .unwrap_or_default();
    Ok(Started {
        authorize_url,
        state,
        expires_at,
    })
}

/// Claims `state` for this callback: it must exist, be pending and unexpired. Returns the
/// authorization and its PKCE verifier. Claiming is one transaction, so a state is used once.
async fn claim(
    runtime: &ConnectionRuntime,
    state: &str,
) -> Result<(AuthorizationRecord, Option<Secret>), CallbackError> {
    let hash = state_hash(state);
    runtime
        .store
        .write(move |tx| {
            let mut record = tx
                .get::<AuthorizationRecord>(&hash)?
                .ok_or(CallbackError::UnknownState)?;
            if record.outcome != AuthorizationOutcome::Pending {
                return Err(CallbackError::Replayed);
            }
            if record.expires_at_ms < jiff::Timestamp::now().as_millisecond() {
                record.outcome = AuthorizationOutcome::Failed {
                    error: CallbackError::Expired.to_string(),
                };
                tx.put(&record)?;
                return Ok(Err(CallbackError::Expired));
            }
            let verifier = tx.secret(&hash, PKCE_VERIFIER)?;
            tx.remove_secret(&hash, PKCE_VERIFIER)?;
            record.outcome = AuthorizationOutcome::Consumed;
            tx.put(&record)?;
            Ok(Ok((record, verifier)))
        })
        .await?
}

impl From<StoreError> for CallbackError {
    fn from(error: StoreError) -> Self {
        CallbackError::Connection(ConnectionError::Store(error))
    }
}

/// Handles the provider's redirect: claims `state`, exchanges the code, reads the account,
/// stores the connection (emitting `connection.created`). The outcome is recorded for
/// [`wait`].
pub async fn complete(
    runtime: &Arc<ConnectionRuntime>,
    state: &str,
    code: Option<&str>,
    provider_error: Option<&str>,
) -> Completion {
    let (authorization, verifier) = match claim(runtime, state).await {
        Ok(claimed) => claimed,
        Err(error) => {
            return Completion {
                result: Err(error),
                return_to_console: false,
            };
        }
    };
    let return_to_console = authorization.return_to_console;
    let result = exchange(runtime, &authorization, code, provider_error, verifier.as_ref()).await;
    let outcome = match &result {
        Ok(record) => AuthorizationOutcome::Connected {
            connection_id: record.id.clone(),
        },
        Err(error) => AuthorizationOutcome::Failed {
            error: error.to_string(),
        },
    };
    let mut record = authorization;
    record.outcome = outcome;
    let result = match runtime.store.write(move |tx| tx.put(&record)).await {
        Ok(()) => result,
        Err(error) => Err(error.into()),
    };
    Completion {
        result,
        return_to_console,
    }
}

/// What a callback came to: the connection or why not, and where the browser goes next.
pub struct Completion {
    pub result: Result<ConnectionRecord, CallbackError>,
    /// The authorization was started from the web console, which the browser returns to.
    pub return_to_console: bool,
}

async fn exchange(
    runtime: &Arc<ConnectionRuntime>,
    authorization: &AuthorizationRecord,
    code: Option<&str>,
    provider_error: Option<&str>,
    verifier: Option<&Secret>,
) -> Result<ConnectionRecord, CallbackError> {
    if let Some(error) = provider_error {
        return Err(CallbackError::Denied(error.to_owned()));
    }
    let code = code.filter(|c| !c.is_empty()).ok_or(CallbackError::MissingCode)?;
    let provider = authorization.provider;
    let oauth = runtime.oauth(provider).map_err(ConnectionError::from)?;
    let tokens = oauth
        .exchange_code(code, verifier)
        .await
        .map_err(ConnectionError::from)?;
    let base = api_base(runtime, provider, &tokens)?;
    let whoami_base = match provider {
        Provider::Hubspot | Provider::Jobber => oauth.app.api_base_url.clone(),
        Provider::Pipedrive | Provider::Salesforce => base.clone(),
    };
    let account = identity::whoami(&runtime.http, provider, &whoami_base, &tokens.access_token)
        .await
        .map_err(ConnectionError::from)?;
    Ok(save_connection(runtime, &authorization.org_id, provider, account, tokens, base).await?)
}

/// Waits until the authorization of `state` completes, up to `timeout`.
pub async fn wait(
    runtime: &ConnectionRuntime,
    org_id: &str,
    state: &str,
    timeout: Duration,
) -> Result<ConnectionRecord, ConnectionError> {
    let hash = state_hash(state);
    let deadline = Instant::now() + timeout;
    loop {
        let found = runtime.store.read(|rx| {
            let Some(record) = rx.get::<AuthorizationRecord>(&hash)?.filter(|r| r.org_id == org_id) else {
                return Err(ConnectionError::UnknownAuthorization);
            };
            match record.outcome {
                AuthorizationOutcome::Connected { connection_id } => {
                    connection_in_org(rx, org_id, &connection_id).map(Some)
                }
                AuthorizationOutcome::Failed { error } => Err(ConnectionError::AuthorizationFailed(error)),
                AuthorizationOutcome::Pending | AuthorizationOutcome::Consumed => Ok(None),
            }
        })?;
        if let Some(record) = found {
            return Ok(record);
        }
        if Instant::now() >= deadline {
            return Err(ConnectionError::Timeout(timeout.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
