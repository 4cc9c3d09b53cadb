//! One signed-in request as the pages see it: the API as the session's member, who that is,
//! and the request.

use http::Response;

use super::request::ConsoleRequest;
use super::rpc::{Api, Failure};
use crate::auth::Role;
use crate::auth::permissions::rule_of;
use crate::body::Body;

/// What a page answers.
pub type Answer = Result<Response<Body>, Failure>;

/// The signed-in member, as the header and the role checks need them.
pub struct Who {
    pub org_name: String,
    pub role: Role,
    /// The session's own API token.
    pub token_id: String,
}

impl Who {
    /// Whether the member's role may call `method` (`Service/Method` of `fluxcascade.v1`):
    /// the permission matrix's row, the same the API checks. Pages show a form or a button
    /// only when it would be allowed; the API refuses it anyway.
    pub fn may(&self, method: &str) -> bool {
        rule_of(&format!("/fluxcascade.v1.{method}")).is_some_and(|rule| self.role.may(rule.access))
    }
}

/// A signed-in request.
pub struct Visit<'a> {
    pub api: Api,
    pub who: Who,
    /// The session's CSRF token, for its forms.
    pub csrf: String,
    pub request: &'a ConsoleRequest,
    /// The daemon's public URL (no trailing slash), for links sent to other people.
    pub public_url: &'a str,
}
