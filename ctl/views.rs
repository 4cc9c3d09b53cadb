//! JSON views of API messages: the stable, machine-readable shape `-o json` prints. Keys are
//! lowerCamelCase, as in the proto3 JSON mapping, the webhook payloads and the mapping files;
//! enum values are the lowercase names flags accept; times are RFC 3339.

use fluxcascade::pb;
use fluxcascade::pb_time;
use serde_json::{Value, json};

/// `ROLE_OWNER` → `owner`, and the like for every proto enum.
fn enum_name(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_lowercase()
}

/// A wire time as RFC 3339 text, `null` when unset.
pub fn time(at: Option<&prost_types::Timestamp>) -> Value {
    pb_time::text(at).map_or(Value::Null, Value::String)
}

fn optional(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

pub fn role(value: i32) -> String {
    let role = pb::Role::try_from(value).unwrap_or(pb::Role::Unspecified);
    enum_name(role.as_str_name(), "ROLE_")
}

pub fn provider(value: i32) -> String {
    let provider = pb::Provider::try_from(value).unwrap_or(pb::Provider::Unspecified);
    enum_name(provider.as_str_name(), "PROVIDER_")
}

pub fn status(status: &pb::GetStatusResponse) -> Value {
    let actors = status.live_actors.unwrap_or_default();
    json!({
        "version": status.version,
        "uptimeSeconds": status.uptime_seconds,
        "startedAt": time(status.started_at.as_ref()),
        "organizationId": status.organization_id,
        "schemaVersion": status.schema_version,
        "storeError": optional(&status.store_error),
        "connections": status.connections,
        "mappings": status.mappings,
        "webhookEndpoints": status.webhook_endpoints,
        "liveActors": {
            "connections": actors.connections,
            "mappings": actors.mappings,
            "webhookEndpoints": actors.webhook_endpoints,
            "total": actors.total,
        },
    })
}

/// A cluster node; `answering` marks the node that answered the call.
pub fn cluster_node(node: &pb::ClusterNode, answering: &str) -> Value {
    json!({
        "nodeId": node.node_id,
        "grpcAddress": node.grpc_address,
        "httpAddress": node.http_address,
        "state": node.state,
        "leases": node.leases,
        "startedAt": time(node.started_at.as_ref()),
        "lastHeartbeat": time(node.last_heartbeat.as_ref()),
        "answering": node.node_id == answering,
    })
}

pub fn organization(org: &pb::Organization) -> Value {
    json!({
        "id": org.id,
        "name": org.name,
        "role": role(org.role),
        "createdAt": time(org.created_at.as_ref()),
    })
}

pub fn invitation(invitation: &pb::Invitation) -> Value {
    json!({
        "id": invitation.id,
        "email": invitation.email,
        "role": role(invitation.role),
        "invitedBy": invitation.invited_by,
        "createdAt": time(invitation.created_at.as_ref()),
        "expiresAt": time(invitation.expires_at.as_ref()),
    })
}

pub fn usage(usage: &pb::Usage) -> Value {
    json!({
        "month": usage.month,
        "recordsCreated": usage.records_created,
        "recordsUpdated": usage.records_updated,
        "syncRuns": usage.sync_runs,
        "webhookDeliveries": usage.webhook_deliveries,
        "inboundWebhooks": usage.inbound_webhooks,
    })
}

pub fn audit_entry(entry: &pb::AuditEntry) -> Value {
    json!({
        "id": entry.id,
        "at": time(entry.at.as_ref()),
        "memberId": entry.member_id,
        "tokenId": entry.token_id,
        "method": entry.method,
        "resourceId": entry.resource_id,
        "peer": entry.peer,
        "code": entry.code,
    })
}

pub fn member(member: &pb::Member) -> Value {
    json!({
        "id": member.id,
        "email": member.email,
        "role": role(member.role),
        "createdAt": time(member.created_at.as_ref()),
    })
}

pub fn api_token(token: &pb::ApiToken) -> Value {
    json!({
        "id": token.id,
        "name": token.name,
        "memberId": token.member_id,
        "role": role(token.role),
        "createdAt": time(token.created_at.as_ref()),
        "expiresAt": time(token.expires_at.as_ref()),
    })
}

pub fn webhook_endpoint(endpoint: &pb::WebhookEndpoint) -> Value {
    json!({
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "eventTypes": endpoint.event_types,
        "enabled": endpoint.enabled,
        "disabledReason": optional(&endpoint.disabled_reason),
        "consecutiveFailures": endpoint.consecutive_failures,
        "failureThreshold": endpoint.failure_threshold,
        "retryScheduleSeconds": endpoint.retry_schedule_seconds,
        "ordered": endpoint.ordered,
        "maxConcurrency": endpoint.max_concurrency,
        "timeoutSeconds": endpoint.timeout_seconds,
        "createdAt": time(endpoint.created_at.as_ref()),
        "updatedAt": time(endpoint.updated_at.as_ref()),
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
                "at": time(a.at.as_ref()),
                "statusCode": (a.status_code != 0).then_some(a.status_code),
                "latencyMs": a.latency_ms,
                "error": optional(&a.error),
                "responseBody": a.response_body,
            })
        })
        .collect();
    json!({
        "id": delivery.id,
        "endpointId": delivery.endpoint_id,
        "eventId": delivery.event_id,
        "eventType": delivery.event_type,
        "status": delivery_status(delivery.status),
        "createdAt": time(delivery.created_at.as_ref()),
        "nextAttemptAt": time(delivery.next_attempt_at.as_ref()),
        "attemptCount": attempts.len(),
        "lastStatusCode": delivery.attempts.last().map(|a| a.status_code).filter(|c| *c != 0),
        "attempts": attempts,
    })
}

