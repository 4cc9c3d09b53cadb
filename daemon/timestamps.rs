//! Reading the timestamps providers write (RFC 3339, Salesforce's `+0000` offsets, epoch
//! milliseconds), for the connectors that decode records and the filters that compare them.

/// Parses provider timestamps: RFC 3339, Salesforce's `+0000` offsets, epoch milliseconds.
pub fn parse_time(text: &str) -> Option<jiff::Timestamp> {
    if let Ok(at) = text.parse::<jiff::Timestamp>() {
        return Some(at);
    }
    if text.len() > 5 && (text.ends_with("+0000") || text.ends_with("-0000")) {
        return format!("{}Z", &text[..text.len() - 5]).parse().ok();
    }
    text.parse::<i64>()
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
}
