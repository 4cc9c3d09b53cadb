//! Connections: the organization's accounts, connecting one (the provider's consent page, then
//! back here), reconnecting an expired one, deleting one.

use http::StatusCode;
use maud::html;

use super::{all_connections, connection_status, done_notice, provider_name};
use crate::console::html::{Section, bare, csrf, notice, page, post_button, time};
use crate::console::respond;
use crate::console::rpc::Failure;
use crate::console::visit::{Answer, Visit};
use crate::pb;

const PROVIDERS: [pb::Provider; 4] = [
    pb::Provider::Hubspot,
    pb::Provider::Jobber,
    pb::Provider::Pipedrive,
    pb::Provider::Salesforce,
];

pub async fn list(visit: &Visit<'_>) -> Answer {
    let connections = all_connections(visit).await?;
    let may_connect = visit.who.may("ConnectionService/CreateConnection");
    let may_delete = visit.who.may("ConnectionService/DeleteConnection");
    let body = html! {
        @if let Some(done) = done_notice(visit) { (notice("success", done)) }
        @if may_connect {
            form method="post" action="/connections" class="row" {
                (csrf(visit))
                label for="provider" { "Connect" }
                select id="provider" name="provider" {
                    @for provider in PROVIDERS { option value=(provider.as_str_name()) { (provider_name(provider.into())) } }
                }
                button type="submit" { "Connect an account" }
            }
        }
        @if connections.is_empty() {
            p { "No connections yet." }
        } @else {
            div class="table" {
                table {
                    caption class="visually-hidden" { "Connections" }
                    thead { tr {
                        th scope="col" { "Account" } th scope="col" { "Provider" } th scope="col" { "Status" }
                        th scope="col" { "Token expires" } th scope="col" { "Last error" } th scope="col" { span class="visually-hidden" { "Actions" } }
                    } }
                    tbody {
                        @for connection in &connections {
                            tr id=(connection.id) {
                                td { (connection.account_name) br; small { code { (connection.id) } } }
                                td { (provider_name(connection.provider)) }
                                td { span class=(format!("badge {}", connection_status(connection.status))) { (connection_status(connection.status)) } }
                                td { (time(connection.token_expires_at.as_ref())) }
                                td { (connection.last_error) }
                                td class="actions" {
                                    @if may_connect {
                                        form method="post" action="/connections" class="inline" {
                                            (csrf(visit))
                                            input type="hidden" name="provider" value=(pb::Provider::try_from(connection.provider).unwrap_or_default().as_str_name());
                                            button type="submit" class="secondary" { "Reconnect" }
                                        }
                                    }
                                    @if may_delete {
                                        (post_button(visit, &format!("/connections/{}/delete", connection.id), "Delete", "danger",
                                            Some("Delete this connection? Mappings using it must be deleted first.")))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(respond::page(
        StatusCode::OK,
        page(visit, Section::Connections, "Connections", body),
    ))
}

/// Starts an authorization and sends the browser on to the provider's consent page (a link:
/// the console's form-action policy keeps form posts from redirecting to other sites).
pub async fn connect(visit: &Visit<'_>) -> Answer {
    let provider = pb::Provider::from_str_name(visit.request.form.get("provider"))
        .filter(|p| *p != pb::Provider::Unspecified)
        .ok_or_else(|| Failure::Invalid(vec![("provider".to_owned(), "choose a provider".to_owned())]))?;
    let started = visit
        .api
        .connections()
        .create_connection(visit.api.call(pb::CreateConnectionRequest {
            provider: provider.into(),
            scopes: Vec::new(),
            return_to_console: true,
        }))
        .await
        .map_err(Failure::from)?
        .into_inner();
    let name = provider_name(provider.into());
    Ok(respond::page(
        StatusCode::OK,
        bare(
            &format!("Connect {name}"),
            html! {
                p { (name) " asks you to sign in and allow FluxCascade to read and write your records. You come back here afterwards." }
                p { a class="button" id="consent" href=(started.authorize_url) { "Continue to " (name) } }
                p { a href="/connections" { "Cancel" } }
            },
        ),
    ))
}

pub async fn delete(visit: &Visit<'_>, id: &str) -> Answer {
    visit
        .api
        .connections()
        .delete_connection(visit.api.call(pb::DeleteConnectionRequest { id: id.to_owned() }))
        .await
        .map_err(Failure::from)?;
    Ok(respond::redirect("/connections?done=deleted"))
}
