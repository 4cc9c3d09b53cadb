//! A tower layer around every gRPC call: counts it and measures its latency (labelled by the
//! methods fluxd serves, never by a caller's path), and answers a
//! request that does not decode with INVALID_ARGUMENT (tonic's codec says INTERNAL, which
//! would blame the server for the client's bytes).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tower::{Layer, Service};

use crate::metrics::Metrics;

/// Wraps the gRPC router with [`RpcMetrics`].
#[derive(Clone)]
pub struct RpcMetricsLayer {
    metrics: Metrics,
}

impl RpcMetricsLayer {
    pub fn new(metrics: Metrics) -> Self {
        RpcMetricsLayer { metrics }
    }
}

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// Records method, gRPC status code (`grpc-status` of a trailers-only response, else 0)
/// and latency of each call.
#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, B, R> Service<http::Request<B>> for RpcMetrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = route_label(request.uri().path());
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut result = future.await;
            if let Ok(response) = &mut result {
                blame_undecodable_requests(response.headers_mut());
            }
            let code = match &result {
                Ok(response) => match response.headers().get("grpc-status") {
                    None => "0".to_owned(),
                    // A status code is a small number; anything else is not echoed.
                    Some(value) => value
                        .to_str()
                        .ok()
                        .and_then(|text| text.parse::<u8>().ok())
                        .map_or_else(|| "invalid".to_owned(), |code| code.to_string()),
                },
                Err(_) => "transport_error".to_owned(),
            };
            metrics.observe_rpc(method, &code, started.elapsed());
            result
        })
    }
}

/// Methods served besides the API's own.
const SERVED: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// The label of a request's path: the method when it is one fluxd serves, `unknown` for any
/// other (so callers cannot grow the metrics with paths of their choosing).
fn route_label(path: &str) -> &'static str {
    crate::auth::permissions::MATRIX
        .iter()
        .map(|(method, _)| *method)
        .chain(SERVED.iter().copied())
        .find(|method| *method == path)
        .unwrap_or("unknown")
}

/// `grpc-message` of tonic's decode errors, percent-encoded as on the wire.
const DECODE_ERROR: &str = "failed%20to%20decode%20Protobuf%20message";

/// A trailers-only INTERNAL answer to a request that did not decode becomes INVALID_ARGUMENT.
fn blame_undecodable_requests(headers: &mut http::HeaderMap) {
    let undecodable = headers.get("grpc-status").is_some_and(|status| status == "13")
        && headers
            .get("grpc-message")
            .and_then(|message| message.to_str().ok())
            .is_some_and(|message| message.starts_with(DECODE_ERROR));
    if undecodable {
        headers.insert("grpc-status", http::HeaderValue::from_static("3"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_served_methods_label_metrics() {
        assert_eq!(
            route_label("/fluxcascade.v1.SyncService/RunSync"),
            "/fluxcascade.v1.SyncService/RunSync"
        );
        assert_eq!(
            route_label("/grpc.health.v1.Health/Check"),
            "/grpc.health.v1.Health/Check"
        );
        assert_eq!(route_label("/q{code=\"0\"}"), "unknown");
        assert_eq!(route_label("/fluxcascade.v1.SyncService/Nope"), "unknown");
    }

    #[test]
    fn decode_errors_become_invalid_argument_and_nothing_else_changes() {
        let mut decode = http::HeaderMap::new();
        decode.insert("grpc-status", "13".parse().unwrap());
        decode.insert(
            "grpc-message",
            "failed%20to%20decode%20Protobuf%20message:%20invalid%20wire%20type"
                .parse()
                .unwrap(),
        );
        blame_undecodable_requests(&mut decode);
        assert_eq!(decode["grpc-status"], "3");
        let mut internal = http::HeaderMap::new();
        internal.insert("grpc-status", "13".parse().unwrap());
        internal.insert("grpc-message", "store%20error".parse().unwrap());
        blame_undecodable_requests(&mut internal);
        assert_eq!(internal["grpc-status"], "13");
    }
}
