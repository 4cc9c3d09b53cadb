//! The providers' OAuth endpoints (authorize, token, revoke) and "who am I" calls, answering
//! as the real ones do.

use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::request::{Reply, SandboxRequest, empty_reply, json_reply, redirect};
use super::state::{AccessGrant, CodeGrant, ProviderState, RefreshGrant, default_lifetime, now, random_token};
use super::{Sandbox, client_id, client_secret};
use crate::providers::Provider;
use crate::providers::jwt;

/// Key the sandbox signs Jobber's JWT access tokens with.
const JOBBER_JWT_KEY: &[u8] = b"fluxcascade-sandbox-jobber";

pub async fn handle(sandbox: &Sandbox, provider: Provider, base: &str, path: &str, request: &SandboxRequest) -> Reply {
    use http::Method;
    let method = &request.method;
    match (provider, method, path) {
        (_, &Method::GET, "/oauth/authorize" | "/api/oauth/authorize" | "/services/oauth2/authorize") => {
            authorize(sandbox, provider, request)
        }
        (Provider::Hubspot, &Method::POST, "/oauth/v1/token" | "/oauth/v3/token")
        | (Provider::Jobber, &Method::POST, "/api/oauth/token")
        | (Provider::Pipedrive, &Method::POST, "/oauth/token")
        | (Provider::Salesforce, &Method::POST, "/services/oauth2/token") => {
            token(sandbox, provider, base, request).await
        }
        (Provider::Hubspot, &Method::DELETE, p) if p.starts_with("/oauth/v1/refresh-tokens/") => {
            revoke_refresh_token(sandbox, provider, &p["/oauth/v1/refresh-tokens/".len()..])
        }
        (Provider::Pipedrive, &Method::POST, "/oauth/revoke")
        | (Provider::Salesforce, &Method::POST, "/services/oauth2/revoke") => {
            let token = request.fields().get("token").cloned().unwrap_or_default();
            revoke_refresh_token(sandbox, provider, &token)
        }
        (Provider::Hubspot, &Method::GET, p) if p.starts_with("/oauth/v1/access-tokens/") => {
            hubspot_token_info(sandbox, &p["/oauth/v1/access-tokens/".len()..])
        }
        (Provider::Pipedrive, &Method::GET, "/api/v1/users/me") => {
            with_account(sandbox, provider, request, |account| {
                json_reply(200, json!({ "success": true, "data": pipedrive_user(account) }))
            })
        }
        (Provider::Salesforce, &Method::GET, "/services/oauth2/userinfo") => {
            with_account(sandbox, provider, request, |account| {
                json_reply(200, salesforce_userinfo(base, account))
            })
        }
        _ => json_reply(404, json!({ "error": "not found", "path": path })),
    }
}

fn authorize(sandbox: &Sandbox, provider: Provider, request: &SandboxRequest) -> Reply {
    let query = &request.query;
    if query.get("client_id") != Some(&client_id(provider)) {
        return json_reply(
            400,
            json!({ "error": "invalid_client", "error_description": "unknown client_id" }),
        );
    }
    let Some(redirect_uri) = query.get("redirect_uri").filter(|u| u.starts_with("http")) else {
        return json_reply(
            400,
            json!({ "error": "invalid_request", "error_description": "redirect_uri is required" }),
        );
    };
    if provider == Provider::Salesforce && query.get("response_type").map(String::as_str) != Some("code") {
        return json_reply(400, json!({ "error": "unsupported_response_type" }));
    }
    let code = random_token("code-");
    sandbox.with_state(|state| {
        let provider_state = state.provider(provider);
        provider_state.accounts += 1;
        let grant = CodeGrant {
            client_id: client_id(provider),
            redirect_uri: redirect_uri.clone(),
            code_challenge: query.get("code_challenge").cloned(),
            account: provider_state.accounts,
            expires_at: now() + 600,
        };
        provider_state.codes.insert(code.clone(), grant);
    });
    let mut location = url::Url::parse(redirect_uri).expect("checked above: starts with http");
    location.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = query.get("state") {
        location.query_pairs_mut().append_pair("state", state);
    }
    redirect(location.as_str())
}

