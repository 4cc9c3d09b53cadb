//! OAuth2 with each provider, through the `oauth2` crate: authorize URLs (with PKCE where
//! supported), code exchange, refresh, and revocation; plus the classification of token
//! endpoint failures into "reconnect required" and "try again later".

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

use super::Provider;
use super::config::OAuthApp;
use super::jwt;
use crate::crypto::Secret;

/// Fields some providers add to the token response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProviderTokenFields {
    /// Pipedrive: the company's API base, e.g. `https://acme.pipedrive.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_domain: Option<String>,
    /// Salesforce: the org's API base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_url: Option<String>,
    /// Salesforce: the identity URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl ExtraTokenFields for ProviderTokenFields {}

type ProviderTokenResponse = StandardTokenResponse<ProviderTokenFields, BasicTokenType>;
type ProviderClient = oauth2::Client<
    BasicErrorResponse,
    ProviderTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Tokens from one token-endpoint answer.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: Secret,
    /// `None` when the answer carried no refresh token (keep the old one).
    pub refresh_token: Option<Secret>,
    /// When the access token expires, where the provider says (`expires_in`, a JWT `exp`).
    pub expires_at: Option<jiff::Timestamp>,
    /// Per-connection API base (Pipedrive `api_domain`, Salesforce `instance_url`).
    pub api_base_url: Option<String>,
    /// Salesforce's identity URL.
    pub identity_url: Option<String>,
}

/// Why a token call failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum OAuthError {
    #[error("{provider} rejected the grant ({reason}); the connection must be authorized again")]
    Revoked { provider: Provider, reason: String },
    #[error("{provider} token endpoint is unavailable ({reason}); will retry")]
    Transient { provider: Provider, reason: String },
    #[error("{provider} token endpoint answered unexpectedly: {reason}")]
    Protocol { provider: Provider, reason: String },
    #[error("{provider} URL {url:?} in the config is invalid")]
    BadUrl { provider: Provider, url: String },
}

impl OAuthError {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, OAuthError::Transient { .. })
    }
}

/// A provider's OAuth client for one redirect URI.
#[derive(Clone)]
pub struct OAuthClient {
    pub app: OAuthApp,
    http: reqwest::Client,
    redirect_uri: String,
}

/// A PKCE pair: the challenge goes into the authorize URL, the verifier is kept (sealed) until
/// the callback.
pub struct Pkce {
    pub verifier: Secret,
}

impl Pkce {
    pub fn generate() -> Pkce {
        let (_, verifier) = PkceCodeChallenge::new_random_sha256();
        Pkce {
            verifier: Secret::new(verifier.secret().clone()),
        }
    }
}

/// Performs one token-endpoint call for the `oauth2` crate and remembers the HTTP status, so
/// failures can be classified by status as well as body.
struct TokenCall {
    http: reqwest::Client,
    provider: Provider,
    status: Mutex<Option<u16>>,
}

impl TokenCall {
    fn new(http: &reqwest::Client, provider: Provider) -> Arc<TokenCall> {
        Arc::new(TokenCall {
            http: http.clone(),
            provider,
            status: Mutex::new(None),
        })
    }

    /// The HTTP function handed to the `oauth2` crate; its futures own what they use.
    fn client(
        self: &Arc<Self>,
    ) -> impl Fn(oauth2::HttpRequest) -> BoxFuture<'static, Result<oauth2::HttpResponse, reqwest::Error>> {
        let call = self.clone();
        move |request| {
            let call = call.clone();
            Box::pin(async move { call.send(request).await })
        }
    }

    async fn send(&self, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, reqwest::Error> {
        let (parts, body) = request.into_parts();
        let response = self
            .http
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await?;
        let status = response.status();
        if let Ok(mut slot) = self.status.lock() {
            *slot = Some(status.as_u16());
        }
        let mut builder = http::Response::builder().status(status);
        if let Some(headers) = builder.headers_mut() {
            *headers = response.headers().clone();
        }
        let mut bytes = response.bytes().await?.to_vec();
        if self.provider == Provider::Jobber && status.is_success() {
            bytes = with_bearer_token_type(bytes);
        }
        // Invariant: status and headers came from a valid response.
        Ok(builder.body(bytes).expect("valid response parts"))
    }

    fn status(&self) -> Option<u16> {
        self.status.lock().ok().and_then(|slot| *slot)
    }
}

/// Jobber's token answer carries no `token_type`, which RFC 6749 requires and the `oauth2`
/// crate insists on; its tokens are bearer tokens, so say so.
fn with_bearer_token_type(body: Vec<u8>) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(mut map)) if !map.contains_key("token_type") => {
            map.insert("token_type".into(), "bearer".into());
            serde_json::to_vec(&map).unwrap_or(body)
        }
        _ => body,
    }
}

