//! `OrganizationService`: the caller's organization, its members, roles and API tokens.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::Context;
use super::convert;
use super::pages::PageRequest;
use super::status::{invalid, not_found};
use crate::auth::records::{ApiTokenRecord, MemberRecord, OrganizationRecord};
use crate::auth::{Action, Caller, Role, tokens};
use crate::events::now_rfc3339;
use crate::ids::{IdKind, new_id};
use crate::pb::{self, organization_service_server::OrganizationService};
use crate::store::{Reader, Tx};

pub struct OrganizationApi {
    context: Arc<Context>,
}

impl OrganizationApi {
    pub fn new(context: Arc<Context>) -> Self {
        OrganizationApi { context }
    }
}

/// The member `id` of the caller's organization, or `NOT_FOUND`.
fn member_in_org(rx: &impl Reader, caller: &Caller, id: &str) -> Result<MemberRecord, Status> {
    rx.get::<MemberRecord>(id)?
        .filter(|m| m.org_id == caller.org_id)
        .ok_or_else(|| not_found("member", id))
}

/// Fails unless the organization keeps at least one owner other than `member`.
fn ensure_other_owner(tx: &Tx<'_>, member: &MemberRecord) -> Result<(), Status> {
    let owners = tx
        .list::<MemberRecord>()?
        .into_iter()
        .filter(|m| m.org_id == member.org_id && m.role == Role::Owner && m.id != member.id)
        .count();
    if owners == 0 {
        return Err(Status::failed_precondition(
            "the organization must keep at least one owner",
        ));
    }
    Ok(())
}

fn validate_email(email: &str) -> Result<String, Status> {
    let email = email.trim().to_lowercase();
    let valid = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if !valid {
        return Err(invalid("email", format!("{email:?} is not an email address")));
    }
    Ok(email)
}

