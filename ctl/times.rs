//! Times given on the command line: RFC 3339, or a span back from now like `2h`.

use crate::client::ClientError;

/// `2026-01-01T00:00:00Z` as is; `2h` (any jiff span) as that long ago.
pub fn parse_since(flag: &str, text: &str) -> Result<jiff::Timestamp, ClientError> {
    if let Ok(at) = text.parse::<jiff::Timestamp>() {
        return Ok(at);
    }
    let span: jiff::Span = text.parse().map_err(|_| {
        ClientError::Usage(format!(
            "{flag}: {text:?} is neither an RFC 3339 time nor a span like 2h"
        ))
    })?;
    jiff::Timestamp::now()
        .checked_sub(span)
        .map_err(|e| ClientError::Usage(format!("{flag}: {e}")))
}
