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
    page_then(status, title, message, None, false)
}

/// The web console's Connections page, where connections started from it return.
const CONSOLE_CONNECTIONS: &str = "/connections";

/// A page that, with `next`, links back to the console there and, with `go`, moves the
/// browser there at once (a refresh from this page, not a redirect: the console's
/// SameSite=Strict cookie is sent on navigations a page of its own site starts, not on the
/// provider's redirect chain).
fn page_then(status: u16, title: &str, message: &str, next: Option<&str>, go: bool) -> CallbackPage {
    let (refresh, link) = match next {
        Some(url) => (
            if go {
                format!("<meta http-equiv=\"refresh\" content=\"0; url={u}\">", u = escape(url))
            } else {
                String::new()
            },
            format!("<p><a href=\"{u}\">Back to the console</a></p>", u = escape(url)),
        ),
        None => (String::new(), String::new()),
    };
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">{refresh}<title>FluxCascade: {t}</title></head>\
         <body><h1>{t}</h1><p>{m}</p>{link}</body></html>\n",
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
    let completion = authorize::complete(
        runtime,
        state,
        query.get("code").map(String::as_str),
        provider_error.as_deref(),
    )
    .await;
    match completion.result {
        Ok(record) if completion.return_to_console => {
            runtime
                .directory
                .start_child(SupervisedKind::Connections, &record.org_id, &record.id);
            let message = format!("{} account {} is connected.", record.provider, record.account_name);
            let next = format!("{CONSOLE_CONNECTIONS}?done=connected");
            page_then(200, "Connected", &message, Some(&next), true)
        }
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
            let back = completion.return_to_console.then_some(CONSOLE_CONNECTIONS);
            page_then(status, "Not connected", &error.to_string(), back, false)
        }
    }
}
