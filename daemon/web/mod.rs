//! The HTTP listener (hyper): health, metrics, OAuth callbacks, inbound provider webhooks,
//! and the web console on every other path.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::body::{Body, full};
use crate::connections::ConnectionRuntime;
use crate::connections::callback;
use crate::console::Console;
use crate::inbound::{Receiver, receiver};
use crate::listen::LimitedListener;
use crate::metrics::{Exposition, Metrics};

/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What the HTTP handlers need.
pub struct WebState {
    pub metrics: Metrics,
    /// The bearer token `/metrics` requires, if any.
    pub metrics_token: Option<crate::crypto::Secret>,
    pub connections: Arc<ConnectionRuntime>,
    pub inbound: Receiver,
    pub console: Console,
}

/// Serves HTTP on `listener` until `shutdown` resolves, then lets open requests finish.
pub async fn serve(listener: TcpListener, state: Arc<WebState>, shutdown: impl Future<Output = ()>) {
    let listener = LimitedListener::new(listener, "HTTP");
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        // Finished connections' tasks are let go as new ones come.
        while connections.try_join_next().is_some() {}
        let (stream, slot) = accepted.into_parts();
        let peer = stream.peer_addr().ok();
        let state = state.clone();
        connections.spawn(async move {
            let _slot = slot;
            let service = service_fn(move |request| handle(state.clone(), request, peer));
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "http connection ended with an error");
            }
        });
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        tracing::warn!("http connections still open at shutdown; closing them");
    }
}

async fn handle(
    state: Arc<WebState>,
    request: Request<Incoming>,
    peer: Option<std::net::SocketAddr>,
) -> Result<Response<Body>, Infallible> {
    if request.uri().path().starts_with(receiver::PATH_PREFIX) {
        let answer = state.inbound.handle(request).await;
        let mut response = text(
            StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_REQUEST),
            answer.body,
        );
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(answer.content_type),
        );
        if let Some(seconds) = answer.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        return Ok(response);
    }
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => match state.connections.store.failure() {
            None => text(StatusCode::OK, "ok\n"),
            Some(failure) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("store cannot write ({failure}); fluxd is stopping to reopen it\n"),
            ),
        },
        (&Method::GET, "/metrics") if !scraper_allowed(&state, &request) => {
            let mut response = text(
                StatusCode::UNAUTHORIZED,
                "/metrics needs the bearer token of [metrics] bearer_token_file\n",
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
            response
        }
        (&Method::GET, "/metrics") => {
            let format = Exposition::from_accept(
                request
                    .headers()
                    .get(header::ACCEPT)
                    .and_then(|accept| accept.to_str().ok()),
            );
            let metrics = state.metrics.clone();
            let store = state.connections.store.clone();
            // Reading the queues and /proc is blocking work.
            let body = tokio::task::spawn_blocking(move || metrics.render(format, &store))
                .await
                .unwrap_or_default();
            let mut response = text(StatusCode::OK, body);
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(format.content_type()),
            );
            response
        }
        (&Method::GET, "/oauth/callback") => {
            let query: HashMap<String, String> = request
                .uri()
                .query()
                .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default();
            let page = callback::handle(&state.connections, &query).await;
            let mut response = text(
                StatusCode::from_u16(page.status).unwrap_or(StatusCode::BAD_REQUEST),
                page.html,
            );
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/html; charset=utf-8"),
            );
            // A static page: nothing to load, nothing to frame it, not kept, and its URL (the
            // authorization code) sent nowhere.
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                header::HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
            );
            headers.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
            headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
            headers.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("no-referrer"));
            response
        }
        (_, "/healthz" | "/metrics" | "/oauth/callback") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => state.console.handle(request, peer).await,
    };
    Ok(response)
}

/// Whether `request` may read `/metrics`: always when no token is configured, else with it
/// (compared in constant time).
fn scraper_allowed(state: &WebState, request: &Request<Incoming>) -> bool {
    let Some(token) = &state.metrics_token else {
        return true;
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    subtle::ConstantTimeEq::ct_eq(presented.trim().as_bytes(), token.expose().as_bytes()).into()
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
