//! "Who am I" for each provider: the account a token belongs to, for the connection's name.

use super::Provider;
use crate::crypto::Secret;

/// The GraphQL API version fluxd speaks to Jobber.
pub const JOBBER_GRAPHQL_VERSION: &str = "2025-04-16";

/// The account behind a token.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: String,
    pub name: String,
}

/// Why the account could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IdentityError {
    #[error("{0} rejected the access token")]
    Unauthorized(Provider),
    #[error("{provider} account lookup failed: {reason}")]
    Failed { provider: Provider, reason: String },
}

/// Looks up the account of `access_token`. `api_base` is the provider's API base (for
/// Pipedrive its `api_domain`, for Salesforce its `instance_url`).
pub async fn whoami(
    http: &reqwest::Client,
    provider: Provider,
    api_base: &str,
    access_token: &Secret,
) -> Result<Account, IdentityError> {
    let base = api_base.trim_end_matches('/');
    let request = match provider {
        Provider::Hubspot => http.get(format!("{base}/oauth/v1/access-tokens/{}", access_token.expose())),
        Provider::Jobber => http
            .post(format!("{base}/graphql"))
            .bearer_auth(access_token.expose())
            .header("X-JOBBER-GRAPHQL-VERSION", JOBBER_GRAPHQL_VERSION)
            .json(&serde_json::json!({ "query": "query { account { id name } }" })),
        Provider::Pipedrive => http
            .get(format!("{base}/api/v1/users/me"))
            .bearer_auth(access_token.expose()),
        Provider::Salesforce => http
            .get(format!("{base}/services/oauth2/userinfo"))
            .bearer_auth(access_token.expose()),
    };
    let failed = |reason: String| IdentityError::Failed { provider, reason };
    // Errors without their URL: HubSpot's lookup carries the token in the path.
    let response = request.send().await.map_err(|e| failed(e.without_url().to_string()))?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(IdentityError::Unauthorized(provider));
    }
    if !status.is_success() {
        return Err(failed(format!("HTTP {status}")));
    }
    let body: serde_json::Value = response.json().await.map_err(|e| failed(e.without_url().to_string()))?;
    // Not the body itself: HubSpot's answer echoes the token.
    parse_account(provider, &body).ok_or_else(|| failed("the answer has no account id and name".into()))
}

fn text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse_account(provider: Provider, body: &serde_json::Value) -> Option<Account> {
    match provider {
        Provider::Hubspot => Some(Account {
            id: text(&body["hub_id"])?,
            name: text(&body["hub_domain"])?,
        }),
        Provider::Jobber => {
            let account = &body["data"]["account"];
            Some(Account {
                id: text(&account["id"])?,
                name: text(&account["name"])?,
            })
        }
        Provider::Pipedrive => {
            let data = &body["data"];
            (body["success"] == true).then_some(())?;
            Some(Account {
                id: text(&data["company_id"])?,
                name: text(&data["company_name"])?,
            })
        }
        Provider::Salesforce => Some(Account {
            id: text(&body["organization_id"])?,
            name: text(&body["preferred_username"]).or_else(|| text(&body["name"]))?,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accounts_are_read_from_each_providers_answer() {
        let cases = [
            (
                Provider::Hubspot,
                json!({"hub_id": 62515, "hub_domain": "demo.hubspot.com", "user": "a@b.c"}),
                "62515",
                "demo.hubspot.com",
            ),
            (
                Provider::Jobber,
                json!({"data": {"account": {"id": "MQ==", "name": "Acme Plumbing"}}}),
                "MQ==",
                "Acme Plumbing",
            ),
            (
                Provider::Pipedrive,
                json!({"success": true, "data": {"company_id": 7, "company_name": "Acme"}}),
                "7",
                "Acme",
            ),
            (
                Provider::Salesforce,
                json!({"organization_id": "00D1", "preferred_username": "admin@acme.example"}),
                "00D1",
                "admin@acme.example",
            ),
        ];
        for (provider, body, id, name) in cases {
            let account = parse_account(provider, &body).unwrap();
            assert_eq!((account.id.as_str(), account.name.as_str()), (id, name), "{provider}");
        }
        assert_eq!(parse_account(Provider::Pipedrive, &json!({"success": false})), None);
    }
}
