//! What connection code shares: the store, an HTTP client and the providers' OAuth apps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use crate::actors::Directory;
use crate::providers::Provider;
use crate::providers::config::{ProviderConfigError, SharedApps};
use crate::providers::oauth::OAuthClient;
use crate::store::Store;

/// Shared by the connection service, the OAuth callback and the connection actors.
pub struct ConnectionRuntime {
    pub store: Store,
    pub http: reqwest::Client,
    /// The configured providers' OAuth apps.
    pub apps: SharedApps,
    /// `<public http url>/oauth/callback`.
    pub redirect_uri: String,
    /// This daemon's actors, to reach each connection's.
    pub directory: Directory,
    /// One token refresh per connection at a time.
    pub refresh_locks: RefreshLocks,
    /// Where refreshes are counted.
    pub metrics: crate::metrics::Metrics,
}

/// Per-connection locks, held while a refresh talks to the provider and stores its answer.
#[derive(Default)]
pub struct RefreshLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl RefreshLocks {
    /// Waits for connection `id`'s lock. Locks nobody holds are forgotten, so the map stays
    /// as small as the number of refreshes in flight.
    pub async fn lock(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            locks.retain(|_, lock| lock.strong_count() > 0);
            match locks.get(id).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(id.to_owned(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

impl ConnectionRuntime {
    /// An HTTP client for provider calls: no redirects (OAuth token calls must not follow them).
    pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .user_agent(concat!("FluxCascade/", env!("CARGO_PKG_VERSION")))
            .build()
    }

    /// The OAuth client of `provider`.
    pub fn oauth(&self, provider: Provider) -> Result<OAuthClient, ProviderConfigError> {
        let app = self.apps.get(provider).ok_or(ProviderConfigError::NotConfigured {
            provider,
            key: provider.as_str(),
        })?;
        Ok(OAuthClient::new(app, self.http.clone(), self.redirect_uri.clone()))
    }
}
