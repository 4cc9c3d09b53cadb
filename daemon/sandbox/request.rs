//! Request parsing and reply building for the sandbox's handlers.

use std::collections::HashMap;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// A fully read request.
pub struct SandboxRequest {
    pub method: http::Method,
    pub path: String,
    /// The query parameters; a repeated one keeps its last value (see [`SandboxRequest::query_all`]).
    pub query: HashMap<String, String>,
    /// The query string as sent.
    pub raw_query: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// A reply to send.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Reply {
    pub fn into_response(self) -> http::Response<Full<Bytes>> {
        let mut response = http::Response::new(Full::new(self.body));
        *response.status_mut() =
            http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        for (name, value) in self.headers {
            if let (Ok(name), Ok(value)) = (http::HeaderName::try_from(name), http::HeaderValue::try_from(value)) {
                response.headers_mut().append(name, value);
            }
        }
        response
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// A JSON reply.
pub fn json_reply(status: u16, body: serde_json::Value) -> Reply {
    Reply {
        status,
        headers: vec![("content-type".into(), "application/json;charset=utf-8".into())],
        body: Bytes::from(body.to_string()),
    }
}

/// An empty reply.
pub fn empty_reply(status: u16) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: Bytes::new(),
    }
}

/// A redirect.
pub fn redirect(location: &str) -> Reply {
    Reply {
        status: 302,
        headers: vec![("location".into(), location.to_owned())],
        body: Bytes::new(),
    }
}

impl SandboxRequest {
    /// Reads the whole body (the sandbox serves small API calls).
    pub async fn read(request: http::Request<hyper::body::Incoming>) -> Result<SandboxRequest, Reply> {
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| json_reply(400, serde_json::json!({ "error": format!("unreadable body: {e}") })))?
            .to_bytes();
        let raw_query = parts.uri.query().unwrap_or_default().to_owned();
        let query = url::form_urlencoded::parse(raw_query.as_bytes()).into_owned().collect();
        Ok(SandboxRequest {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query,
            raw_query,
            headers: parts.headers,
            body,
        })
    }

    /// Form fields of an `application/x-www-form-urlencoded` body, or the string fields of a
    /// JSON object body.
    pub fn fields(&self) -> HashMap<String, String> {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(&self.body) {
            return map
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
                .collect();
        }
        url::form_urlencoded::parse(&self.body).into_owned().collect()
    }

    /// Every value of a query parameter, in order (`properties=a&properties=b`).
    pub fn query_all(&self, name: &str) -> Vec<String> {
        url::form_urlencoded::parse(self.raw_query.as_bytes())
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The token of `Authorization: Bearer …`.
    pub fn bearer(&self) -> Option<&str> {
        let value = self.header("authorization")?;
        value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
    }

    /// (user, password) of `Authorization: Basic …`.
    pub fn basic_auth(&self) -> Option<(String, String)> {
        use base64::Engine as _;
        let encoded = self.header("authorization")?.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        Some((decode(user)?, decode(password)?))
    }
}
