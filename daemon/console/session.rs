//! Console sessions. Signing in mints an expiring child API token of the token presented (so
//! the API's own authorization governs every page, revoking the parent revokes the session,
//! and the session shows in the token list); the browser keeps it sealed under the master key
//! in an HttpOnly, SameSite=Strict cookie together with the session's CSRF token. Nothing
//! about a session is stored besides its token's hash, so every node of a cluster serves it;
//! signing out revokes the token, so a copied cookie stops working too.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::request::ConsoleRequest;
use crate::crypto::{CryptoError, Secret};
use crate::store::Store;

/// How long a session lasts from sign-in.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// The cookie's name over plain HTTP …
const COOKIE: &str = "fluxd_session";
/// … and behind TLS, where the `__Host-` prefix makes browsers refuse it without `Secure`, a
/// `Domain` or a narrower `Path`.
const SECURE_COOKIE: &str = "__Host-fluxd_session";
/// Associated data of the sealed cookie: a value sealed for anything else does not open.
const SEAL_OWNER: &str = "console-session";
/// The longest cookie value opened (a real one is about 300 bytes).
const MAX_COOKIE: usize = 2048;

/// A signed-in browser.
pub struct Session {
    /// The session's API token.
    pub token: Secret,
    pub token_id: String,
    /// The value every form of this session carries.
    pub csrf: String,
    pub expires_at_ms: i64,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("token_id", &self.token_id)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    token: String,
    token_id: String,
    csrf: String,
    expires_at_ms: i64,
}

/// Makes and reads session cookies.
#[derive(Clone)]
pub struct Sessions {
    store: Store,
    /// Whether the console is reached over TLS (its public URL is `https://`).
    secure: bool,
}

impl Sessions {
    pub fn new(store: Store, secure: bool) -> Sessions {
        Sessions { store, secure }
    }

    fn cookie_name(&self) -> &'static str {
        if self.secure { SECURE_COOKIE } else { COOKIE }
    }

    fn attributes(&self, max_age: u64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
    }

    /// A new session for `token`, expiring at `expires_at_ms`.
    pub fn start(token: Secret, token_id: String, expires_at_ms: i64) -> Session {
        let csrf = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        Session {
            token,
            token_id,
            csrf,
            expires_at_ms,
        }
    }

    /// The `Set-Cookie` value that keeps `session` in the browser.
    pub fn cookie(&self, session: &Session) -> Result<String, CryptoError> {
        let sealed = Zeroizing::new(
            serde_json::to_vec(&Sealed {
                token: session.token.expose().to_owned(),
                token_id: session.token_id.clone(),
                csrf: session.csrf.clone(),
                expires_at_ms: session.expires_at_ms,
            })
            .unwrap_or_default(),
        );
        let value =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.store.seal_outside(SEAL_OWNER, &sealed)?);
        let seconds_left = (session.expires_at_ms - self.store.clock().now_ms()).max(0) / 1000;
        Ok(format!(
            "{}={value}; {}",
            self.cookie_name(),
            self.attributes(seconds_left.unsigned_abs())
        ))
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub fn cleared(&self) -> String {
        format!("{}=; {}", self.cookie_name(), self.attributes(0))
    }

    /// The unexpired session `request` carries, if any.
    pub fn of(&self, request: &ConsoleRequest) -> Option<Session> {
        let value = request.cookie(self.cookie_name())?;
        if value.len() > MAX_COOKIE {
            return None;
        }
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value).ok()?;
        let opened = self.store.open_outside(SEAL_OWNER, &sealed).ok()?;
        let sealed: Sealed = serde_json::from_slice(&opened).ok()?;
        if sealed.expires_at_ms <= self.store.clock().now_ms() {
            return None;
        }
        Some(Session {
            token: Secret::new(sealed.token),
            token_id: sealed.token_id,
            csrf: sealed.csrf,
            expires_at_ms: sealed.expires_at_ms,
        })
    }
}

/// Whether a form's `presented` CSRF value is the session's (compared in constant time).
pub fn csrf_matches(session: &Session, presented: &str) -> bool {
    !presented.is_empty() && subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), session.csrf.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::request::Fields;

    fn request_with(cookie: &str) -> ConsoleRequest {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::COOKIE, cookie.parse().unwrap());
        ConsoleRequest {
            method: http::Method::GET,
            path: "/".to_owned(),
            query: Fields::default(),
            headers,
            form: Fields::default(),
        }
    }

    /// `name=value` of a `Set-Cookie` value.
    fn pair(set_cookie: &str) -> &str {
        set_cookie.split(';').next().unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_session_opens_only_unaltered_unexpired_and_under_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), crate::crypto::MasterKey::generate()).unwrap();
        let sessions = Sessions::new(store.clone(), false);
        let now = store.clock().now_ms();
        let session = Sessions::start(Secret::new("fxc_secret"), "tok_1".to_owned(), now + 60_000);
        let cookie = sessions.cookie(&session).unwrap();
        assert!(!cookie.contains("fxc_secret"), "sealed: {cookie}");
        assert!(
            cookie.contains("HttpOnly; SameSite=Strict") && !cookie.contains("Secure"),
            "{cookie}"
        );
        let opened = sessions.of(&request_with(pair(&cookie))).expect("opens");
        assert_eq!(opened.token.expose(), "fxc_secret");
        assert_eq!(
            (opened.token_id.as_str(), opened.csrf.as_str()),
            ("tok_1", session.csrf.as_str())
        );
        assert!(csrf_matches(&opened, &session.csrf) && !csrf_matches(&opened, "") && !csrf_matches(&opened, "x"));
        assert!(!format!("{opened:?}").contains("fxc_secret"));

        // One flipped character, an expired session, another daemon's key: nothing opens.
        let mut altered = pair(&cookie).to_owned();
        let last = altered.pop().unwrap();
        altered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(sessions.of(&request_with(&altered)).is_none());
        let expired = Sessions::start(Secret::new("fxc_secret"), "tok_1".to_owned(), now - 1);
        assert!(
            sessions
                .of(&request_with(pair(&sessions.cookie(&expired).unwrap())))
                .is_none()
        );
        let other_dir = tempfile::tempdir().unwrap();
        let other = Sessions::new(
            Store::open(other_dir.path(), crate::crypto::MasterKey::generate()).unwrap(),
            false,
        );
        assert!(other.of(&request_with(pair(&cookie))).is_none());
        assert!(
            sessions
                .of(&request_with(&format!("fluxd_session={}", "A".repeat(4096))))
                .is_none()
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn behind_tls_the_cookie_is_secure_and_host_prefixed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), crate::crypto::MasterKey::generate()).unwrap();
        let sessions = Sessions::new(store.clone(), true);
        let session = Sessions::start(
            Secret::new("fxc_t"),
            "tok_2".to_owned(),
            store.clock().now_ms() + 60_000,
        );
        let cookie = sessions.cookie(&session).unwrap();
        assert!(
            cookie.starts_with("__Host-fluxd_session=") && cookie.ends_with("; Secure"),
            "{cookie}"
        );
        assert!(sessions.of(&request_with(pair(&cookie))).is_some());
        assert!(sessions.cleared().contains("Max-Age=0"));
    }
}
