//! The console's pages, one module per section, and the routes to them.

mod connections;
mod mapping_editor;
mod mappings;
mod organization;
mod overview;
pub mod sign_in;
mod syncs;
mod webhooks;

use http::{Method, Response, StatusCode};
use maud::html;

use super::html::bare;
use super::respond;
use super::rpc::Failure;
use super::visit::{Answer, Visit};
use crate::body::Body;
use crate::pb;

/// The first path segment of every signed-in page (`""` is the overview): other paths are
/// not the console's, and answer 404 with or without a session.
pub const SECTION_ROOTS: [&str; 6] = ["", "connections", "mappings", "syncs", "endpoints", "organization"];

/// The page for a signed-in request.
pub async fn route(visit: &Visit<'_>) -> Answer {
    let post = visit.request.method == Method::POST;
    let segments = visit.request.segments();
    match (post, segments.as_slice()) {
        (false, []) => overview::show(visit).await,
        (false, ["connections"]) => connections::list(visit).await,
        (true, ["connections"]) => connections::connect(visit).await,
        (true, ["connections", id, "delete"]) => connections::delete(visit, id).await,
        (false, ["mappings"]) => mappings::list(visit).await,
        (false, ["mappings", "new"]) => mappings::new(visit).await,
        (true, ["mappings", "new"]) => mappings::submit_new(visit).await,
        (false, ["mappings", id]) => mappings::show(visit, id).await,
        (true, ["mappings", id]) => mappings::submit_edit(visit, id).await,
        (true, ["mappings", id, "delete"]) => mappings::delete(visit, id).await,
        (true, ["mappings", id, "run"]) => mappings::run(visit, id).await,
        (true, ["mappings", id, "active"]) => mappings::set_active(visit, id).await,
        (false, ["syncs"]) => syncs::list(visit).await,
        (false, ["syncs", id]) => syncs::show(visit, id).await,
        (false, ["syncs", id, "watch"]) => syncs::watch(visit, id).await,
        (true, ["syncs", id, "cancel"]) => syncs::cancel(visit, id).await,
        (false, ["endpoints"]) => webhooks::list(visit).await,
        (true, ["endpoints"]) => webhooks::create(visit).await,
        (true, ["endpoints", id, "delete"]) => webhooks::delete(visit, id).await,
        (false, ["endpoints", id]) => webhooks::show(visit, id).await,
        (true, ["endpoints", id, "recover"]) => webhooks::recover(visit, id).await,
        (true, ["endpoints", id, "enabled"]) => webhooks::set_enabled(visit, id).await,
        (false, ["endpoints", id, "secret"]) => webhooks::confirm_reveal(visit, id).await,
        (true, ["endpoints", id, "secret"]) => webhooks::reveal(visit, id).await,
        (true, ["endpoints", id, "deliveries", delivery, "redeliver"]) => {
            webhooks::redeliver(visit, id, delivery).await
        }
        (false, ["organization"]) => organization::show(visit).await,
        (true, ["organization", "invitations"]) => organization::invite(visit).await,
        (true, ["organization", "invitations", id, "revoke"]) => organization::revoke_invitation(visit, id).await,
        (true, ["organization", "members", id, "role"]) => organization::set_role(visit, id).await,
        (true, ["organization", "members", id, "remove"]) => organization::remove_member(visit, id).await,
        (true, ["organization", "tokens", id, "revoke"]) => organization::revoke_token(visit, id).await,
        _ => Err(Failure::NotFound("there is no such page".to_owned())),
    }
}

/// The page for a failed call.
pub fn failure_page(failure: &Failure) -> Response<Body> {
    let (status, title) = match failure {
        Failure::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
        Failure::Forbidden(_) => (StatusCode::FORBIDDEN, "Not allowed"),
        Failure::Invalid(_) => (StatusCode::BAD_REQUEST, "Not accepted"),
        Failure::Precondition { .. } => (StatusCode::CONFLICT, "Not now"),
        Failure::SignedOut => (StatusCode::UNAUTHORIZED, "Signed out"),
        Failure::Other(_) => (StatusCode::BAD_GATEWAY, "Something went wrong"),
    };
    respond::page(
        status,
        bare(
            title,
            html! {
                p role="alert" { (failure.to_string()) }
                p { a href="/" { "Back to the overview" } }
            },
        ),
    )
}