impl OAuthClient {
    pub fn new(app: OAuthApp, http: reqwest::Client, redirect_uri: String) -> Self {
        OAuthClient {
            app,
            http,
            redirect_uri,
        }
    }

    pub fn provider(&self) -> Provider {
        self.app.provider
    }

    fn client(&self) -> Result<ProviderClient, OAuthError> {
        let bad = |url: &str| OAuthError::BadUrl {
            provider: self.provider(),
            url: url.to_owned(),
        };
        let auth_type = if self.provider() == Provider::Pipedrive {
            AuthType::BasicAuth
        } else {
            AuthType::RequestBody
        };
        Ok(oauth2::Client::new(ClientId::new(self.app.client_id.clone()))
            .set_client_secret(ClientSecret::new(self.app.client_secret.expose().to_owned()))
            .set_auth_uri(AuthUrl::new(self.app.auth_url.clone()).map_err(|_| bad(&self.app.auth_url))?)
            .set_token_uri(TokenUrl::new(self.app.token_url.clone()).map_err(|_| bad(&self.app.token_url))?)
            .set_redirect_uri(RedirectUrl::new(self.redirect_uri.clone()).map_err(|_| bad(&self.redirect_uri))?)
            .set_auth_type(auth_type))
    }

    /// The URL that sends the user to the provider's consent page.
    pub fn authorize_url(&self, state: &str, pkce: Option<&Pkce>) -> Result<String, OAuthError> {
        let client = self.client()?;
        let state = state.to_owned();
        let mut request = client
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(self.app.scopes.iter().cloned().map(Scope::new));
        if let Some(pkce) = pkce {
            request = request.set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
                pkce.verifier.expose().to_owned(),
            )));
        }
        Ok(request.url().0.to_string())
    }

    /// Exchanges an authorization code for tokens.
    pub async fn exchange_code(&self, code: &str, pkce_verifier: Option<&Secret>) -> Result<TokenSet, OAuthError> {
        let client = self.client()?;
        let call = TokenCall::new(&self.http, self.provider());
        let http = call.client();
        let mut request = client.exchange_code(AuthorizationCode::new(code.to_owned()));
        if let Some(verifier) = pkce_verifier {
            request = request.set_pkce_verifier(PkceCodeVerifier::new(verifier.expose().to_owned()));
        }
        let result = request.request_async(&http).await;
        self.token_set(result, &call)
    }

    /// Uses a refresh token.
    pub async fn refresh(&self, refresh_token: &Secret) -> Result<TokenSet, OAuthError> {
        let client = self.client()?;
        let call = TokenCall::new(&self.http, self.provider());
        let http = call.client();
        let token = RefreshToken::new(refresh_token.expose().to_owned());
        let result = client.exchange_refresh_token(&token).request_async(&http).await;
        self.token_set(result, &call)
    }

    fn token_set(
        &self,
        result: Result<ProviderTokenResponse, RequestTokenError<reqwest::Error, BasicErrorResponse>>,
        call: &TokenCall,
    ) -> Result<TokenSet, OAuthError> {
        let response = result.map_err(|error| classify(self.provider(), call.status(), error))?;
        let access_token = Secret::new(response.access_token().secret().clone());
        let expires_at = match self.provider() {
            Provider::Jobber => {
                jwt::expiry(access_token.expose()).and_then(|exp| jiff::Timestamp::from_second(exp).ok())
            }
            _ => response
                .expires_in()
                .and_then(|lifetime| jiff::SignedDuration::try_from(lifetime).ok())
                .map(|lifetime| jiff::Timestamp::now() + lifetime),
        };
        let extra = response.extra_fields();
        Ok(TokenSet {
            access_token,
            refresh_token: response.refresh_token().map(|t| Secret::new(t.secret().clone())),
            expires_at,
            api_base_url: extra.api_domain.clone().or_else(|| extra.instance_url.clone()),
            identity_url: extra.id.clone(),
        })
    }

    /// Revokes the grant where the provider has an endpoint for it; returns whether the
    /// provider confirmed.
    pub async fn revoke(&self, refresh_token: Option<&Secret>, access_token: &Secret) -> Result<bool, OAuthError> {
        let provider = self.provider();
        // Without the URL: HubSpot's revoke URL carries the refresh token.
        let transient = |error: reqwest::Error| OAuthError::Transient {
            provider,
            reason: error.without_url().to_string(),
        };
        let request = match (provider, refresh_token) {
            (Provider::Hubspot, Some(refresh)) => self.http.delete(format!(
                "{}/{}",
                self.app.revoke_url.trim_end_matches('/'),
                refresh.expose()
            )),
            (Provider::Pipedrive, Some(refresh)) => self
                .http
                .post(&self.app.revoke_url)
                .basic_auth(&self.app.client_id, Some(self.app.client_secret.expose()))
                .form(&[("token", refresh.expose()), ("token_type_hint", "refresh_token")]),
            (Provider::Salesforce, token) => {
                let token = token.unwrap_or(access_token);
                self.http.post(&self.app.revoke_url).form(&[("token", token.expose())])
            }
            (Provider::Jobber, _) => self
                .http
                .post(&self.app.revoke_url)
                .bearer_auth(access_token.expose())
                .header("X-JOBBER-GRAPHQL-VERSION", super::identity::JOBBER_GRAPHQL_VERSION)
                .json(
                    &serde_json::json!({ "query": "mutation { appDisconnect { app { id } userErrors { message } } }" }),
                ),
            (Provider::Hubspot | Provider::Pipedrive, None) => return Ok(false),
        };
        let response = request.send().await.map_err(transient)?;
        Ok(response.status().is_success())
    }
}

