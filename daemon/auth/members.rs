//! Members of an organization: adding one (email unique per organization, bounded), removing
//! one with all their tokens, and the owner rule (an organization always keeps an owner).

use super::Role;
use super::records::{ApiTokenRecord, MemberRecord};
use super::tokens;
use crate::events::now_rfc3339;
use crate::ids::{IdKind, new_id};
use crate::store::{IndexTable, OrgKind, Reader, StoreError, Tx};

/// Members an organization may have.
pub const MAX_MEMBERS: usize = 1000;

/// Why a member change is refused.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("email: {0:?} is already a member")]
    AlreadyMember(String),
    #[error("the organization has {MAX_MEMBERS} members, the most it may have")]
    TooMany,
    #[error("the organization must keep at least one owner")]
    LastOwner,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The key of `member` in [`IndexTable::PrincipalMembers`].
fn principal_key(member: &MemberRecord) -> String {
    format!("{}/{}", member.principal(), member.id)
}

/// Memberships one person may hold (one per organization they belong to).
pub const MAX_MEMBERSHIPS: usize = 10_000;

/// The memberships of the person `principal`, through the index (not a scan of every member).
pub fn of_principal(rx: &impl Reader, principal: &str) -> Result<Vec<MemberRecord>, StoreError> {
    let mut found = Vec::new();
    for key in rx.index_keys(IndexTable::PrincipalMembers, &format!("{principal}/"), MAX_MEMBERSHIPS)? {
        if let Some(member) = key
            .rsplit('/')
            .next()
            .map(|id| rx.get::<MemberRecord>(id))
            .transpose()?
            .flatten()
        {
            found.push(member);
        }
    }
    Ok(found)
}

/// Every member of `org_id` (at most [`MAX_MEMBERS`]).
pub fn of_org(rx: &impl Reader, org_id: &str) -> Result<Vec<MemberRecord>, StoreError> {
    rx.org_records(OrgKind::Member, org_id, None, MAX_MEMBERS + 1)
}

/// Adds `email` to `org_id` with `role`; `principal` links the member to a person who is
/// already a member elsewhere.
pub fn add(
    tx: &mut Tx<'_>,
    org_id: &str,
    email: &str,
    role: Role,
    principal: Option<&str>,
) -> Result<MemberRecord, MemberError> {
    let members = of_org(tx, org_id)?;
    if members.iter().any(|m| m.email == email) {
        return Err(MemberError::AlreadyMember(email.to_owned()));
    }
    if members.len() >= MAX_MEMBERS {
        return Err(MemberError::TooMany);
    }
    let id = new_id(IdKind::Member);
    let member = MemberRecord {
        principal_id: principal.map_or_else(|| id.clone(), str::to_owned),
        id,
        org_id: org_id.to_owned(),
        email: email.to_owned(),
        role,
        created_at: now_rfc3339(),
    };
    tx.put(&member)?;
    tx.index_org(OrgKind::Member, org_id, &member.id)?;
    tx.index_insert(IndexTable::PrincipalMembers, &principal_key(&member))?;
    Ok(member)
}

/// Fails unless `member`'s organization keeps an owner other than `member`.
pub fn ensure_other_owner(rx: &impl Reader, member: &MemberRecord) -> Result<(), MemberError> {
    let others = of_org(rx, &member.org_id)?
        .into_iter()
        .any(|m| m.role == Role::Owner && m.id != member.id);
    if others { Ok(()) } else { Err(MemberError::LastOwner) }
}

/// Removes `member` and revokes every token they hold.
pub fn remove(tx: &mut Tx<'_>, member: &MemberRecord) -> Result<(), StoreError> {
    let held: Vec<ApiTokenRecord> = tokens::of_org(tx, &member.org_id)?
        .into_iter()
        .filter(|t| t.member_id == member.id)
        .collect();
    for token in held {
        tokens::revoke(tx, &token.id)?;
    }
    tx.remove::<MemberRecord>(&member.id)?;
    tx.unindex_org(OrgKind::Member, &member.org_id, &member.id)?;
    tx.index_remove(IndexTable::PrincipalMembers, &principal_key(member))?;
    Ok(())
}
