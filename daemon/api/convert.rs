//! Conversions between proto messages and domain records.

use crate::auth::Role;
use crate::auth::records::{ApiTokenRecord, MemberRecord, OrganizationRecord};
use crate::pb;

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

pub fn organization(record: &OrganizationRecord) -> pb::Organization {
    pb::Organization {
        id: record.id.clone(),
        name: record.name.clone(),
        created_at: record.created_at.clone(),
    }
}

pub fn member(record: &MemberRecord) -> pb::Member {
    pb::Member {
        id: record.id.clone(),
        email: record.email.clone(),
        role: role_to_pb(record.role).into(),
        created_at: record.created_at.clone(),
    }
}

pub fn api_token(record: &ApiTokenRecord, role: Role) -> pb::ApiToken {
    pb::ApiToken {
        id: record.id.clone(),
        name: record.name.clone(),
        member_id: record.member_id.clone(),
        role: role_to_pb(role).into(),
        created_at: record.created_at.clone(),
    }
}
