//! The sandbox's control API for tests: `/_control/<provider>/<action>`.
//!
//! - `GET  stats` — token calls, code exchanges, refreshes, revocations.
//! - `GET  tokens` — the live access and refresh tokens (to check they never leak).
//! - `POST settings` `{"token_lifetime_seconds": N, "token_delay_ms": N}`.
//! - `POST fail-token-calls` `{"count": N, "status": 503}` — the next N token calls fail.
//! - `POST revoke-grants` — every refresh and access token stops working.
//! - `POST expire-access-tokens` — access tokens stop working; refresh tokens still do.
//!
//! Record actions (`records/…`, `seed`, `limits`, `records-stats`, `requests`) are answered by
//! `records::control`.

use serde_json::json;

use super::Sandbox;
use super::request::{Reply, SandboxRequest, json_reply};
use crate::providers::Provider;

pub fn handle(sandbox: &Sandbox, path: &str, request: &SandboxRequest) -> Reply {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let Some(provider) = parts.next().and_then(Provider::parse) else {
        return json_reply(404, json!({ "error": "unknown provider" }));
    };
    let action = parts.next().unwrap_or_default();
    if let Some(reply) = super::records::control(sandbox, provider, action, request) {
        return reply;
    }
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
    sandbox.with_state(|state| {
        let p = state.provider(provider);
        match (&request.method, action) {
            (&http::Method::GET, "stats") => json_reply(
                200,
                json!({
                    "token_calls": p.token_calls, "code_exchanges": p.code_exchanges, "refreshes": p.refreshes,
                    "revocations": p.revocations, "live_refresh_tokens": p.refresh_tokens.len(),
                    "live_access_tokens": p.access_tokens.len(), "accounts": p.accounts,
                }),
            ),
            (&http::Method::GET, "tokens") => json_reply(
                200,
                json!({
                    "access_tokens": p.access_tokens.keys().collect::<Vec<_>>(),
                    "refresh_tokens": p.refresh_tokens.keys().collect::<Vec<_>>(),
                }),
            ),
            (&http::Method::POST, "settings") => {
                if let Some(lifetime) = body["token_lifetime_seconds"].as_i64() {
                    p.token_lifetime = Some(lifetime.max(1));
                }
                if let Some(delay) = body["token_delay_ms"].as_u64() {
                    p.token_delay_ms = delay;
                }
                json_reply(200, json!({ "ok": true }))
            }
            (&http::Method::POST, "fail-token-calls") => {
                p.fail_next = u32::try_from(body["count"].as_u64().unwrap_or(1)).unwrap_or(u32::MAX);
                p.fail_status = u16::try_from(body["status"].as_u64().unwrap_or(503)).unwrap_or(503);
                json_reply(200, json!({ "ok": true }))
            }
            (&http::Method::POST, "fail-api-calls") => {
                p.fail_api_next = u32::try_from(body["count"].as_u64().unwrap_or(1)).unwrap_or(u32::MAX);
                p.fail_api_status = u16::try_from(body["status"].as_u64().unwrap_or(500)).unwrap_or(500);
                json_reply(200, json!({ "ok": true }))
            }
            (&http::Method::POST, "revoke-grants") => {
                p.refresh_tokens.clear();
                p.access_tokens.clear();
                json_reply(200, json!({ "ok": true }))
            }
            (&http::Method::POST, "expire-access-tokens") => {
                p.access_tokens.clear();
                json_reply(200, json!({ "ok": true }))
            }
            _ => json_reply(404, json!({ "error": "unknown control action", "action": action })),
        }
    })
}
