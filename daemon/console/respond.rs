//! What the console answers: pages and redirects carrying the headers every console response
//! needs (a strict Content-Security-Policy, no framing, no caching of signed-in pages), and
//! its two static assets.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use maud::Markup;

use crate::body::{Body, full};

/// Scripts, styles and images only from the console itself, no inline code of any kind, forms
/// post only to it, and no page may frame it.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("assets/console.css");
const SCRIPT: &str = include_str!("assets/console.js");

/// Adds the headers of every console answer.
fn protect(response: &mut Response<Body>) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Same-origin requests keep their Origin header, which sign-in checks.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

/// An HTML page.
pub fn page(status: StatusCode, markup: Markup) -> Response<Body> {
    let mut response = Response::new(full(markup.into_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    protect(&mut response);
    response
}

/// A `303 See Other` to a path of the console (after a form, the browser GETs it).
pub fn redirect(location: &str) -> Response<Body> {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    protect(&mut response);
    response
}

/// A plain-text answer with the console's headers.
pub fn text(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    let mut response = Response::new(full(message.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    protect(&mut response);
    response
}

/// Adds a `Set-Cookie` header.
pub fn set_cookie(response: &mut Response<Body>, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The console's stylesheet or script, for `path`.
pub fn asset(path: &str) -> Option<Response<Body>> {
    let (body, content_type) = match path {
        "/console.css" => (STYLESHEET, "text/css; charset=utf-8"),
        "/console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => return None,
    };
    let mut response = Response::new(full(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    protect(&mut response);
    Some(response)
}

/// One item of an event stream.
pub enum StreamItem {
    /// An event: a `data:` line (of JSON).
    Data(String),
    /// A comment, keeping an idle stream open through proxies that close quiet connections.
    KeepAlive,
}

/// A `text/event-stream` of `items`, for live progress.
pub fn events(items: impl futures::Stream<Item = StreamItem> + Send + 'static) -> Response<Body> {
    use futures::StreamExt as _;
    let frames = items.map(|item| {
        let text = match item {
            StreamItem::Data(event) => format!("data: {event}\n\n"),
            StreamItem::KeepAlive => ": keep-alive\n\n".to_owned(),
        };
        Ok::<_, Infallible>(http_body::Frame::data(Bytes::from(text)))
    });
    let mut response = Response::new(http_body_util::StreamBody::new(frames).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    // Proxies that buffer answers (nginx) pass this one on as it comes.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    protect(&mut response);
    response
}