/// Sorts a failed token call into revoked / transient / protocol.
fn classify(
    provider: Provider,
    status: Option<u16>,
    error: RequestTokenError<reqwest::Error, BasicErrorResponse>,
) -> OAuthError {
    let transient_status = status.is_some_and(|s| s >= 500 || s == 429);
    match error {
        RequestTokenError::Request(error) => OAuthError::Transient {
            provider,
            reason: error.without_url().to_string(),
        },
        _ if transient_status => OAuthError::Transient {
            provider,
            reason: format!("HTTP {}", status.unwrap_or_default()),
        },
        RequestTokenError::ServerResponse(response) => {
            let code = response.error().as_ref().to_owned();
            let reason = match response.error_description() {
                Some(description) => format!("{code}: {description}"),
                None => code.clone(),
            };
            // Jobber answers a reused or revoked refresh token with a 4xx whose error code is
            // not documented; any 4xx from its token endpoint means "reconnect".
            if *response.error() == BasicErrorResponseType::InvalidGrant || provider == Provider::Jobber {
                OAuthError::Revoked { provider, reason }
            } else {
                OAuthError::Protocol { provider, reason }
            }
        }
        RequestTokenError::Parse(_, body) => {
            let text = String::from_utf8_lossy(&body);
            let revoked = text.contains("BAD_REFRESH_TOKEN")
                || text.contains("invalid_grant")
                || (provider == Provider::Jobber && status.is_some_and(|s| (400..500).contains(&s)));
            let reason = short_reason(&text, status);
            if revoked {
                OAuthError::Revoked { provider, reason }
            } else {
                OAuthError::Protocol { provider, reason }
            }
        }
        RequestTokenError::Other(message) => OAuthError::Protocol {
            provider,
            reason: message,
        },
    }
}

/// The provider's own status/message fields when present, else the HTTP status.
fn short_reason(body: &str, status: Option<u16>) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    match (field("status"), field("message")) {
        (Some(status), Some(message)) => format!("{status}: {message}"),
        (Some(status), None) => status,
        (None, Some(message)) => message,
        (None, None) => format!("HTTP {}", status.unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobber_answers_gain_a_token_type() {
        let fixed = with_bearer_token_type(br#"{"access_token":"a","refresh_token":"r"}"#.to_vec());
        let value: serde_json::Value = serde_json::from_slice(&fixed).unwrap();
        assert_eq!(value["token_type"], "bearer");
        let kept = with_bearer_token_type(br#"{"token_type":"Bearer"}"#.to_vec());
        assert_eq!(kept, br#"{"token_type":"Bearer"}"#.to_vec());
    }

    #[test]
    fn hubspot_bad_refresh_token_is_a_revoked_grant() {
        let body =
            br#"{"status":"BAD_REFRESH_TOKEN","message":"missing or unknown refresh token","correlationId":"x"}"#;
        let path_error =
            serde_path_to_error::deserialize::<_, BasicErrorResponse>(&mut serde_json::Deserializer::from_slice(body))
                .unwrap_err();
        let error = classify(
            Provider::Hubspot,
            Some(400),
            RequestTokenError::Parse(path_error, body.to_vec()),
        );
        assert!(
            matches!(&error, OAuthError::Revoked { reason, .. } if reason.starts_with("BAD_REFRESH_TOKEN")),
            "{error:?}"
        );
    }
}
