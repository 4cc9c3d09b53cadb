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