/// The client credentials of a token call: Basic auth for Pipedrive, body fields elsewhere.
fn client_credentials(provider: Provider, request: &SandboxRequest) -> Option<(String, String)> {
    if provider == Provider::Pipedrive {
        return request.basic_auth();
    }
    let fields = request.fields();
    Some((fields.get("client_id")?.clone(), fields.get("client_secret")?.clone()))
}

async fn token(sandbox: &Sandbox, provider: Provider, base: &str, request: &SandboxRequest) -> Reply {
    let (delay, failure) = sandbox.with_state(|state| {
        let p = state.provider(provider);
        p.token_calls += 1;
        let failure = (p.fail_next > 0).then(|| {
            p.fail_next -= 1;
            p.fail_status
        });
        (p.token_delay_ms, failure)
    });
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if let Some(status) = failure {
        return json_reply(
            status,
            json!({ "error": "temporarily_unavailable", "error_description": "sandbox: injected failure" }),
        );
    }
    if client_credentials(provider, request) != Some((client_id(provider), client_secret(provider))) {
        return json_reply(
            401,
            json!({ "error": "invalid_client", "error_description": "client authentication failed" }),
        );
    }
    let fields = request.fields();
    sandbox.with_state(|state| {
        let p = state.provider(provider);
        match fields.get("grant_type").map(String::as_str) {
            Some("authorization_code") => exchange_code(p, provider, base, &fields),
            Some("refresh_token") => refresh(
                p,
                provider,
                base,
                fields.get("refresh_token").map(String::as_str).unwrap_or_default(),
            ),
            _ => json_reply(400, json!({ "error": "unsupported_grant_type" })),
        }
    })
}

fn exchange_code(
    p: &mut ProviderState,
    provider: Provider,
    base: &str,
    fields: &std::collections::HashMap<String, String>,
) -> Reply {
    p.code_exchanges += 1;
    let code = fields.get("code").cloned().unwrap_or_default();
    let Some(grant) = p.codes.remove(&code) else {
        return bad_grant(provider, "authorization code is invalid or was already used");
    };
    if grant.expires_at < now()
        || fields.get("redirect_uri") != Some(&grant.redirect_uri)
        || grant.client_id != client_id(provider)
    {
        return bad_grant(provider, "authorization code expired or redirect_uri mismatch");
    }
    if let Some(challenge) = &grant.code_challenge {
        let verifier = fields.get("code_verifier").cloned().unwrap_or_default();
        let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        if &computed != challenge {
            return bad_grant(provider, "PKCE code_verifier does not match the code_challenge");
        }
    }
    let refresh_token = random_token(refresh_prefix(provider));
    p.refresh_tokens
        .insert(refresh_token.clone(), RefreshGrant { account: grant.account });
    issue(p, provider, base, grant.account, Some(refresh_token))
}

fn refresh(p: &mut ProviderState, provider: Provider, base: &str, presented: &str) -> Reply {
    p.refreshes += 1;
    let Some(account) = p.refresh_tokens.get(presented).map(|g| g.account) else {
        return bad_grant(provider, "refresh token is invalid, revoked or was already used");
    };
    let returned = match provider {
        // Jobber rotates: a new refresh token each time, and the old one stops working.
        Provider::Jobber => {
            p.refresh_tokens.remove(presented);
            let rotated = random_token(refresh_prefix(provider));
            p.refresh_tokens.insert(rotated.clone(), RefreshGrant { account });
            Some(rotated)
        }
        // HubSpot and Pipedrive send the same refresh token back.
        Provider::Hubspot | Provider::Pipedrive => Some(presented.to_owned()),
        // Salesforce answers a refresh without a refresh token.
        Provider::Salesforce => None,
    };
    issue(p, provider, base, account, returned)
}

fn refresh_prefix(provider: Provider) -> &'static str {
    match provider {
        Provider::Hubspot => "na1-",
        Provider::Jobber => "jbr-",
        Provider::Pipedrive => "pdr-",
        Provider::Salesforce => "5Aep",
    }
}

