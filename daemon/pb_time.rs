//! Times on the wire: the store's RFC 3339 text and jiff timestamps to and from
//! `google.protobuf.Timestamp`, for the API and the JSON views of its messages.

/// RFC 3339 text as a protobuf timestamp; `None` when empty or unreadable.
pub fn from_text(text: &str) -> Option<prost_types::Timestamp> {
    text.parse::<jiff::Timestamp>().ok().map(from_jiff)
}

/// Optional RFC 3339 text as a protobuf timestamp.
pub fn from_optional_text(text: Option<&str>) -> Option<prost_types::Timestamp> {
    text.and_then(from_text)
}

/// A jiff timestamp as a protobuf one.
pub fn from_jiff(at: jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.as_second(),
        nanos: at.subsec_nanosecond(),
    }
}

/// A protobuf timestamp as jiff's; `None` when out of range.
pub fn to_jiff(at: &prost_types::Timestamp) -> Option<jiff::Timestamp> {
    jiff::Timestamp::new(at.seconds, at.nanos).ok()
}

/// A protobuf timestamp as RFC 3339 text (`None` when unset), as the JSON views print it.
pub fn text(at: Option<&prost_types::Timestamp>) -> Option<String> {
    at.and_then(to_jiff).map(|at| at.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_through_the_wire() {
        let wire = from_text("2026-12-01T12:00:05.250Z").unwrap();
        assert_eq!((wire.seconds, wire.nanos), (1_796_126_405, 250_000_000));
        assert_eq!(text(Some(&wire)).as_deref(), Some("2026-12-01T12:00:05.25Z"));
        assert_eq!(from_text(""), None);
        assert_eq!(text(None), None);
    }
}
