//! One delivery attempt: a signed POST, with its outcome classified for the retry policy.

use super::ssrf::SharedPolicy;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::HeaderMap;

use super::signing::{self, SigningError};
use crate::crypto::Secret;
use crate::events::now_rfc3339;

/// How much of the receiver's response body is kept in the attempt log.
pub const RESPONSE_BODY_LIMIT: usize = 1024;
/// Longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Everything needed to send one attempt.
pub struct AttemptRequest {
    pub url: String,
    pub body: Bytes,
    pub event_id: String,
    pub event_type: String,
    pub delivery_id: String,
    pub attempt_number: u32,
    /// Current secret first, then the previous one while it is still valid.
    pub secrets: Vec<Secret>,
    pub timeout: Duration,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptResult {
    pub at: String,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    pub response_body: String,
    /// The receiver's `Retry-After` on a 429 or 503.
    pub retry_after: Option<Duration>,
}

impl AttemptResult {
    /// A 2xx answer.
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|code| (200..300).contains(&code))
    }

    /// `410 Gone`: the receiver asks us to stop.
    pub fn gone(&self) -> bool {
        self.status_code == Some(410)
    }

    /// An attempt that ended in fluxd itself, before any answer.
    pub fn internal_error(reason: &str) -> AttemptResult {
        AttemptResult {
            at: now_rfc3339(),
            status_code: None,
            latency_ms: 0,
            error: Some(reason.to_owned()),
            response_body: String::new(),
            retry_after: None,
        }
    }
}

/// How attempts reach receivers: HTTP in the daemon; tests script answers to check the retry
/// policy on paused time.
pub trait Transport: Send + Sync + 'static {
    /// Sends one attempt; never fails, errors are results.
    fn send(&self, request: AttemptRequest) -> BoxFuture<'static, AttemptResult>;
}

/// Signed HTTP POSTs with the (address-guarded) delivery client. The URL is checked against
/// the policy in force at each attempt: an endpoint made while private addresses were allowed
/// is not delivered to once they no longer are, IP literals (which skip DNS) included.
pub struct HttpTransport {
    pub client: reqwest::Client,
    pub policy: SharedPolicy,
}

impl Transport for HttpTransport {
    fn send(&self, request: AttemptRequest) -> BoxFuture<'static, AttemptResult> {
        if let Err(error) = self.policy.get().check_url(&request.url) {
            let refused = AttemptResult::internal_error(&format!("not sent: {error}"));
            return Box::pin(std::future::ready(refused));
        }
        let client = self.client.clone();
        Box::pin(async move { send(&client, request).await })
    }
}

/// Sends `request` with `client` and classifies the answer; never fails, errors are results.
pub async fn send(client: &reqwest::Client, request: AttemptRequest) -> AttemptResult {
    let at = now_rfc3339();
    let started = Instant::now();
    let result = post(client, &request).await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match result {
        Ok((status, headers, body)) => {
            let retry_after = if status == 429 || status == 503 {
                parse_retry_after(&headers)
            } else {
                None
            };
            AttemptResult {
                at,
                status_code: Some(status),
                latency_ms,
                error: (!(200..300).contains(&status)).then(|| format!("receiver answered HTTP {status}")),
                response_body: body,
                retry_after,
            }
        }
        Err(error) => AttemptResult {
            at,
            status_code: None,
            latency_ms,
            error: Some(error),
            response_body: String::new(),
            retry_after: None,
        },
    }
}

async fn post(client: &reqwest::Client, request: &AttemptRequest) -> Result<(u16, HeaderMap, String), String> {
    let timestamp = jiff::Timestamp::now().as_second();
    let signatures = signing::sign(&request.secrets, &request.event_id, timestamp, &request.body)
        .map_err(|error: SigningError| error.to_string())?;
    let response = client
        .post(&request.url)
        .timeout(request.timeout)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &request.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signatures.standard)
        .header("X-FluxCascade-Signature", signatures.fluxcascade)
        .header("X-FluxCascade-Event-Id", &request.event_id)
        .header("X-FluxCascade-Event-Type", &request.event_type)
        .header("X-FluxCascade-Delivery-Id", &request.delivery_id)
        .header("X-FluxCascade-Attempt", request.attempt_number.to_string())
        .body(request.body.clone())
        .send()
        .await
        .map_err(describe_error)?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = read_prefix(response).await;
    Ok((status, headers, body))
}

/// Reads at most [`RESPONSE_BODY_LIMIT`] bytes of the body, then drops the rest.
async fn read_prefix(mut response: reqwest::Response) -> String {
    let mut kept = Vec::new();
    while kept.len() < RESPONSE_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            _ => break,
        }
    }
    kept.truncate(RESPONSE_BODY_LIMIT);
    String::from_utf8_lossy(&kept).into_owned()
}

fn describe_error(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".into();
    }
    // The endpoint's URL is on its record already, and may carry a credential.
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// `Retry-After` as seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`].
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let date = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
            let seconds = date.duration_since(jiff::Timestamp::now()).as_secs().max(0);
            Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
        }
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(http::header::RETRY_AFTER, value.parse().unwrap());
        map
    }

    #[test]
    fn retry_after_seconds_dates_and_caps() {
        assert_eq!(parse_retry_after(&headers("7")), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(&headers("999999")), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after(&headers("soon")), None);
        assert_eq!(parse_retry_after(&HeaderMap::new()), None);
    }
}