#[tonic::async_trait]
impl OrganizationService for OrganizationApi {
    async fn get_organization(
        &self,
        request: Request<pb::GetOrganizationRequest>,
    ) -> Result<Response<pb::Organization>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::Read)?;
        let org = self
            .context
            .store
            .read(|rx| rx.get::<OrganizationRecord>(&caller.org_id).map_err(Status::from))?;
        let org = org.ok_or_else(|| not_found("organization", &caller.org_id))?;
        Ok(Response::new(convert::organization(&org)))
    }

    async fn rename_organization(
        &self,
        request: Request<pb::RenameOrganizationRequest>,
    ) -> Result<Response<pb::Organization>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::ManageOwners)?;
        let name = request.get_ref().name.trim().to_owned();
        if name.is_empty() || name.len() > 200 {
            return Err(invalid("name", "must be 1 to 200 characters"));
        }
        let org_id = caller.org_id.clone();
        let org = self
            .context
            .store
            .write(move |tx| {
                let mut org = tx
                    .get::<OrganizationRecord>(&org_id)?
                    .ok_or_else(|| not_found("organization", &org_id))?;
                org.name = name;
                tx.put(&org)?;
                Ok::<_, Status>(org)
            })
            .await?;
        Ok(Response::new(convert::organization(&org)))
    }

    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::Read)?;
        let body = request.get_ref();
        let page = PageRequest::parse(body.page_size, &body.page_token)?;
        let members = self
            .context
            .store
            .read(|rx| rx.list::<MemberRecord>().map_err(Status::from))?;
        let members: Vec<pb::Member> = members
            .iter()
            .filter(|m| m.org_id == caller.org_id)
            .map(convert::member)
            .collect();
        let (members, next_page_token) = page.of_slice(&members, |m| m.id.clone());
        Ok(Response::new(pb::ListMembersResponse {
            members,
            next_page_token,
        }))
    }

    async fn add_member(&self, request: Request<pb::AddMemberRequest>) -> Result<Response<pb::Member>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::ManageMembers)?;
        let body = request.get_ref();
        let email = validate_email(&body.email)?;
        let role = convert::role_from_pb(body.role).ok_or_else(|| invalid("role", "must be owner, admin or member"))?;
        if role == Role::Owner {
            caller.require(Action::ManageOwners)?;
        }
        let org_id = caller.org_id.clone();
        let member = self
            .context
            .store
            .write(move |tx| {
                if tx
                    .list::<MemberRecord>()?
                    .iter()
                    .any(|m| m.org_id == org_id && m.email == email)
                {
                    return Err(Status::already_exists(format!("email: {email:?} is already a member")));
                }
                let member = MemberRecord {
                    id: new_id(IdKind::Member),
                    org_id,
                    email,
                    role,
                    created_at: now_rfc3339(),
                };
                tx.put(&member)?;
                Ok(member)
            })
            .await?;
        Ok(Response::new(convert::member(&member)))
    }

    async fn set_member_role(
        &self,
        request: Request<pb::SetMemberRoleRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::ManageMembers)?;
        let body = request.get_ref();
        let role = convert::role_from_pb(body.role).ok_or_else(|| invalid("role", "must be owner, admin or member"))?;
        let (caller, member_id) = (caller.clone(), body.member_id.clone());
        let member = self
            .context
            .store
            .write(move |tx| {
                let mut member = member_in_org(tx, &caller, &member_id)?;
                if member.role == Role::Owner || role == Role::Owner {
                    caller.require(Action::ManageOwners)?;
                }
                if member.role == Role::Owner && role != Role::Owner {
                    ensure_other_owner(tx, &member)?;
                }
                member.role = role;
                tx.put(&member)?;
                Ok::<_, Status>(member)
            })
            .await?;
        Ok(Response::new(convert::member(&member)))
    }

    async fn remove_member(
        &self,
        request: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::RemoveMemberResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::ManageMembers)?;
        let id = request.get_ref().member_id.clone();
        let caller = caller.clone();
        self.context
            .store
            .write(move |tx| {
                let member = member_in_org(tx, &caller, &id)?;
                if member.role == Role::Owner {
                    caller.require(Action::ManageOwners)?;
                    ensure_other_owner(tx, &member)?;
                }
                for token in tx
                    .list::<ApiTokenRecord>()?
                    .into_iter()
                    .filter(|t| t.member_id == member.id)
                {
                    tokens::revoke(tx, &token.id)?;
                }
                tx.remove::<MemberRecord>(&member.id)?;
                Ok::<_, Status>(())
            })
            .await?;
        Ok(Response::new(pb::RemoveMemberResponse {}))
    }

    async fn create_api_token(
        &self,
        request: Request<pb::CreateApiTokenRequest>,
    ) -> Result<Response<pb::CreateApiTokenResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.get_ref();
        let name = body.name.trim().to_owned();
        if name.is_empty() || name.len() > 200 {
            return Err(invalid("name", "must be 1 to 200 characters"));
        }
        let member_id = if body.member_id.is_empty() {
            caller.member_id.clone()
        } else {
            body.member_id.clone()
        };
        if member_id != caller.member_id {
            caller.require(Action::ManageMembers)?;
        }
        let caller = caller.clone();
        let (record, role, token) = self
            .context
            .store
            .write(move |tx| {
                let member = member_in_org(tx, &caller, &member_id)?;
                if member.role == Role::Owner && member.id != caller.member_id {
                    caller.require(Action::ManageOwners)?;
                }
                let (record, token) = tokens::issue(tx, &caller.org_id, &member.id, &name)?;
                Ok::<_, Status>((record, member.role, token))
            })
            .await?;
        Ok(Response::new(pb::CreateApiTokenResponse {
            token: Some(convert::api_token(&record, role)),
            secret: token.expose().to_owned(),
        }))
    }

    async fn list_api_tokens(
        &self,
        request: Request<pb::ListApiTokensRequest>,
    ) -> Result<Response<pb::ListApiTokensResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::Read)?;
        let see_all = caller.role.allows(Action::ManageMembers);
        let body = request.get_ref();
        let page = PageRequest::parse(body.page_size, &body.page_token)?;
        let tokens = self.context.store.read(|rx| {
            let mut out = Vec::new();
            for token in rx.list::<ApiTokenRecord>()? {
                if token.org_id != caller.org_id || (!see_all && token.member_id != caller.member_id) {
                    continue;
                }
                let role = rx
                    .get::<MemberRecord>(&token.member_id)?
                    .map_or(Role::Member, |m| m.role);
                out.push(convert::api_token(&token, role));
            }
            Ok::<_, Status>(out)
        })?;
        let (tokens, next_page_token) = page.of_slice(&tokens, |t| t.id.clone());
        Ok(Response::new(pb::ListApiTokensResponse {
            tokens,
            next_page_token,
        }))
    }

    async fn revoke_api_token(
        &self,
        request: Request<pb::RevokeApiTokenRequest>,
    ) -> Result<Response<pb::RevokeApiTokenResponse>, Status> {
        let caller = Caller::of(&request)?;
        let id = request.get_ref().id.clone();
        let caller = caller.clone();
        self.context
            .store
            .write(move |tx| {
                let token = tx
                    .get::<ApiTokenRecord>(&id)?
                    .filter(|t| t.org_id == caller.org_id)
                    .ok_or_else(|| not_found("API token", &id))?;
                if token.member_id != caller.member_id {
                    caller.require(Action::ManageMembers)?;
                }
                tokens::revoke(tx, &token.id)?;
                Ok::<_, Status>(())
            })
            .await?;
        Ok(Response::new(pb::RevokeApiTokenResponse {}))
    }
}
