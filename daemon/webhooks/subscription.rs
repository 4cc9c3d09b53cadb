//! Which events an endpoint subscribes to: exact names, `prefix.*` wildcards, or `*`.

use crate::events::EventType;

/// Errors in an event-type filter.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SubscriptionError {
    #[error("event_types[{index}]: unknown event type {pattern:?} (expected e.g. sync.completed, sync.*, or *)")]
    Unknown { index: usize, pattern: String },
    #[error("event_types: at most {MAX_PATTERNS} patterns")]
    TooMany,
}

/// Patterns an endpoint's filter may have (more than there are event types).
pub const MAX_PATTERNS: usize = 64;

/// Checks every pattern names a known event type or a wildcard matching at least one.
pub fn validate(patterns: &[String]) -> Result<(), SubscriptionError> {
    if patterns.len() > MAX_PATTERNS {
        return Err(SubscriptionError::TooMany);
    }
    for (index, pattern) in patterns.iter().enumerate() {
        if !EventType::ALL.iter().any(|t| matches_pattern(pattern, t.as_str())) {
            return Err(SubscriptionError::Unknown {
                index,
                pattern: pattern.chars().take(64).collect(),
            });
        }
    }
    Ok(())
}

/// Whether an endpoint with `patterns` receives `event_type`.
pub fn matches(patterns: &[String], event_type: EventType) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| matches_pattern(p, event_type.as_str()))
}

fn matches_pattern(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix(".*") {
        _ if pattern == "*" => true,
        Some(prefix) => name.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.')),
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn wildcards_exact_names_and_all() {
        let cases: &[(&[&str], EventType, bool)] = &[
            (&["sync.*"], EventType::SyncStarted, true),
            (&["sync.*"], EventType::RecordCreated, false),
            (&["record.created"], EventType::RecordCreated, true),
            (&["record.created"], EventType::RecordUpdated, false),
            (&["*"], EventType::MappingDeleted, true),
            (&[], EventType::ConnectionExpired, true),
            (&["sync.*", "connection.expired"], EventType::ConnectionExpired, true),
            (&["syn.*"], EventType::SyncStarted, false),
        ];
        for (patterns, event_type, expected) in cases {
            assert_eq!(
                matches(&pats(patterns), *event_type),
                *expected,
                "{patterns:?} {event_type}"
            );
        }
    }

    #[test]
    fn unknown_patterns_are_named() {
        assert!(validate(&pats(&["sync.*", "*", "mapping.updated"])).is_ok());
        assert_eq!(
            validate(&pats(&["sync.*", "sync.done"])),
            Err(SubscriptionError::Unknown {
                index: 1,
                pattern: "sync.done".into()
            })
        );
        assert!(validate(&pats(&["nothing.*"])).is_err());
    }
}
