//! An inbound request as signature checks see it, and the constant-time comparison they
//! share.

use http::HeaderMap;
use subtle::ConstantTimeEq;

/// What a provider signed: the request as it arrived.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The full URL the provider called (`<public url><path>?<query>`).
    pub url: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// Now, Unix ms, for timestamp windows.
    pub now_ms: i64,
}

impl SignedRequest<'_> {
    /// Header `name` as text, when present and readable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
    }
}

/// Whether `given` equals `expected`, in time that does not depend on where they differ.
pub fn same(given: &[u8], expected: &[u8]) -> bool {
    given.ct_eq(expected).into()
}
