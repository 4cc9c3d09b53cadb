//! JSON views of API messages: the stable, machine-readable shape `-o json` prints.

use fluxcascade::pb;
use serde_json::{Value, json};

/// `ROLE_OWNER` → `owner`, and the like for every proto enum.
fn enum_name(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_lowercase()
}

pub fn role(value: i32) -> String {
    let role = pb::Role::try_from(value).unwrap_or(pb::Role::Unspecified);
    enum_name(role.as_str_name(), "ROLE_")
}

pub fn status(status: &pb::GetStatusResponse) -> Value {
    let actors = status.live_actors.unwrap_or_default();
    json!({
        "version": status.version,
        "uptime_seconds": status.uptime_seconds,
        "started_at": status.started_at,
        "organization_id": status.organization_id,
        "schema_version": status.schema_version,
        "connections": status.connections,
        "mappings": status.mappings,
        "webhook_endpoints": status.webhook_endpoints,
        "live_actors": {
            "connections": actors.connections,
            "mappings": actors.mappings,
            "webhook_endpoints": actors.webhook_endpoints,
            "total": actors.total,
        },
    })
}

pub fn organization(org: &pb::Organization) -> Value {
    json!({ "id": org.id, "name": org.name, "created_at": org.created_at })
}

pub fn member(member: &pb::Member) -> Value {
    json!({ "id": member.id, "email": member.email, "role": role(member.role), "created_at": member.created_at })
}

pub fn api_token(token: &pb::ApiToken) -> Value {
    json!({
        "id": token.id,
        "name": token.name,
        "member_id": token.member_id,
        "role": role(token.role),
        "created_at": token.created_at,
    })
}

pub fn webhook_endpoint(endpoint: &pb::WebhookEndpoint) -> Value {
    json!({
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types,
        "enabled": endpoint.enabled,
        "disabled_reason": (!endpoint.disabled_reason.is_empty()).then_some(&endpoint.disabled_reason),
        "consecutive_failures": endpoint.consecutive_failures,
        "failure_threshold": endpoint.failure_threshold,
        "retry_schedule_seconds": endpoint.retry_schedule_seconds,
        "ordered": endpoint.ordered,
        "max_concurrency": endpoint.max_concurrency,
        "timeout_seconds": endpoint.timeout_seconds,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    })
}

pub fn delivery_status(value: i32) -> String {
    let status = pb::DeliveryStatus::try_from(value).unwrap_or(pb::DeliveryStatus::Unspecified);
    enum_name(status.as_str_name(), "DELIVERY_STATUS_")
}

pub fn webhook_delivery(delivery: &pb::WebhookDelivery) -> Value {
    let attempts: Vec<Value> = delivery
        .attempts
        .iter()
        .map(|a| {
            json!({
                "number": a.number,
                "at": a.at,
                "status_code": (a.status_code != 0).then_some(a.status_code),
                "latency_ms": a.latency_ms,
                "error": (!a.error.is_empty()).then_some(&a.error),
                "response_body": a.response_body,
            })
        })
        .collect();
    json!({
        "id": delivery.id,
        "endpoint_id": delivery.endpoint_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "status": delivery_status(delivery.status),
        "created_at": delivery.created_at,
        "next_attempt_at": (!delivery.next_attempt_at.is_empty()).then_some(&delivery.next_attempt_at),
        "attempt_count": attempts.len(),
        "last_status_code": delivery.attempts.last().map(|a| a.status_code).filter(|c| *c != 0),
        "attempts": attempts,
    })
}

pub fn provider(value: i32) -> String {
    let provider = pb::Provider::try_from(value).unwrap_or(pb::Provider::Unspecified);
    enum_name(provider.as_str_name(), "PROVIDER_")
}

fn optional(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

pub fn connection(connection: &pb::Connection) -> Value {
    let status = pb::ConnectionStatus::try_from(connection.status).unwrap_or(pb::ConnectionStatus::Unspecified);
    json!({
        "id": connection.id,
        "provider": provider(connection.provider),
        "status": enum_name(status.as_str_name(), "CONNECTION_STATUS_"),
        "account_name": connection.account_name,
        "created_at": connection.created_at,
        "updated_at": connection.updated_at,
        "token_expires_at": optional(&connection.token_expires_at),
        "last_refreshed_at": optional(&connection.last_refreshed_at),
        "last_error": optional(&connection.last_error),
    })
}

pub fn connection_webhooks(webhooks: &pb::ConnectionWebhooks) -> Value {
    let mut value = json!({
        "connection_id": webhooks.connection_id,
        "provider": provider(webhooks.provider),
        "url": webhooks.url,
        "app_url": optional(&webhooks.app_url),
        "instructions": webhooks.instructions,
    });
    if !webhooks.basic_auth_user.is_empty() {
        value["basic_auth_user"] = webhooks.basic_auth_user.clone().into();
        value["basic_auth_password"] = webhooks.basic_auth_password.clone().into();
        value["subscriptions"] = webhooks
            .subscriptions
            .iter()
            .map(|s| json!({ "id": s.id, "event": s.event }))
            .collect();
    }
    value
}

pub fn sync_job(job: &pb::SyncJob) -> Value {
    let status = pb::SyncStatus::try_from(job.status).unwrap_or(pb::SyncStatus::Unspecified);
    let stats = job.stats.unwrap_or_default();
    json!({
        "id": job.id,
        "mapping_id": job.mapping_id,
        "status": enum_name(status.as_str_name(), "SYNC_STATUS_"),
        "stats": {
            "fetched": stats.fetched,
            "created": stats.created,
            "updated": stats.updated,
            "failed": stats.failed,
            "skipped": stats.skipped,
            "unchanged": stats.unchanged,
        },
        "total_estimate": (job.total_estimate > 0).then_some(job.total_estimate),
        "full": job.full,
        "trigger": enum_name(
            pb::SyncTrigger::try_from(job.trigger)
                .unwrap_or(pb::SyncTrigger::Unspecified)
                .as_str_name(),
            "SYNC_TRIGGER_",
        ),
        "created_at": job.created_at,
        "started_at": optional(&job.started_at),
        "finished_at": optional(&job.finished_at),
        "error": optional(&job.error),
    })
}
