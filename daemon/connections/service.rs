//! Connection operations: create from tokens, list, get, delete, and the errors users see.

use std::sync::Arc;

use super::records::{ACCESS_TOKEN, ConnectionRecord, ConnectionStatus, REFRESH_TOKEN};
use super::runtime::ConnectionRuntime;
use super::webhook_keys;
use crate::actors::SupervisedKind;
use crate::auth::records::OrganizationRecord;
use crate::events::{EventType, emit, now_rfc3339, rfc3339};
use crate::ids::{IdKind, new_id};
use crate::providers::Provider;
use crate::providers::config::ProviderConfigError;
use crate::providers::identity::{self, Account, IdentityError};
use crate::providers::oauth::{OAuthError, TokenSet};
use crate::store::{IndexTable, OrgKind, Reader, StoreError, Tx};

/// Errors of connection operations.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error(transparent)]
    NotConfigured(#[from] ProviderConfigError),
    #[error("connection {0:?} not found")]
    NotFound(String),
    #[error("{field}: {problem}")]
    Invalid { field: &'static str, problem: String },
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("authorization failed: {0}")]
    AuthorizationFailed(String),
    #[error("no authorization with this state (unknown, or started by another organization)")]
    UnknownAuthorization,
    #[error("the authorization was not completed within {0} s")]
    Timeout(u64),
    #[error("connection {id:?} is {status:?}: {reason}")]
    Unusable {
        id: String,
        status: ConnectionStatus,
        reason: String,
    },
    #[error("the connection's actor is not running")]
    ActorUnavailable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Connection `id` of organization `org_id`.
pub fn connection_in_org(rx: &impl Reader, org_id: &str, id: &str) -> Result<ConnectionRecord, ConnectionError> {
    rx.get::<ConnectionRecord>(id)?
        .filter(|c| c.org_id == org_id)
        .ok_or_else(|| ConnectionError::NotFound(id.to_owned()))
}

/// The key listing `record` among its provider account's connections.
fn account_key(record: &ConnectionRecord) -> String {
    format!("{}/{}/{}", record.provider.as_str(), record.account_id, record.id)
}

/// The connections of `provider` account `account_id`, in any organization: a provider that
/// sends all its accounts' webhooks to one URL names the account in each event.
pub fn connections_of_account(
    rx: &impl Reader,
    provider: Provider,
    account_id: &str,
) -> Result<Vec<ConnectionRecord>, StoreError> {
    let prefix = format!("{}/{account_id}/", provider.as_str());
    let mut found = Vec::new();
    for key in rx.index_keys(IndexTable::Accounts, &prefix, 1000)? {
        found.extend(rx.get::<ConnectionRecord>(&key[prefix.len()..])?);
    }
    Ok(found)
}

/// Stores what an authorization or import obtained for `account`: a new connection, or, when
/// the organization already connects that account, its new tokens (a reconnect: the same id,
/// so mappings keep working, and `connection.refreshed`). A reconnected connection's actor is
/// stopped here; the caller starts it again with the new tokens.
pub async fn save_connection(
    runtime: &ConnectionRuntime,
    org_id: &str,
    provider: Provider,
    account: Account,
    tokens: TokenSet,
    api_base_url: String,
) -> Result<ConnectionRecord, ConnectionError> {
    let existing = runtime.store.read(|rx| {
        Ok::<_, StoreError>(
            connections_of_account(rx, provider, &account.id)?
                .into_iter()
                .find(|record| record.org_id == org_id),
        )
    })?;
    let Some(existing) = existing else {
        let org = org_id.to_owned();
        let record = runtime
            .store
            .write(move |tx| {
                // An authorization that completes after its organization was deleted.
                if tx.get::<OrganizationRecord>(&org)?.is_none() {
                    return Err(ConnectionError::UnknownAuthorization);
                }
                Ok(insert_connection(tx, &org, provider, &account, &tokens, api_base_url)?)
            })
            .await?;
        tracing::info!(connection_id = %record.id, provider = provider.as_str(), account = %record.account_name, "connection created");
        return Ok(record);
    };
    // No refresh with the old grant may land after the new tokens.
    let _refreshing = runtime.refresh_locks.lock(&existing.id).await;
    let (id, org) = (existing.id.clone(), org_id.to_owned());
    let (record, reconnected) = runtime
        .store
        .write(move |tx| match tx.get::<ConnectionRecord>(&id)? {
            Some(record) => Ok((reconnect(tx, record, &account, &tokens, api_base_url)?, true)),
            // Deleted meanwhile: a new connection after all.
            None => Ok::<_, StoreError>((
                insert_connection(tx, &org, provider, &account, &tokens, api_base_url)?,
                false,
            )),
        })
        .await?;
    if reconnected {
        runtime
            .directory
            .stop_child(SupervisedKind::Connections, &record.id)
            .await;
    }
    tracing::info!(connection_id = %record.id, provider = provider.as_str(), account = %record.account_name, reconnected, "connection saved");
    Ok(record)
}

/// Replaces `record`'s tokens with a new grant's and makes it active again.
fn reconnect(
    tx: &mut Tx<'_>,
    mut record: ConnectionRecord,
    account: &Account,
    tokens: &TokenSet,
    api_base_url: String,
) -> Result<ConnectionRecord, StoreError> {
    let now = now_rfc3339();
    record.status = ConnectionStatus::Active;
    record.account_name = account.name.clone();
    record.token_expires_at = tokens.expires_at.map(rfc3339);
    record.last_refreshed_at = Some(now.clone());
    record.updated_at = now;
    record.last_error = None;
    record.api_base_url = api_base_url;
    tx.put(&record)?;
    tx.put_secret(&record.id, ACCESS_TOKEN, &tokens.access_token)?;
    match &tokens.refresh_token {
        Some(refresh) => tx.put_secret(&record.id, REFRESH_TOKEN, refresh)?,
        None => tx.remove_secret(&record.id, REFRESH_TOKEN)?,
    }
    let data = serde_json::json!({ "connectionId": record.id, "provider": record.provider, "expiresAt": record.token_expires_at, "reconnected": true });
    emit(tx, &record.org_id, EventType::ConnectionRefreshed, data)?;
    Ok(record)
}

/// Stores a new connection with its tokens and emits `connection.created`, in `tx`.
pub fn insert_connection(
    tx: &mut Tx<'_>,
    org_id: &str,
    provider: Provider,
    account: &Account,
    tokens: &TokenSet,
    api_base_url: String,
) -> Result<ConnectionRecord, StoreError> {
    let now = now_rfc3339();
    let record = ConnectionRecord {
        id: new_id(IdKind::Connection),
        org_id: org_id.to_owned(),
        provider,
        status: ConnectionStatus::Active,
        account_name: account.name.clone(),
        account_id: account.id.clone(),
        created_at: now.clone(),
        updated_at: now.clone(),
        token_expires_at: tokens.expires_at.map(rfc3339),
        last_refreshed_at: Some(now),
        last_error: None,
        api_base_url,
    };
    tx.put(&record)?;
    tx.index_org(OrgKind::Connection, org_id, &record.id)?;
    tx.index_insert(IndexTable::Accounts, &account_key(&record))?;
    tx.put_secret(&record.id, ACCESS_TOKEN, &tokens.access_token)?;
    if let Some(refresh) = &tokens.refresh_token {
        tx.put_secret(&record.id, REFRESH_TOKEN, refresh)?;
    }
    emit(tx, org_id, EventType::ConnectionCreated, created_event_data(&record))?;
    Ok(record)
}

fn created_event_data(record: &ConnectionRecord) -> serde_json::Value {
    serde_json::json!({
        "connectionId": record.id,
        "provider": record.provider,
        "accountName": record.account_name,
        "status": record.status,
    })
}

/// The API base a connection uses: the one the token answer named, else the configured one.
pub fn api_base(runtime: &ConnectionRuntime, provider: Provider, tokens: &TokenSet) -> Result<String, ConnectionError> {
    match &tokens.api_base_url {
        Some(base) => Ok(base.clone()),
        None => Ok(runtime.oauth(provider)?.app.api_base_url),
    }
}

/// Creates a connection from tokens obtained elsewhere (private apps, API tokens): with a
/// refresh token it refreshes once to validate it; with only an access token it checks the
/// token by reading the account.
pub async fn import(
    runtime: &Arc<ConnectionRuntime>,
    org_id: &str,
    provider: Provider,
    refresh_token: Option<crate::crypto::Secret>,
    access_token: Option<crate::crypto::Secret>,
    api_base_url: Option<String>,
) -> Result<ConnectionRecord, ConnectionError> {
    let oauth = runtime.oauth(provider)?;
    let tokens = match (refresh_token, access_token) {
        (Some(refresh), _) => {
            let mut tokens = oauth.refresh(&refresh).await?;
            tokens.refresh_token.get_or_insert(refresh);
            tokens
        }
        (None, Some(access)) => TokenSet {
            access_token: access,
            refresh_token: None,
            expires_at: None,
            api_base_url: api_base_url.clone(),
            identity_url: None,
        },
        (None, None) => {
            return Err(ConnectionError::Invalid {
                field: "refresh_token",
                problem: "give a refresh token or an access token".into(),
            });
        }
    };
    let base = match api_base_url {
        Some(base) => base,
        None => api_base(runtime, provider, &tokens)?,
    };
    let whoami_base = if provider == Provider::Hubspot || provider == Provider::Jobber {
        oauth.app.api_base_url.clone()
    } else {
        base.clone()
    };
    let account = identity::whoami(&runtime.http, provider, &whoami_base, &tokens.access_token).await?;
    save_connection(runtime, org_id, provider, account, tokens, base).await
}

/// Removes connection `id` and its tokens and emits `connection.deleted`; returns the removed
/// record and its tokens (for revocation at the provider).
pub async fn remove(runtime: &ConnectionRuntime, org_id: &str, id: &str) -> Result<Removed, ConnectionError> {
    let (org_id, id) = (org_id.to_owned(), id.to_owned());
    runtime.store.write(move |tx| remove_in(tx, &org_id, &id)).await
}

/// A removed connection with its tokens, for revocation at the provider.
pub type Removed = (
    ConnectionRecord,
    Option<crate::crypto::Secret>,
    Option<crate::crypto::Secret>,
);

/// [`remove`] inside `tx`.
pub fn remove_in(tx: &mut Tx<'_>, org_id: &str, id: &str) -> Result<Removed, ConnectionError> {
    let record = connection_in_org(tx, org_id, id)?;
    let access = tx.secret(&record.id, ACCESS_TOKEN)?;
    let refresh = tx.secret(&record.id, REFRESH_TOKEN)?;
    tx.remove_secret(&record.id, ACCESS_TOKEN)?;
    tx.remove_secret(&record.id, REFRESH_TOKEN)?;
    tx.remove::<ConnectionRecord>(&record.id)?;
    tx.unindex_org(OrgKind::Connection, org_id, &record.id)?;
    tx.index_remove(IndexTable::Accounts, &account_key(&record))?;
    webhook_keys::forget(tx, &record.id)?;
    let data = serde_json::json!({ "connectionId": record.id, "provider": record.provider, "accountName": record.account_name });
    emit(tx, org_id, EventType::ConnectionDeleted, data)?;
    Ok((record, access, refresh))
}
