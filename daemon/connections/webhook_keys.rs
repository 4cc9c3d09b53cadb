//! A connection's inbound webhook credentials: the unguessable token in its webhook URL
//! (`/webhooks/<provider>/<token>`) and, for Pipedrive, which can only authenticate with HTTP
//! Basic, the password fluxd gives it. Both are sealed like tokens; the store finds a
//! connection from its URL token through the token's SHA-256, never the token itself.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::records::ConnectionRecord;
use crate::crypto::Secret;
use crate::store::{IndexTable, Reader, StoreError, Tx};

const URL_TOKEN: &str = "webhook_url_token";
const BASIC_PASSWORD: &str = "webhook_basic_password";

/// The connection's webhook credentials.
pub struct WebhookKeys {
    pub url_token: Secret,
    pub basic_password: Secret,
}

fn random_secret() -> Secret {
    Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()))
}

fn route_prefix(token: &str) -> String {
    format!("{}/", hex::encode(Sha256::digest(token.as_bytes())))
}

/// The connection's webhook credentials, created on first use.
pub fn ensure(tx: &mut Tx<'_>, connection: &ConnectionRecord) -> Result<WebhookKeys, StoreError> {
    let url_token = match tx.secret(&connection.id, URL_TOKEN)? {
        Some(token) => token,
        None => {
            let token = random_secret();
            tx.put_secret(&connection.id, URL_TOKEN, &token)?;
            let route = format!("{}{}", route_prefix(token.expose()), connection.id);
            tx.index_insert(IndexTable::WebhookRoutes, &route)?;
            token
        }
    };
    let basic_password = match tx.secret(&connection.id, BASIC_PASSWORD)? {
        Some(password) => password,
        None => {
            let password = random_secret();
            tx.put_secret(&connection.id, BASIC_PASSWORD, &password)?;
            password
        }
    };
    Ok(WebhookKeys {
        url_token,
        basic_password,
    })
}

/// The URL token of connection `id`, if it has webhook credentials.
pub fn url_token(rx: &impl Reader, id: &str) -> Result<Option<Secret>, StoreError> {
    rx.secret(id, URL_TOKEN)
}

/// The Basic password of connection `id`, if it has webhook credentials.
pub fn basic_password(rx: &impl Reader, id: &str) -> Result<Option<Secret>, StoreError> {
    rx.secret(id, BASIC_PASSWORD)
}

/// The connection whose webhook URL carries `token`.
pub fn connection_of_token(rx: &impl Reader, token: &str) -> Result<Option<ConnectionRecord>, StoreError> {
    let prefix = route_prefix(token);
    match rx.index_keys(IndexTable::WebhookRoutes, &prefix, 1)?.first() {
        Some(key) => rx.get::<ConnectionRecord>(&key[prefix.len()..]),
        None => Ok(None),
    }
}

/// Removes connection `id`'s webhook credentials and URL.
pub fn forget(tx: &mut Tx<'_>, id: &str) -> Result<(), StoreError> {
    if let Some(token) = tx.secret(id, URL_TOKEN)? {
        tx.index_remove(
            IndexTable::WebhookRoutes,
            &format!("{}{id}", route_prefix(token.expose())),
        )?;
    }
    tx.remove_secret(id, URL_TOKEN)?;
    tx.remove_secret(id, BASIC_PASSWORD)
}