/// Issues an access token and answers with the provider's token response.
fn issue(p: &mut ProviderState, provider: Provider, base: &str, account: u32, refresh_token: Option<String>) -> Reply {
    let lifetime = p.token_lifetime.unwrap_or_else(|| default_lifetime(provider));
    let issued = now();
    let access_token = match provider {
        Provider::Jobber => {
            let claims = json!({ "sub": account, "account_id": jobber_account_id(account), "iat": issued, "exp": issued + lifetime, "jti": random_token("") });
            jwt::sign_hs256(&claims, JOBBER_JWT_KEY)
        }
        Provider::Hubspot => random_token("CKz"),
        Provider::Pipedrive => random_token("v1u:"),
        Provider::Salesforce => format!("{}!{}", salesforce_org_id(account), random_token("AQ")),
    };
    p.access_tokens.insert(
        access_token.clone(),
        AccessGrant {
            account,
            expires_at: issued + lifetime,
        },
    );
    let mut body = match provider {
        Provider::Hubspot => json!({
            "token_type": "bearer", "access_token": access_token, "expires_in": lifetime,
            "hub_id": hubspot_hub_id(account), "scopes": ["oauth", "crm.objects.contacts.read", "crm.objects.contacts.write"],
        }),
        Provider::Jobber => json!({ "access_token": access_token }),
        Provider::Pipedrive => json!({
            "access_token": access_token, "token_type": "Bearer", "expires_in": lifetime, "scope": "base,contacts:full,deals:full",
            "api_domain": base,
        }),
        Provider::Salesforce => json!({
            "access_token": access_token, "token_type": "Bearer", "instance_url": base,
            "id": format!("{base}/id/{}/{}", salesforce_org_id(account), salesforce_user_id(account)),
            "issued_at": (issued * 1000).to_string(), "signature": random_token(""), "scope": "api refresh_token",
        }),
    };
    if let Some(refresh_token) = refresh_token {
        body["refresh_token"] = refresh_token.into();
    }
    json_reply(200, body)
}

/// Each provider's answer to a bad, revoked or reused grant.
fn bad_grant(provider: Provider, description: &str) -> Reply {
    match provider {
        Provider::Hubspot => json_reply(
            400,
            json!({ "status": "BAD_REFRESH_TOKEN", "message": description, "correlationId": uuid::Uuid::new_v4().to_string() }),
        ),
        Provider::Pipedrive => json_reply(
            400,
            json!({ "success": false, "message": description, "error": "invalid_grant" }),
        ),
        Provider::Salesforce => json_reply(
            400,
            json!({ "error": "invalid_grant", "error_description": "expired access/refresh token" }),
        ),
        Provider::Jobber => json_reply(
            400,
            json!({ "error": "invalid_grant", "error_description": description }),
        ),
    }
}

fn revoke_refresh_token(sandbox: &Sandbox, provider: Provider, token: &str) -> Reply {
    sandbox.with_state(|state| {
        let p = state.provider(provider);
        p.revocations += 1;
        match p.refresh_tokens.remove(token) {
            Some(grant) => {
                p.access_tokens.retain(|_, a| a.account != grant.account);
                if provider == Provider::Hubspot {
                    empty_reply(204)
                } else {
                    empty_reply(200)
                }
            }
            None if provider == Provider::Hubspot => {
                json_reply(404, json!({ "status": "error", "message": "refresh token not found" }))
            }
            None => empty_reply(200),
        }
    })
}

/// The account of a live bearer token, or the provider's 401.
pub(super) fn authenticated(sandbox: &Sandbox, provider: Provider, token: Option<&str>) -> Result<u32, Reply> {
    let account = sandbox.with_state(|state| {
        let p = state.provider(provider);
        token
            .and_then(|t| p.access_tokens.get(t))
            .filter(|g| g.expires_at > now())
            .map(|g| g.account)
    });
    account.ok_or_else(|| unauthorized(provider))
}