pub fn connection(connection: &pb::Connection) -> Value {
    let status = pb::ConnectionStatus::try_from(connection.status).unwrap_or(pb::ConnectionStatus::Unspecified);
    json!({
        "id": connection.id,
        "provider": provider(connection.provider),
        "status": enum_name(status.as_str_name(), "CONNECTION_STATUS_"),
        "accountName": connection.account_name,
        "createdAt": time(connection.created_at.as_ref()),
        "updatedAt": time(connection.updated_at.as_ref()),
        "tokenExpiresAt": time(connection.token_expires_at.as_ref()),
        "lastRefreshedAt": time(connection.last_refreshed_at.as_ref()),
        "lastError": optional(&connection.last_error),
    })
}

pub fn connection_webhooks(webhooks: &pb::ConnectionWebhooks) -> Value {
    let mut value = json!({
        "connectionId": webhooks.connection_id,
        "provider": provider(webhooks.provider),
        "url": webhooks.url,
        "appUrl": optional(&webhooks.app_url),
        "instructions": webhooks.instructions,
    });
    if !webhooks.basic_auth_user.is_empty() {
        value["basicAuthUser"] = webhooks.basic_auth_user.clone().into();
        value["basicAuthPassword"] = webhooks.basic_auth_password.clone().into();
        value["subscriptions"] = webhooks
            .subscriptions
            .iter()
            .map(|s| json!({ "id": s.id, "event": s.event }))
            .collect();
    }
    value
}

pub fn sync_status(value: i32) -> String {
    let status = pb::SyncStatus::try_from(value).unwrap_or(pb::SyncStatus::Unspecified);
    enum_name(status.as_str_name(), "SYNC_STATUS_")
}

pub fn sync_job(job: &pb::SyncJob) -> Value {
    let stats = job.stats.unwrap_or_default();
    json!({
        "id": job.id,
        "mappingId": job.mapping_id,
        "status": sync_status(job.status),
        "trigger": enum_name(
            pb::SyncTrigger::try_from(job.trigger)
                .unwrap_or(pb::SyncTrigger::Unspecified)
                .as_str_name(),
            "SYNC_TRIGGER_",
        ),
        "stats": {
            "fetched": stats.fetched,
            "created": stats.created,
            "updated": stats.updated,
            "failed": stats.failed,
            "skipped": stats.skipped,
            "unchanged": stats.unchanged,
            "warnings": stats.warnings,
            "conflicts": stats.conflicts,
            "filtered": stats.filtered,
        },
        "totalEstimate": (job.total_estimate > 0).then_some(job.total_estimate),
        "full": job.full,
        "createdAt": time(job.created_at.as_ref()),
        "startedAt": time(job.started_at.as_ref()),
        "finishedAt": time(job.finished_at.as_ref()),
        "error": optional(&job.error),
    })
}

pub fn event(event: &pb::Event) -> Value {
    json!({
        "id": event.id,
        "eventType": event.event_type,
        "timestamp": time(event.timestamp.as_ref()),
        "data": event.data.as_ref().map_or(Value::Null, struct_json),
    })
}

fn struct_json(value: &prost_types::Struct) -> Value {
    Value::Object(value.fields.iter().map(|(k, v)| (k.clone(), value_json(v))).collect())
}

fn value_json(value: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => (*b).into(),
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(*n)
            .map(|number| match number.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9e15 => Value::from(f as i64),
                _ => Value::Number(number),
            })
            .unwrap_or(Value::Null),
        Some(Kind::StringValue(s)) => s.clone().into(),
        Some(Kind::ListValue(list)) => Value::Array(list.values.iter().map(value_json).collect()),
        Some(Kind::StructValue(s)) => struct_json(s),
    }
}

/// Conflicts as rows, one per conflicting field.
pub fn conflict_rows(conflicts: &[pb::SyncConflict]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = conflicts
        .iter()
        .flat_map(|conflict| {
            conflict.fields.iter().map(move |field| {
                let policy = pb::ConflictPolicy::try_from(field.policy).unwrap_or(pb::ConflictPolicy::Unspecified);
                serde_json::json!({
                    "sourceId": conflict.source_id,
                    "targetId": conflict.target_id,
                    "direction": conflict.direction,
                    "field": field.field,
                    "sourceValue": field.source_value,
                    "targetValue": field.target_value,
                    "policy": policy.as_str_name().trim_start_matches("CONFLICT_POLICY_").to_lowercase(),
                    "winner": field.winner,
                    "sourceModifiedAt": pb_time::text(conflict.source_modified_at.as_ref()),
                    "targetModifiedAt": pb_time::text(conflict.target_modified_at.as_ref()),
                })
            })
        })
        .collect();
    serde_json::Value::Array(rows)
}
