//! Conversions between proto messages and domain records.

use tonic::Status;

use super::status::invalid;
use crate::pb_time;

use crate::auth::Role;
use crate::auth::records::{ApiTokenRecord, InvitationRecord, MemberRecord, OrganizationRecord};
use crate::orgs::audit::AuditRecord;
use crate::orgs::usage::UsageRecord;
use crate::pb;
use crate::providers::Provider;

pub fn role_to_pb(role: Role) -> pb::Role {
    match role {
        Role::Owner => pb::Role::Owner,
        Role::Admin => pb::Role::Admin,
        Role::Member => pb::Role::Member,
    }
}

/// The domain role of a proto enum value; `None` for unspecified or unknown values.
pub fn role_from_pb(value: i32) -> Option<Role> {
    match pb::Role::try_from(value).ok()? {
        pb::Role::Owner => Some(Role::Owner),
        pb::Role::Admin => Some(Role::Admin),
        pb::Role::Member => Some(Role::Member),
        pb::Role::Unspecified => None,
    }
}

/// A protobuf timestamp of request field `field` as jiff's.
pub fn time_from_pb(field: &str, at: &prost_types::Timestamp) -> Result<jiff::Timestamp, Status> {
    crate::pb_time::to_jiff(at).ok_or_else(|| super::status::invalid(field, "not a valid time"))
}

/// A JSON value as a protobuf `Value`.
pub fn json_to_pb(value: &serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(json_to_pb).collect(),
        }),
        serde_json::Value::Object(map) => Kind::StructValue(json_object_to_pb(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A JSON object as a protobuf `Struct`.
pub fn json_object_to_pb(map: &serde_json::Map<String, serde_json::Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map.iter().map(|(k, v)| (k.clone(), json_to_pb(v))).collect(),
    }
}

/// An organization as seen by a member with `role` in it.
pub fn organization(record: &OrganizationRecord, role: Role) -> pb::Organization {
    pb::Organization {
        id: record.id.clone(),
        name: record.name.clone(),
        created_at: pb_time::from_text(&record.created_at),
        role: role_to_pb(role).into(),
    }
}

pub fn invitation(record: &InvitationRecord) -> pb::Invitation {
    pb::Invitation {
        id: record.id.clone(),
        email: record.email.clone(),
        role: role_to_pb(record.role).into(),
        invited_by: record.invited_by.clone(),
        created_at: pb_time::from_text(&record.created_at),
        expires_at: pb_time::from_text(&record.expires_at),
    }
}

pub fn usage(month: &str, record: &UsageRecord) -> pb::Usage {
    pb::Usage {
        month: month.to_owned(),
        records_created: record.records_created,
        records_updated: record.records_updated,
        sync_runs: record.sync_runs,
        webhook_deliveries: record.webhook_deliveries,
        inbound_webhooks: record.inbound_webhooks,
    }
}

pub fn audit_entry(record: &AuditRecord) -> pb::AuditEntry {
    pb::AuditEntry {
        id: record.id.clone(),
        member_id: record.member_id.clone(),
        token_id: record.token_id.clone(),
        method: record.method.clone(),
        resource_id: record.resource_id.clone(),
        peer: record.peer.clone(),
        code: record.code,
        at: pb_time::from_text(&record.at),
    }
}

pub fn member(record: &MemberRecord) -> pb::Member {
    pb::Member {
        id: record.id.clone(),
        email: record.email.clone(),
        role: role_to_pb(record.role).into(),
        created_at: pb_time::from_text(&record.created_at),
    }
}

pub fn api_token(record: &ApiTokenRecord, role: Role) -> pb::ApiToken {
    pb::ApiToken {
        id: record.id.clone(),
        name: record.name.clone(),
        member_id: record.member_id.clone(),
        role: role_to_pb(role).into(),
        created_at: pb_time::from_text(&record.created_at),
        expires_at: record
            .expires_at_ms
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
            .map(pb_time::from_jiff),
    }
}

/// The domain provider of a proto enum value, or INVALID_ARGUMENT naming `provider`.
pub fn provider_from_pb(value: i32) -> Result<Provider, Status> {
    match pb::Provider::try_from(value) {
        Ok(pb::Provider::Hubspot) => Ok(Provider::Hubspot),
        Ok(pb::Provider::Jobber) => Ok(Provider::Jobber),
        Ok(pb::Provider::Pipedrive) => Ok(Provider::Pipedrive),
        Ok(pb::Provider::Salesforce) => Ok(Provider::Salesforce),
        _ => Err(invalid(
            "provider",
            "must be one of hubspot, jobber, pipedrive, salesforce",
        )),
    }
}

pub fn provider_to_pb(provider: Provider) -> pb::Provider {
    match provider {
        Provider::Hubspot => pb::Provider::Hubspot,
        Provider::Jobber => pb::Provider::Jobber,
        Provider::Pipedrive => pb::Provider::Pipedrive,
        Provider::Salesforce => pb::Provider::Salesforce,
    }
}