/// A provider's name.
pub fn provider_name(value: i32) -> &'static str {
    crate::api::convert::provider_from_pb(value).map_or("unknown", |provider| provider.display_name())
}

/// A connection's status as a word.
pub fn connection_status(value: i32) -> &'static str {
    match pb::ConnectionStatus::try_from(value) {
        Ok(pb::ConnectionStatus::Active) => "active",
        Ok(pb::ConnectionStatus::Expired) => "expired",
        Ok(pb::ConnectionStatus::Error) => "error",
        _ => "unknown",
    }
}

/// A sync's status as a word.
pub fn sync_status(value: i32) -> &'static str {
    match pb::SyncStatus::try_from(value) {
        Ok(pb::SyncStatus::Pending) => "pending",
        Ok(pb::SyncStatus::Running) => "running",
        Ok(pb::SyncStatus::Completed) => "completed",
        Ok(pb::SyncStatus::Partial) => "partial",
        Ok(pb::SyncStatus::Failed) => "failed",
        Ok(pb::SyncStatus::Cancelled) => "cancelled",
        Ok(pb::SyncStatus::Cancelling) => "cancelling",
        _ => "unknown",
    }
}

/// Every connection of the organization (at most a thousand), for names and pickers.
pub async fn all_connections(visit: &Visit<'_>) -> Result<Vec<pb::Connection>, Failure> {
    Ok(visit
        .api
        .connections()
        .list_connections(visit.api.call(pb::ListConnectionsRequest {
            page_size: 1000,
            page_token: String::new(),
        }))
        .await?
        .into_inner()
        .connections)
}

/// Every mapping of the organization (at most a thousand), for names.
pub async fn all_mappings(visit: &Visit<'_>) -> Result<Vec<pb::Mapping>, Failure> {
    Ok(visit
        .api
        .mappings()
        .list_mappings(visit.api.call(pb::ListMappingsRequest {
            page_size: 1000,
            page_token: String::new(),
        }))
        .await?
        .into_inner()
        .mappings)
}

/// Every webhook endpoint of the organization (at most a thousand).
pub async fn all_endpoints(visit: &Visit<'_>) -> Result<Vec<pb::WebhookEndpoint>, Failure> {
    Ok(visit
        .api
        .webhooks()
        .list_webhook_endpoints(visit.api.call(pb::ListWebhookEndpointsRequest {
            page_size: 1000,
            page_token: String::new(),
        }))
        .await?
        .into_inner()
        .endpoints)
}

/// `Provider · account` of connection `id`.
pub fn connection_label(connections: &[pb::Connection], id: &str) -> String {
    connections.iter().find(|c| c.id == id).map_or_else(
        || id.to_owned(),
        |c| format!("{} · {}", provider_name(c.provider), c.account_name),
    )
}

/// A fixed message for a `?done=` code a page redirected with (never text from the URL).
pub fn done_notice(visit: &Visit<'_>) -> Option<&'static str> {
    Some(match visit.request.query.get("done") {
        "connected" => "Connected.",
        "deleted" => "Deleted.",
        "saved" => "Saved.",
        "created" => "Created.",
        "cancelling" => "Cancelling: the sync stops at its next checkpoint.",
        "already-finished" => "The sync had already finished: nothing to cancel.",
        "redelivered" => "Queued for delivery again.",
        "recovered" => "Failed deliveries queued again.",
        "invited" => "Invitation created.",
        "revoked" => "Revoked.",
        "removed" => "Removed.",
        "enabled" => "Enabled.",
        "disabled" => "Disabled.",
        "activated" => "Activated: it runs on its schedule.",
        "deactivated" => "Deactivated: it runs only when started by hand.",
        _ => return None,
    })
}
