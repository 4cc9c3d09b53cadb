//! `GET /oauth/callback`: where providers send the user back after consent.

use std::collections::HashMap;
use std::sync::Arc;

use super::authorize::{self, CallbackError};
use super::runtime::ConnectionRuntime;
use super::service::ConnectionError;
use crate::actors::SupervisedKind;

/// The status and a short HTML page for the browser.
pub struct CallbackPage {
    pub status: u16,
    pub html: String,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(status: u16, title: &str, message: &str) -> CallbackPage {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>FluxCascade: {t}</title></head>\
         <body><h1>{t}</h1><p>{m}</p></body></html>\n",
        t = escape(title),
        m = escape(message)
    );
    CallbackPage { status, html }
}

/// Completes the authorization named by the query's `state`.
pub async fn handle(runtime: &Arc<ConnectionRuntime>, query: &HashMap<String, String>) -> CallbackPage {
    let Some(state) = query.get("state").filter(|s| !s.is_empty()) else {
        return page(
            400,
            "Missing state",
            "The callback has no state parameter; start the connection again with fluxctl.",
        );
    };
    let provider_error = query.get("error").map(|error| match query.get("error_description") {
        Some(description) => format!("{error}: {description}"),
        None => error.clone(),
    });
    match authorize::complete(
        runtime,
        state,
        query.get("code").map(String::as_str),
        provider_error.as_deref(),
    )
    .await
    {
        Ok(record) => {
            runtime
                .directory
                .start_child(SupervisedKind::Connections, &record.org_id, &record.id);
            let message = format!(
                "{} account {} is connected as {}. You can close this window.",
                record.provider, record.account_name, record.id
            );
            page(200, "Connected", &message)
        }
        Err(error) => {
            tracing::warn!(%error, "OAuth callback refused");
            let status = match &error {
                CallbackError::UnknownState
                | CallbackError::Replayed
                | CallbackError::Expired
                | CallbackError::MissingCode => 400,
                CallbackError::Denied(_) => 403,
                CallbackError::Connection(ConnectionError::Store(_)) => 500,
                CallbackError::Connection(_) => 502,
            };
            page(status, "Not connected", &error.to_string())
        }
    }
}
