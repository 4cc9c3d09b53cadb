//! The sandbox's in-memory state: OAuth grants per provider, accounts, and test controls.

use std::collections::{BTreeMap, HashMap};

use crate::providers::Provider;

/// A code handed out by the authorize endpoint.
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub account: u32,
    pub expires_at: i64,
}

/// A live refresh token.
pub struct RefreshGrant {
    pub account: u32,
}

/// A live access token.
pub struct AccessGrant {
    pub account: u32,
    pub expires_at: i64,
}

/// Counters and switches for one provider.
#[derive(Default)]
pub struct ProviderState {
    pub codes: HashMap<String, CodeGrant>,
    pub refresh_tokens: HashMap<String, RefreshGrant>,
    pub access_tokens: HashMap<String, AccessGrant>,
    /// Accounts handed out so far; each authorization approves the next one.
    pub accounts: u32,
    /// Overrides the provider's real access-token lifetime.
    pub token_lifetime: Option<i64>,
    /// Delay before answering token calls, to hold a refresh in flight.
    pub token_delay_ms: u64,
    /// The next N token calls fail with `fail_status`.
    pub fail_next: u32,
    pub fail_status: u16,
    /// The next N record API calls fail with `fail_api_status` (an outage on the API).
    pub fail_api_next: u32,
    pub fail_api_status: u16,
    pub token_calls: u64,
    pub code_exchanges: u64,
    pub refreshes: u64,
    pub revocations: u64,
}

/// Everything the sandbox remembers.
#[derive(Default)]
pub struct SandboxState {
    pub providers: BTreeMap<Provider, ProviderState>,
    /// The record APIs' data, per provider.
    pub records: super::records::RecordsState,
    /// Webhook registrations and deliveries.
    pub webhooks: super::webhooks::WebhooksState,
}

impl SandboxState {
    pub fn provider(&mut self, provider: Provider) -> &mut ProviderState {
        self.providers.entry(provider).or_default()
    }
}

/// The real access-token lifetime of each provider, in seconds. Salesforce gives none in its
/// answer; its sessions last two hours by default.
pub fn default_lifetime(provider: Provider) -> i64 {
    match provider {
        Provider::Hubspot => 1800,
        Provider::Jobber => 3600,
        Provider::Pipedrive => 3599,
        Provider::Salesforce => 7200,
    }
}

/// Random URL-safe token text with a provider-like prefix.
pub fn random_token(prefix: &str) -> String {
    use base64::Engine as _;
    let bytes: [u8; 24] = rand::random();
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Unix seconds now.
pub fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}
