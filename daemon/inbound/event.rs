//! What a verified provider webhook says, in the providers' common terms: which record of
//! which object changed how and when, in which account, and the key that recognises the same
//! event delivered again.

use sha2::{Digest, Sha256};

pub use crate::syncs::changes::Change;

/// One record change a provider reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEvent {
    /// The provider account it happened in (HubSpot `portalId`, Jobber `accountId`,
    /// Pipedrive `company_id`, Salesforce `OrganizationId`), as connections store it.
    pub account: Option<String>,
    /// The object, in the connector's naming (`contacts`, `clients`, `persons`, `Contact`).
    pub object: String,
    pub record_id: String,
    pub change: Change,
    /// When it happened, by the provider's clock (Unix ms).
    pub occurred_at_ms: i64,
    /// Recognises a redelivery of this event: the provider's event id, or a hash of what
    /// identifies the event where the provider gives none.
    pub key: String,
}

/// A short, stable key from the parts that identify an event.
pub fn hashed_key(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    hex::encode(&hash.finalize()[..16])
}

/// JSON text or number as text.
pub fn text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_keys_separate_their_parts() {
        assert_ne!(hashed_key(&["ab", "c"]), hashed_key(&["a", "bc"]));
        assert_eq!(hashed_key(&["a", "b"]), hashed_key(&["a", "b"]));
        assert_eq!(hashed_key(&["a"]).len(), 32);
    }
}
