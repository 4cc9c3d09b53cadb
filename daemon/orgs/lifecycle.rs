//! An organization's life: created with its first owner and their token; deleted whole, in
//! one transaction, with every connection, mapping, endpoint, event, member, token,
//! invitation, usage month and audit entry it had.

use crate::auth::records::{ApiTokenRecord, MemberRecord, OrganizationRecord};
use crate::auth::tokens::{self, NewToken};
use crate::auth::{Role, invitations, members};
use crate::connections::service::{ConnectionError, Removed, remove_in};
use crate::crypto::Secret;
use crate::events::{EventRecord, now_rfc3339};
use crate::ids::{IdKind, new_id};
use crate::mappings::service::MappingError;
use crate::store::{IndexTable, OrgKind, Reader, StoreError, Tx};
use crate::webhooks::endpoints::WebhookError;

/// Organizations one daemon may hold.
pub const MAX_ORGANIZATIONS: u64 = 10_000;
/// The longest organization name.
pub const MAX_NAME: usize = 200;

/// Why an organization change is refused.
#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    #[error("name: must be 1 to {MAX_NAME} characters")]
    BadName,
    #[error("this daemon holds {MAX_ORGANIZATIONS} organizations, the most it may")]
    TooMany,
    #[error("the organization holding the operator token (admin.token) cannot be deleted")]
    HoldsOperator,
    #[error(transparent)]
    Member(#[from] members::MemberError),
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new organization with its owner and the owner's first token.
pub struct Created {
    pub org: OrganizationRecord,
    pub owner: MemberRecord,
    pub token: ApiTokenRecord,
    pub secret: Secret,
}

/// Who creates an organization (and becomes its owner).
pub struct Founder<'a> {
    pub email: &'a str,
    /// The person, when they are a member elsewhere already.
    pub principal: Option<&'a str>,
    /// The token that asks, whose revocation revokes the new owner token too.
    pub parent_token: Option<&'a str>,
    pub operator: bool,
}

/// The trimmed `name`, if it is one.
pub fn checked_name(name: &str) -> Result<String, OrgError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(OrgError::BadName);
    }
    Ok(name.to_owned())
}

/// Creates organization `name` owned by `founder`.
pub fn create(tx: &mut Tx<'_>, name: &str, founder: Founder<'_>) -> Result<Created, OrgError> {
    let name = checked_name(name)?;
    if tx.count::<OrganizationRecord>()? >= MAX_ORGANIZATIONS {
        return Err(OrgError::TooMany);
    }
    let org = OrganizationRecord {
        id: new_id(IdKind::Organization),
        name,
        created_at: now_rfc3339(),
    };
    tx.put(&org)?;
    let owner = members::add(tx, &org.id, founder.email, Role::Owner, founder.principal)?;
    let (token, secret) = tokens::issue(
        tx,
        NewToken {
            org_id: &org.id,
            member_id: &owner.id,
            name: if founder.operator {
                "admin (created on first start)"
            } else {
                "owner (created with the organization)"
            },
            parent: founder.parent_token,
            operator: founder.operator,
            expires_at_ms: None,
        },
    )?;
    Ok(Created {
        org,
        owner,
        token,
        secret,
    })
}

/// What deleting an organization removed that the provider side should hear of.
pub struct Deleted {
    pub connections: Vec<Removed>,
}

/// Deletes organization `org_id` and everything it holds, in `tx`. Its actors must be stopped
/// first; grants are revoked at the providers by the caller, after the commit.
pub fn delete_in(tx: &mut Tx<'_>, org_id: &str) -> Result<Deleted, OrgError> {
    if tokens::of_org(tx, org_id)?.iter().any(|t| t.operator) {
        return Err(OrgError::HoldsOperator);
    }
    for id in all_ids(tx, OrgKind::Mapping, org_id)? {
        crate::mappings::service::delete_in(tx, org_id, &id)?;
    }
    for id in all_ids(tx, OrgKind::WebhookEndpoint, org_id)? {
        crate::webhooks::endpoints::delete_in(tx, org_id, &id)?;
    }
    let mut connections = Vec::new();
    for id in all_ids(tx, OrgKind::Connection, org_id)? {
        connections.push(remove_in(tx, org_id, &id)?);
    }
    // After the deletions above, whose events go too.
    let prefix = format!("{org_id}/");
    for key in tx.index_keys(IndexTable::OrgEvents, &prefix, usize::MAX)? {
        tx.remove::<EventRecord>(&key[prefix.len()..])?;
        tx.index_remove(IndexTable::OrgEvents, &key)?;
    }
    for key in tx.index_keys(IndexTable::OrgJobs, &prefix, usize::MAX)? {
        tx.index_remove(IndexTable::OrgJobs, &key)?;
    }
    for invitation in invitations::of_org(tx, org_id)? {
        invitations::remove(tx, &invitation)?;
    }
    for member in members::of_org(tx, org_id)? {
        members::remove(tx, &member)?;
    }
    super::usage::forget(tx, org_id)?;
    super::audit::forget(tx, org_id)?;
    tx.remove::<OrganizationRecord>(org_id)?;
    Ok(Deleted { connections })
}

/// Every id of `org_id`'s entities of `kind`.
pub fn all_ids(rx: &impl Reader, kind: OrgKind, org_id: &str) -> Result<Vec<String>, StoreError> {
    rx.org_ids(kind, org_id, None, usize::MAX)
}

/// The organizations `principal` is a member of, with that member.
pub fn of_principal(rx: &impl Reader, principal: &str) -> Result<Vec<(OrganizationRecord, MemberRecord)>, StoreError> {
    let mut found = Vec::new();
    for member in members::of_principal(rx, principal)? {
        if let Some(org) = rx.get::<OrganizationRecord>(&member.org_id)? {
            found.push((org, member));
        }
    }
    Ok(found)
}
