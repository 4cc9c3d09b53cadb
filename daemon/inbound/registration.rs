//! Telling providers where to send webhooks: a connection's URLs and what to set at its
//! provider, and — where the provider has an API for it (Pipedrive's webhooks) — subscribing
//! idempotently and unsubscribing when the connection goes.

use super::pipedrive::BASIC_USER;
use super::receiver::PATH_PREFIX;
use crate::connections::ConnectionRecord;
use crate::connections::webhook_keys;
use crate::connectors::{Connector, ConnectorError};
use crate::crypto::Secret;
use crate::providers::Provider;
use crate::store::{Store, StoreError};

/// The Pipedrive objects fluxd syncs, each with a webhook.
const PIPEDRIVE_OBJECTS: [&str; 3] = ["person", "organization", "deal"];

/// Errors of registration.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("{provider} has no API to subscribe one connection's webhooks: {instructions}")]
    NotSubscribable { provider: Provider, instructions: String },
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A webhook at the provider that sends to this connection's URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    /// What it sends, e.g. `*.person`.
    pub event: String,
}

/// Where and how a connection receives webhooks.
pub struct Registration {
    /// The connection's own URL (the token in it is a credential).
    pub url: String,
    /// The provider app's shared URL, where the provider sends every account's events to one.
    pub app_url: Option<String>,
    /// What to set at the provider.
    pub instructions: String,
    /// The HTTP Basic credentials Pipedrive must send.
    pub basic_auth: Option<(String, Secret)>,
    /// The provider's webhooks sending to `url` (Pipedrive).
    pub subscriptions: Vec<Subscription>,
}

fn instructions(provider: Provider) -> &'static str {
    match provider {
        Provider::Hubspot => {
            "In the HubSpot app's Webhooks settings, set the target URL to app_url (HubSpot sends every portal's events to one URL per app; url works too when the app serves this portal only) and subscribe to the creation, propertyChange and deletion events of contacts, companies and deals. Requests are verified with the app's client secret (X-HubSpot-Signature-v3)."
        }
        Provider::Jobber => {
            "In the Jobber Developer Center, add webhooks to the app for the CLIENT_, JOB_ and PROPERTY_ CREATE, UPDATE and DESTROY topics with app_url (Jobber sends every account's events to the app's URL). Requests are verified with the app's client secret (X-Jobber-Hmac-SHA256)."
        }
        Provider::Pipedrive => {
            "Run `fluxctl connection webhooks <id> --subscribe` to create Pipedrive's webhooks for persons, organizations and deals through its API, or create them in Pipedrive's settings with url and the HTTP Basic credentials shown."
        }
        Provider::Salesforce => {
            "In Setup, create an Outbound Message for each synced object (Contact, Account, Opportunity) with url as its Endpoint URL and LastModifiedDate among its fields, and a flow that sends it when a record is created or edited. Outbound messages carry no signature: the token in url and the OrganizationId authenticate them."
        }
    }
}

/// The URLs and instructions of `connection`, creating its webhook credentials on first use;
/// with `subscribe`, subscribes at the provider first (Pipedrive only).
pub async fn register(
    store: &Store,
    public_url: &str,
    connection: &ConnectionRecord,
    connector: &Connector,
    subscribe: bool,
) -> Result<Registration, RegistrationError> {
    let provider = connection.provider;
    if subscribe && provider != Provider::Pipedrive {
        return Err(RegistrationError::NotSubscribable {
            provider,
            instructions: instructions(provider).to_owned(),
        });
    }
    let record = connection.clone();
    let keys = store.write(move |tx| webhook_keys::ensure(tx, &record)).await?;
    let base = public_url.trim_end_matches('/');
    let url = format!("{base}{PATH_PREFIX}{}/{}", provider.as_str(), keys.url_token.expose());
    let app_url = (provider != Provider::Salesforce).then(|| format!("{base}{PATH_PREFIX}{}", provider.as_str()));
    let mut registration = Registration {
        instructions: instructions(provider).to_owned(),
        basic_auth: (provider == Provider::Pipedrive).then(|| (BASIC_USER.to_owned(), keys.basic_password.clone())),
        subscriptions: Vec::new(),
        app_url,
        url,
    };
    if let Connector::Pipedrive(pipedrive) = connector {
        let mut existing = ours(&pipedrive.webhooks().await?, &registration.url);
        if subscribe {
            for object in PIPEDRIVE_OBJECTS {
                if !existing.iter().any(|(_, o)| o == object) {
                    let id = pipedrive
                        .create_webhook(object, &registration.url, BASIC_USER, keys.basic_password.expose())
                        .await?;
                    tracing::info!(connection_id = %connection.id, object, webhook_id = %id, "Pipedrive webhook created");
                    existing.push((id, object.to_owned()));
                }
            }
        }
        registration.subscriptions = existing
            .into_iter()
            .map(|(id, object)| Subscription {
                id,
                event: format!("*.{object}"),
            })
            .collect();
    }
    Ok(registration)
}

/// `(id, object)` of the webhooks that send to `url`.
fn ours(webhooks: &[(String, String, String)], url: &str) -> Vec<(String, String)> {
    webhooks
        .iter()
        .filter(|(_, _, target)| target == url)
        .map(|(id, object, _)| (id.clone(), object.clone()))
        .collect()
}

/// Deletes the provider's webhooks that send to `connection`'s URL (Pipedrive), before the
/// connection goes; returns how many.
pub async fn unsubscribe(
    store: &Store,
    public_url: &str,
    connection: &ConnectionRecord,
    connector: &Connector,
) -> Result<usize, RegistrationError> {
    let Connector::Pipedrive(pipedrive) = connector else {
        return Ok(0);
    };
    let id = connection.id.clone();
    let Some(token) = store.read(|rx| webhook_keys::url_token(rx, &id))? else {
        return Ok(0);
    };
    let url = format!(
        "{}{PATH_PREFIX}{}/{}",
        public_url.trim_end_matches('/'),
        connection.provider.as_str(),
        token.expose()
    );
    let mut removed = 0;
    for (webhook, _) in ours(&pipedrive.webhooks().await?, &url) {
        pipedrive.delete_webhook(&webhook).await?;
        removed += 1;
    }
    Ok(removed)
}
