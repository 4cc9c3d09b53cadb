//! A console request as the pages read it: method, path, query, cookies and, for a POST, its
//! form, read with a size limit.

use http::{HeaderMap, Method, StatusCode, header};
use http_body_util::{BodyExt, Limited};

/// The largest form the console accepts (a mapping with many field pairs fits easily).
pub const MAX_FORM_BYTES: usize = 64 * 1024;
/// How long a client may take to send a form once its headers arrived.
const FORM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Name/value pairs of a query string or a form, in order (a name may repeat). No `Debug`:
/// forms carry API, invitation and CSRF tokens.
#[derive(Default, Clone)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(text: &[u8]) -> Fields {
        Fields(url::form_urlencoded::parse(text).into_owned().collect())
    }

    /// The first value of `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.trim())
    }

    /// Every non-empty value of `name` (checked boxes of one group), trimmed.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, value)| key == name && !value.trim().is_empty())
            .map(|(_, value)| value.trim())
            .collect()
    }

    /// Whether `name` was sent (a checked checkbox, a pressed button).
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(key, _)| key == name)
    }
}

/// Why a request's form was not read.
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    #[error("a form may have at most {MAX_FORM_BYTES} bytes")]
    TooLarge,
    #[error("the form did not arrive within {} s", FORM_TIMEOUT.as_secs())]
    TooSlow,
}

impl FormError {
    pub fn status(&self) -> StatusCode {
        match self {
            FormError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            FormError::TooSlow => StatusCode::REQUEST_TIMEOUT,
        }
    }
}

/// What the pages need of a request.
pub struct ConsoleRequest {
    pub method: Method,
    pub path: String,
    pub query: Fields,
    pub headers: HeaderMap,
    /// The form of a POST (`application/x-www-form-urlencoded`).
    pub form: Fields,
}

impl ConsoleRequest {
    /// Reads `request`, its form at most [`MAX_FORM_BYTES`].
    pub async fn read<B>(request: http::Request<B>) -> Result<ConsoleRequest, FormError>
    where
        B: http_body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = request.into_parts();
        let query = Fields::parse(parts.uri.query().unwrap_or_default().as_bytes());
        let form = if parts.method == Method::POST {
            let urlencoded = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
            if !urlencoded {
                // Not a form the console's pages send: it carries no CSRF token, so a signed-in
                // POST is refused with 403 (sign-in finds no token).
                return Ok(ConsoleRequest {
                    method: parts.method,
                    path: parts.uri.path().to_owned(),
                    query,
                    headers: parts.headers,
                    form: Fields::default(),
                });
            }
            let read = tokio::time::timeout(FORM_TIMEOUT, Limited::new(body, MAX_FORM_BYTES).collect());
            let bytes = match read.await {
                Err(_) => return Err(FormError::TooSlow),
                Ok(Err(_)) => return Err(FormError::TooLarge),
                Ok(Ok(collected)) => collected.to_bytes(),
            };
            Fields::parse(&bytes)
        } else {
            Fields::default()
        };
        Ok(ConsoleRequest {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query,
            headers: parts.headers,
            form,
        })
    }

    /// The value of cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }

    /// The path's segments after the leading `/`.
    pub fn segments(&self) -> Vec<&str> {
        self.path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect()
    }
}