/// Each provider's answer to a missing, expired or revoked access token.
pub fn unauthorized(provider: Provider) -> Reply {
    match provider {
        Provider::Hubspot => json_reply(
            401,
            json!({ "status": "error", "message": "Authentication credentials not found or expired.", "category": "EXPIRED_AUTHENTICATION", "correlationId": uuid::Uuid::new_v4().to_string() }),
        ),
        Provider::Jobber => json_reply(401, json!({ "message": "Unauthorized" })),
        Provider::Pipedrive => json_reply(
            401,
            json!({ "success": false, "error": "unauthorized access", "errorCode": 401 }),
        ),
        Provider::Salesforce => json_reply(
            401,
            json!([{ "message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID" }]),
        ),
    }
}

fn with_account(
    sandbox: &Sandbox,
    provider: Provider,
    request: &SandboxRequest,
    reply: impl FnOnce(u32) -> Reply,
) -> Reply {
    match authenticated(sandbox, provider, request.bearer()) {
        Ok(account) => reply(account),
        Err(unauthorized) => unauthorized,
    }
}

fn hubspot_token_info(sandbox: &Sandbox, token: &str) -> Reply {
    let found = sandbox.with_state(|state| {
        state
            .provider(Provider::Hubspot)
            .access_tokens
            .get(token)
            .filter(|g| g.expires_at > now())
            .map(|g| (g.account, g.expires_at))
    });
    match found {
        Some((account, expires_at)) => json_reply(
            200,
            json!({
                "token": token, "user": format!("admin{account}@sandbox.example"), "hub_domain": hubspot_domain(account),
                "scopes": ["oauth", "crm.objects.contacts.read", "crm.objects.contacts.write"], "hub_id": hubspot_hub_id(account),
                "app_id": 1_234_567, "expires_in": expires_at - now(), "user_id": 9_000 + account, "token_type": "access",
            }),
        ),
        None => json_reply(
            404,
            json!({ "status": "error", "message": "Token not found or expired" }),
        ),
    }
}

/// The HubSpot portal id of account `account`.
pub(crate) fn hubspot_hub_id(account: u32) -> u32 {
    62_514 + account
}

fn hubspot_domain(account: u32) -> String {
    format!("portal-{}.sandbox.hubspot.com", hubspot_hub_id(account))
}

/// The id of Jobber account `account`, an EncodedId.
pub(crate) fn jobber_account_id(account: u32) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("gid://Jobber/Account/{account}"))
}

/// The name of Jobber account `account`.
pub(crate) fn jobber_account_name(account: u32) -> String {
    format!("Sandbox Field Services {account}")
}

/// The Pipedrive company id of account `account`.
pub(crate) fn pipedrive_company_id(account: u32) -> u32 {
    1_000 + account
}

/// The Pipedrive user id of account `account`.
pub(crate) fn pipedrive_user_id(account: u32) -> u32 {
    10_000 + account
}

fn pipedrive_user(account: u32) -> serde_json::Value {
    json!({
        "id": pipedrive_user_id(account), "name": format!("Sandbox Admin {account}"), "email": format!("admin{account}@sandbox.example"),
        "company_id": pipedrive_company_id(account), "company_name": format!("Sandbox Sales Co {account}"),
        "company_domain": format!("sandbox{account}"),
    })
}

/// The Salesforce organization id of account `account`.
pub(crate) fn salesforce_org_id(account: u32) -> String {
    format!("00D5e0000{account:06}")
}

fn salesforce_user_id(account: u32) -> String {
    format!("0055e0000{account:06}")
}

fn salesforce_userinfo(base: &str, account: u32) -> serde_json::Value {
    json!({
        "sub": format!("{base}/id/{}/{}", salesforce_org_id(account), salesforce_user_id(account)),
        "user_id": salesforce_user_id(account), "organization_id": salesforce_org_id(account),
        "preferred_username": format!("admin{account}@sandbox-org.example"), "name": format!("Sandbox Admin {account}"),
    })
}
