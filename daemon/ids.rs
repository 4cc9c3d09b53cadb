//! Prefixed, time-ordered identifiers (`conn_…`, `map_…`, `job_…`, `wh_…`, `evt_…`).
//!
//! The suffix is a UUIDv7 in lowercase hex, so ids of one kind sort by creation time, which
//! the store relies on for ordered scans (outbox, delivery queue, job lists).

/// The kinds of entity that carry a prefixed id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Organization,
    Member,
    ApiToken,
    Connection,
    Mapping,
    Job,
    WebhookEndpoint,
    Event,
    Delivery,
    Invitation,
    AuditEntry,
}

impl IdKind {
    /// The prefix, without the underscore.
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::Organization => "org",
            IdKind::Member => "mem",
            IdKind::ApiToken => "tok",
            IdKind::Connection => "conn",
            IdKind::Mapping => "map",
            IdKind::Job => "job",
            IdKind::WebhookEndpoint => "wh",
            IdKind::Event => "evt",
            IdKind::Delivery => "dlv",
            IdKind::Invitation => "inv",
            IdKind::AuditEntry => "aud",
        }
    }
}

/// A new id of `kind`, e.g. `conn_0192f0c5…`.
pub fn new_id(kind: IdKind) -> String {
    format!("{}_{}", kind.prefix(), uuid::Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_sort_by_creation() {
        let first = new_id(IdKind::Connection);
        let second = new_id(IdKind::Connection);
        assert!(first.starts_with("conn_"));
        assert!(first < second);
        assert_eq!(first.len(), "conn_".len() + 32);
    }
}
