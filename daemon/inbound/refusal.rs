//! Why an inbound webhook was refused, and what the provider is told: every refusal has one
//! HTTP status and one metric label, and none of them stores anything.

/// A refused inbound request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unknown webhook URL")]
    UnknownRoute,
    #[error("missing {0}")]
    MissingSignature(&'static str),
    #[error("{0} does not match")]
    BadSignature(&'static str),
    #[error("X-HubSpot-Request-Timestamp is more than 5 minutes from now")]
    StaleTimestamp,
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("more than {0} events in one request")]
    TooManyEvents(usize),
    #[error("malformed payload: {0}")]
    Malformed(String),
    #[error("{field} {value:?} is not this connection's account")]
    WrongAccount { field: &'static str, value: String },
    #[error("too many webhook requests for this connection; retry later")]
    RateLimited,
    #[error("too many changes waiting to be synced; retry later")]
    Backlogged,
    #[error("the request was not received in time")]
    Timeout,
    #[error("fluxd could not store the webhook; retry later")]
    Unavailable,
}

impl Refusal {
    /// The HTTP status the provider gets.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::UnknownRoute => 404,
            Refusal::MissingSignature(_) | Refusal::BadSignature(_) | Refusal::StaleTimestamp => 401,
            Refusal::TooLarge(_) | Refusal::TooManyEvents(_) => 413,
            Refusal::Malformed(_) | Refusal::WrongAccount { .. } => 400,
            Refusal::Timeout => 408,
            Refusal::RateLimited => 429,
            Refusal::Backlogged | Refusal::Unavailable => 503,
        }
    }

    /// The `reason` label of the refusal metric.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::UnknownRoute => "unknown_route",
            Refusal::MissingSignature(_) => "missing_signature",
            Refusal::BadSignature(_) => "bad_signature",
            Refusal::StaleTimestamp => "stale_timestamp",
            Refusal::TooLarge(_) => "too_large",
            Refusal::TooManyEvents(_) => "too_many_events",
            Refusal::Malformed(_) => "malformed",
            Refusal::WrongAccount { .. } => "wrong_account",
            Refusal::RateLimited => "rate_limited",
            Refusal::Backlogged => "backlogged",
            Refusal::Timeout => "timeout",
            Refusal::Unavailable => "unavailable",
        }
    }
}
