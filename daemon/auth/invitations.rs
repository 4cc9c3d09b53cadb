//! Invitations: a single-use token that expires, given to a person out of band; accepting it
//! makes them a member and hands them their first API token. Only the token's hash is stored.

use super::Role;
use super::members::{self, MemberError};
use super::records::{ApiTokenRecord, InvitationRecord, MemberRecord};
use super::tokens::{self, NewToken};
use crate::crypto::Secret;
use crate::events::{now_rfc3339, rfc3339};
use crate::ids::{IdKind, new_id};
use crate::store::{IndexTable, OrgKind, Reader, StoreError, Tx};

/// Prefix of invitation tokens.
pub const INVITATION_PREFIX: &str = "fxi_";
/// Pending invitations an organization may have.
pub const MAX_PENDING: usize = 1000;

/// Why an invitation cannot be made or accepted.
#[derive(Debug, thiserror::Error)]
pub enum InvitationError {
    #[error("token: no such invitation (unknown, already accepted or revoked)")]
    Unknown,
    #[error("token: the invitation expired at {0}; ask for a new one")]
    Expired(String),
    #[error("the organization has {MAX_PENDING} pending invitations, the most it may have")]
    TooMany,
    #[error(transparent)]
    Member(#[from] MemberError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The pending invitations of `org_id`, oldest first.
pub fn of_org(rx: &impl Reader, org_id: &str) -> Result<Vec<InvitationRecord>, StoreError> {
    rx.org_records(OrgKind::Invitation, org_id, None, MAX_PENDING + 1)
}

/// Invites `email` to `org_id` with `role`, valid for `ttl`; returns the invitation and its
/// token. Expired invitations of the organization are dropped first.
pub fn invite(
    tx: &mut Tx<'_>,
    org_id: &str,
    email: &str,
    role: Role,
    invited_by: &str,
    ttl: jiff::SignedDuration,
) -> Result<(InvitationRecord, Secret), InvitationError> {
    let now = jiff::Timestamp::now();
    let mut pending = 0;
    for invitation in of_org(tx, org_id)? {
        if is_expired(&invitation, now) {
            remove(tx, &invitation)?;
        } else {
            pending += 1;
        }
    }
    if pending >= MAX_PENDING {
        return Err(InvitationError::TooMany);
    }
    if members::of_org(tx, org_id)?.iter().any(|m| m.email == email) {
        return Err(MemberError::AlreadyMember(email.to_owned()).into());
    }
    let token = tokens::generate_with(INVITATION_PREFIX);
    let invitation = InvitationRecord {
        id: new_id(IdKind::Invitation),
        org_id: org_id.to_owned(),
        email: email.to_owned(),
        role,
        hash: tokens::hash(token.expose()),
        invited_by: invited_by.to_owned(),
        created_at: now_rfc3339(),
        expires_at: rfc3339(now.saturating_add(ttl).unwrap_or(jiff::Timestamp::MAX)),
    };
    tx.put(&invitation)?;
    tx.index_org(OrgKind::Invitation, org_id, &invitation.id)?;
    tx.index_insert(IndexTable::InvitationTokens, &token_key(&invitation))?;
    Ok((invitation, token))
}

/// Accepts the invitation of `token`: removes it, adds the member and issues their token.
pub fn accept(tx: &mut Tx<'_>, token: &str) -> Result<(MemberRecord, ApiTokenRecord, Secret), InvitationError> {
    let prefix = format!("{}/", tokens::hash(token));
    let key = tx
        .index_keys(IndexTable::InvitationTokens, &prefix, 1)?
        .pop()
        .ok_or(InvitationError::Unknown)?;
    let invitation = tx
        .get::<InvitationRecord>(&key[prefix.len()..])?
        .ok_or(InvitationError::Unknown)?;
    remove(tx, &invitation)?;
    if is_expired(&invitation, jiff::Timestamp::now()) {
        return Err(InvitationError::Expired(invitation.expires_at));
    }
    let member = members::add(tx, &invitation.org_id, &invitation.email, invitation.role, None)?;
    let (record, secret) = tokens::issue(
        tx,
        NewToken {
            org_id: &invitation.org_id,
            member_id: &member.id,
            name: "accepted invitation",
            parent: None,
            operator: false,
            expires_at_ms: None,
        },
    )?;
    Ok((member, record, secret))
}

/// Removes `invitation` (revoked, accepted or expired).
pub fn remove(tx: &mut Tx<'_>, invitation: &InvitationRecord) -> Result<(), StoreError> {
    tx.remove::<InvitationRecord>(&invitation.id)?;
    tx.unindex_org(OrgKind::Invitation, &invitation.org_id, &invitation.id)?;
    tx.index_remove(IndexTable::InvitationTokens, &token_key(invitation))
}

fn token_key(invitation: &InvitationRecord) -> String {
    format!("{}/{}", invitation.hash, invitation.id)
}

fn is_expired(invitation: &InvitationRecord, now: jiff::Timestamp) -> bool {
    invitation
        .expires_at
        .parse::<jiff::Timestamp>()
        .is_ok_and(|at| at <= now)
}
