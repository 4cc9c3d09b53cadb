//! Per-provider OAuth app configuration: client credentials, scopes and endpoint URLs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Provider;
use crate::crypto::Secret;

/// One provider's OAuth app, as the config file spells it. Every URL defaults to the real
/// service; point them at the sandbox (or use `fluxd --sandbox`) for local runs.
#[derive(Clone, Deserialize, Serialize, Default, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The client secret inline; prefer `client_secret_file` (e.g. a systemd credential) or
    /// the `FLUXD_<PROVIDER>_CLIENT_SECRET` environment variable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoke_url: Option<String>,
    /// Base of the record APIs (HubSpot, Jobber); Pipedrive and Salesforce get theirs per
    /// connection from the token response (`api_domain`, `instance_url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<String>,
}

impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[redacted]"))
            .field("client_secret_file", &self.client_secret_file)
            .field("scopes", &self.scopes)
            .field("auth_url", &self.auth_url)
            .field("token_url", &self.token_url)
            .field("api_base_url", &self.api_base_url)
            .finish()
    }
}

/// Errors resolving provider settings.
#[derive(Debug, thiserror::Error)]
pub enum ProviderConfigError {
    #[error("{provider} is not configured: set providers.{key}.client_id and its client secret")]
    NotConfigured { provider: Provider, key: &'static str },
    #[error(
        "providers.{key}.client_id is set but {provider} has no client secret: set providers.{key}.client_secret_file, providers.{key}.client_secret or {env}"
    )]
    MissingSecret {
        provider: Provider,
        key: &'static str,
        env: String,
    },
    #[error("providers.{key} has a client secret but no client_id")]
    MissingClientId { key: &'static str },
    #[error("cannot read the {provider} client secret from {path}: {error}")]
    SecretFile {
        provider: Provider,
        path: PathBuf,
        error: std::io::Error,
    },
}

/// A provider's resolved OAuth app.
#[derive(Debug, Clone)]
pub struct OAuthApp {
    pub provider: Provider,
    pub client_id: String,
    pub client_secret: Secret,
    pub scopes: Vec<String>,
    pub auth_url: String,
    pub token_url: String,
    pub revoke_url: String,
    pub api_base_url: String,
}

/// The real endpoints and default scopes of each provider.
pub struct Defaults {
    pub auth_url: &'static str,
    pub token_url: &'static str,
    pub revoke_url: &'static str,
    pub api_base_url: &'static str,
    pub scopes: &'static [&'static str],
}

impl Provider {
    /// The real service's endpoints.
    pub fn defaults(self) -> Defaults {
        match self {
            Provider::Hubspot => Defaults {
                auth_url: "https://app.hubspot.com/oauth/authorize",
                token_url: "https://api.hubapi.com/oauth/v1/token",
                revoke_url: "https://api.hubapi.com/oauth/v1/refresh-tokens",
                api_base_url: "https://api.hubapi.com",
                scopes: &[
                    "oauth",
                    "crm.objects.contacts.read",
                    "crm.objects.contacts.write",
                    "crm.objects.companies.read",
                    "crm.objects.companies.write",
                    "crm.objects.deals.read",
                    "crm.objects.deals.write",
                ],
            },
            Provider::Jobber => Defaults {
                auth_url: "https://api.getjobber.com/api/oauth/authorize",
                token_url: "https://api.getjobber.com/api/oauth/token",
                revoke_url: "https://api.getjobber.com/api/graphql",
                api_base_url: "https://api.getjobber.com/api",
                scopes: &[],
            },
            Provider::Pipedrive => Defaults {
                auth_url: "https://oauth.pipedrive.com/oauth/authorize",
                token_url: "https://oauth.pipedrive.com/oauth/token",
                revoke_url: "https://oauth.pipedrive.com/oauth/revoke",
                api_base_url: "https://api.pipedrive.com",
                scopes: &[],
            },
            Provider::Salesforce => Defaults {
                auth_url: "https://login.salesforce.com/services/oauth2/authorize",
                token_url: "https://login.salesforce.com/services/oauth2/token",
                revoke_url: "https://login.salesforce.com/services/oauth2/revoke",
                api_base_url: "https://login.salesforce.com",
                scopes: &["api", "refresh_token"],
            },
        }
    }

    /// Whether the provider's authorize endpoint takes a PKCE challenge.
    pub fn supports_pkce(self) -> bool {
        matches!(self, Provider::Hubspot | Provider::Salesforce)
    }

    fn env_secret_name(self) -> String {
        format!("FLUXD_{}_CLIENT_SECRET", self.as_str().to_uppercase())
    }
}

/// The `[providers.*]` tables of the config.
pub type ProvidersConfig = BTreeMap<Provider, ProviderSettings>;

