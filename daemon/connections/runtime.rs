//! What connection code shares: the store, an HTTP client and the providers' OAuth apps.

use crate::providers::Provider;
use crate::providers::config::{self, ProviderConfigError, ProvidersConfig};
use crate::providers::oauth::OAuthClient;
use crate::store::Store;

/// Shared by the connection service, the OAuth callback and the connection actors.
pub struct ConnectionRuntime {
    pub store: Store,
    pub http: reqwest::Client,
    pub providers: ProvidersConfig,
    /// `<public http url>/oauth/callback`.
    pub redirect_uri: String,
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
        let app = config::resolve(&self.providers, provider)?;
        Ok(OAuthClient::new(app, self.http.clone(), self.redirect_uri.clone()))
    }
}
