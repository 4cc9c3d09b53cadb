//! Stored shapes of connections and pending authorizations.

use serde::{Deserialize, Serialize};

use crate::providers::Provider;
use crate::store::{AUTHORIZATIONS, BytesTable, CONNECTIONS, Record};

/// Secret names of a connection's tokens.
pub const ACCESS_TOKEN: &str = "access_token";
pub const REFRESH_TOKEN: &str = "refresh_token";

/// The seed's connection statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Active,
    /// The provider rejected the grant; the user must connect again.
    Expired,
    /// The token expired and refreshing keeps failing for another reason.
    Error,
}

/// A connection to one provider account. Its tokens live in the secrets table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConnectionRecord {
    pub id: String,
    pub org_id: String,
    pub provider: Provider,
    pub status: ConnectionStatus,
    pub account_name: String,
    pub account_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub token_expires_at: Option<String>,
    pub last_refreshed_at: Option<String>,
    pub last_error: Option<String>,
    /// Per-connection API base (Pipedrive `api_domain`, Salesforce `instance_url`), else the
    /// provider's configured one.
    pub api_base_url: String,
}

impl Record for ConnectionRecord {
    const TABLE: BytesTable = CONNECTIONS;
    fn id(&self) -> &str {
        &self.id
    }
}

/// Where an authorization stands.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum AuthorizationOutcome {
    Pending,
    /// The callback arrived and is being processed; the state cannot be used again.
    Consumed,
    Connected {
        connection_id: String,
    },
    Failed {
        error: String,
    },
}

/// An authorization started by `connection create`, waiting for the provider's redirect.
/// Keyed by the SHA-256 of its `state`, so the store never holds a usable state value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuthorizationRecord {
    pub state_hash: String,
    pub org_id: String,
    pub provider: Provider,
    pub created_at: String,
    /// Unix ms after which the callback is refused.
    pub expires_at_ms: i64,
    pub outcome: AuthorizationOutcome,
    /// Started from the web console: the callback sends the browser back to it.
    #[serde(default)]
    pub return_to_console: bool,
}

impl Record for AuthorizationRecord {
    const TABLE: BytesTable = AUTHORIZATIONS;
    fn id(&self) -> &str {
        &self.state_hash
    }
}