/// The OAuth apps of the configured providers, resolved once (secret files read, environment
/// consulted) so that no OAuth call reads a file.
pub type OAuthApps = BTreeMap<Provider, OAuthApp>;

/// The provider apps in force, shared by everything that calls or verifies a provider; a
/// configuration reload replaces them (new client secrets, say) without a restart.
#[derive(Clone, Default)]
pub struct SharedApps(std::sync::Arc<std::sync::RwLock<OAuthApps>>);

impl SharedApps {
    pub fn new(apps: OAuthApps) -> SharedApps {
        SharedApps(std::sync::Arc::new(std::sync::RwLock::new(apps)))
    }

    /// The app of `provider`, if configured.
    pub fn get(&self, provider: Provider) -> Option<OAuthApp> {
        // A poisoned lock still holds a whole map (replaced in one assignment).
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&provider)
            .cloned()
    }

    /// Puts `apps` in force.
    pub fn replace(&self, apps: OAuthApps) {
        *self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = apps;
    }
}

/// Resolves every configured provider. A provider with nothing configured is left out (it is
/// reported when someone tries to connect it); one configured by halves is an error naming
/// the key to set.
pub fn resolve_all(providers: &ProvidersConfig) -> Result<OAuthApps, ProviderConfigError> {
    let mut apps = OAuthApps::new();
    for provider in Provider::ALL {
        let settings = providers.get(&provider).cloned().unwrap_or_default();
        let key = provider.as_str();
        let secret = client_secret(provider, &settings)?;
        let client_id = match (settings.client_id.clone(), &secret) {
            (Some(id), Some(_)) => id,
            (Some(_), None) => {
                return Err(ProviderConfigError::MissingSecret {
                    provider,
                    key,
                    env: provider.env_secret_name(),
                });
            }
            // A secret in the environment alone configures nothing.
            (None, Some(_)) if settings.client_secret.is_some() || settings.client_secret_file.is_some() => {
                return Err(ProviderConfigError::MissingClientId { key });
            }
            (None, _) => continue,
        };
        let defaults = provider.defaults();
        apps.insert(
            provider,
            OAuthApp {
                provider,
                client_id,
                client_secret: Secret::new(secret.unwrap_or_default()),
                scopes: settings
                    .scopes
                    .unwrap_or_else(|| defaults.scopes.iter().map(|s| s.to_string()).collect()),
                auth_url: settings.auth_url.unwrap_or_else(|| defaults.auth_url.into()),
                token_url: settings.token_url.unwrap_or_else(|| defaults.token_url.into()),
                revoke_url: settings.revoke_url.unwrap_or_else(|| defaults.revoke_url.into()),
                api_base_url: settings.api_base_url.unwrap_or_else(|| defaults.api_base_url.into()),
            },
        );
    }
    Ok(apps)
}

/// The client secret from the environment, inline, or its file, in that order.
fn client_secret(provider: Provider, settings: &ProviderSettings) -> Result<Option<String>, ProviderConfigError> {
    if let Ok(from_env) = std::env::var(provider.env_secret_name()) {
        return Ok(Some(from_env));
    }
    match (&settings.client_secret, &settings.client_secret_file) {
        (Some(inline), _) => Ok(Some(inline.clone())),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|text| Some(text.trim().to_owned()))
            .map_err(|error| ProviderConfigError::SecretFile {
                provider,
                path: path.clone(),
                error,
            }),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(client_id: Option<&str>, secret: Option<&str>) -> ProviderSettings {
        ProviderSettings {
            client_id: client_id.map(str::to_owned),
            client_secret: secret.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn half_configured_providers_are_refused_with_the_key_to_set() {
        let mut providers = ProvidersConfig::new();
        providers.insert(Provider::Pipedrive, settings(Some("id"), None));
        let error = resolve_all(&providers).unwrap_err().to_string();
        assert!(error.contains("providers.pipedrive.client_id is set"), "{error}");
        assert!(error.contains("providers.pipedrive.client_secret_file"), "{error}");
        providers.insert(Provider::Pipedrive, settings(None, Some("s")));
        let error = resolve_all(&providers).unwrap_err().to_string();
        assert!(
            error.contains("providers.pipedrive has a client secret but no client_id"),
            "{error}"
        );
    }

    #[test]
    fn configured_providers_resolve_and_others_are_left_out() {
        let mut providers = ProvidersConfig::new();
        providers.insert(Provider::Hubspot, settings(Some("id"), Some("secret")));
        let apps = resolve_all(&providers).unwrap();
        assert_eq!(apps.len(), 1);
        assert_eq!(
            apps[&Provider::Hubspot].token_url,
            "https://api.hubapi.com/oauth/v1/token"
        );
        assert_eq!(apps[&Provider::Hubspot].client_secret.expose(), "secret");
    }
}
