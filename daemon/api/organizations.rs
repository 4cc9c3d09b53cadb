//! `OrganizationService`: organizations (many per daemon), members, invitations, API tokens,
//! usage and the audit log. Which role may call what is the permission matrix's
//! ([`crate::auth::permissions`]); the checks here depend on the target (an owner's token, the
//! owner role, the last owner).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert;
use super::pages::PageRequest;
use super::status::{invalid, not_found, with_reason};
use super::{Context, audited};
use crate::actors::SupervisedKind;
use crate::auth::invitations::{self, InvitationError};
use crate::auth::members::{self, MemberError};
use crate::auth::records::{ApiTokenRecord, InvitationRecord, MemberRecord, OrganizationRecord};
use crate::auth::tokens::{self, NewToken};
use crate::auth::{Access, Caller, Role};
use crate::orgs::audit::{self, Entry};
use crate::orgs::lifecycle::{self, Founder, OrgError, all_ids};
use crate::orgs::usage;
use crate::pb::{self, organization_service_server::OrganizationService};
use crate::store::{OrgKind, Reader};

/// The longest token name.
const MAX_TOKEN_NAME: usize = 200;
/// The longest an expiring API token may live.
const MAX_TOKEN_LIFETIME_SECONDS: u32 = 366 * 24 * 3600;
/// Invitations last this long unless the request says otherwise.
const DEFAULT_INVITATION_HOURS: i64 = 7 * 24;
/// The longest an invitation may last.
const MAX_INVITATION_HOURS: i64 = 30 * 24;

pub struct OrganizationApi {
    context: Arc<Context>,
}

impl OrganizationApi {
    pub fn new(context: Arc<Context>) -> Self {
        OrganizationApi { context }
    }
}

impl From<MemberError> for Status {
    fn from(error: MemberError) -> Status {
        match error {
            MemberError::AlreadyMember(_) => {
                with_reason(tonic::Code::AlreadyExists, "ALREADY_MEMBER", error.to_string())
            }
            MemberError::TooMany => with_reason(tonic::Code::ResourceExhausted, "TOO_MANY_MEMBERS", error.to_string()),
            MemberError::LastOwner => with_reason(tonic::Code::FailedPrecondition, "LAST_OWNER", error.to_string()),
            MemberError::Store(error) => error.into(),
        }
    }
}

impl From<InvitationError> for Status {
    fn from(error: InvitationError) -> Status {
        match error {
            InvitationError::Unknown => not_found("invitation", "(token)"),
            InvitationError::Expired(_) => invalid("token", error.to_string().trim_start_matches("token: ")),
            InvitationError::TooMany => with_reason(
                tonic::Code::ResourceExhausted,
                "TOO_MANY_INVITATIONS",
                error.to_string(),
            ),
            InvitationError::Member(error) => error.into(),
            InvitationError::Store(error) => error.into(),
        }
    }
}

impl From<OrgError> for Status {
    fn from(error: OrgError) -> Status {
        match error {
            OrgError::BadName => invalid("name", error.to_string().trim_start_matches("name: ")),
            OrgError::TooMany => with_reason(
                tonic::Code::ResourceExhausted,
                "TOO_MANY_ORGANIZATIONS",
                error.to_string(),
            ),
            OrgError::HoldsOperator => with_reason(
                tonic::Code::FailedPrecondition,
                "HOLDS_OPERATOR_TOKEN",
                error.to_string(),
            ),
            OrgError::Member(error) => error.into(),
            OrgError::Connection(error) => error.into(),
            OrgError::Mapping(error) => error.into(),
            OrgError::Webhook(error) => error.into(),
            OrgError::Store(error) => error.into(),
        }
    }
}

/// The member `id` of the caller's organization, or `NOT_FOUND`.
fn member_in_org(rx: &impl Reader, caller: &Caller, id: &str) -> Result<MemberRecord, Status> {
    rx.get::<MemberRecord>(id)?
        .filter(|m| m.org_id == caller.org_id)
        .ok_or_else(|| not_found("member", id))
}

fn validate_email(email: &str) -> Result<String, Status> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_control() || c.is_whitespace())
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if !valid {
        let shown: String = email.chars().take(64).collect();
        return Err(invalid("email", format!("{shown:?} is not an email address")));
    }
    Ok(email)
}

fn role_of(value: i32) -> Result<Role, Status> {
    convert::role_from_pb(value).ok_or_else(|| invalid("role", "must be owner, admin or member"))
}

#[tonic::async_trait]
impl OrganizationService for OrganizationApi {
    async fn create_organization(
        &self,
        request: Request<pb::CreateOrganizationRequest>,
    ) -> Result<Response<pb::CreateOrganizationResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let name = request.into_inner().name;
        let created = self
            .context
            .store
            .write(move |tx| {
                let email = tx
                    .get::<MemberRecord>(&caller.member_id)?
                    .map(|m| m.email)
                    .unwrap_or_default();
                let founder = Founder {
                    email: &email,
                    principal: Some(&caller.principal),
                    parent_token: Some(&caller.token_id),
                    operator: false,
                };
                Ok::<_, Status>(lifecycle::create(tx, &name, founder)?)
            })
            .await?;
        tracing::info!(org_id = %created.org.id, "organization created");
        let response = pb::CreateOrganizationResponse {
            organization: Some(convert::organization(&created.org, Role::Owner)),
            owner: Some(convert::member(&created.owner)),
            token: created.secret.expose().to_owned(),
        };
        Ok(audited(response, &created.org.id))
    }

    async fn list_organizations(
        &self,
        request: Request<pb::ListOrganizationsRequest>,
    ) -> Result<Response<pb::ListOrganizationsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.get_ref();
        let page = PageRequest::parse(body.page_size, &body.page_token)?;
        let mut found = self
            .context
            .store
            .read(|rx| lifecycle::of_principal(rx, &caller.principal))?;
        found.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        let organizations: Vec<pb::Organization> = found
            .iter()
            .map(|(org, member)| convert::organization(org, member.role))
            .collect();
        let (organizations, next_page_token) = page.of_slice(&organizations, |o| o.id.clone());
        Ok(Response::new(pb::ListOrganizationsResponse {
            organizations,
            next_page_token,
        }))
    }

    async fn delete_organization(
        &self,
        request: Request<pb::DeleteOrganizationRequest>,
    ) -> Result<Response<pb::DeleteOrganizationResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let id = request.into_inner().id;
        if id != caller.org_id {
            return Err(invalid(
                "id",
                "must be the id of the caller's organization, as a confirmation",
            ));
        }
        let org = caller.org_id.clone();
        let held = self.context.store.read(|rx| {
            if tokens::of_org(rx, &org)?.iter().any(|t| t.operator) {
                return Err(Status::from(OrgError::HoldsOperator));
            }
            Ok((
                all_ids(rx, OrgKind::Connection, &org)?,
                all_ids(rx, OrgKind::Mapping, &org)?,
                all_ids(rx, OrgKind::WebhookEndpoint, &org)?,
            ))
        })?;
        let directory = &self.context.directory;
        for (kind, ids) in [
            (SupervisedKind::Mappings, &held.1),
            (SupervisedKind::WebhookEndpoints, &held.2),
            (SupervisedKind::Connections, &held.0),
        ] {
            for id in ids {
                directory.stop_child(kind, id).await;
            }
        }
        let deleted = self
            .context
            .store
            .write(move |tx| Ok::<_, Status>(lifecycle::delete_in(tx, &org)?))
            .await?;
        let mut grants_revoked = 0;
        for (record, access, refresh) in deleted.connections {
            let (Ok(oauth), Some(access)) = (self.context.connections.oauth(record.provider), access) else {
                continue;
            };
            match oauth.revoke(refresh.as_ref(), &access).await {
                Ok(true) => grants_revoked += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(connection_id = %record.id, %error, "could not revoke the grant at the provider")
                }
            }
        }
        tracing::info!(org_id = %caller.org_id, grants_revoked, "organization deleted");
        Ok(Response::new(pb::DeleteOrganizationResponse { grants_revoked }))
    }

    async fn get_organization(
        &self,
        request: Request<pb::GetOrganizationRequest>,
    ) -> Result<Response<pb::Organization>, Status> {
        let caller = Caller::of(&request)?;
        let org = self
            .context
            .store
            .read(|rx| rx.get::<OrganizationRecord>(&caller.org_id).map_err(Status::from))?;
        let org = org.ok_or_else(|| not_found("organization", &caller.org_id))?;
        Ok(Response::new(convert::organization(&org, caller.role)))
    }

    async fn rename_organization(
        &self,
        request: Request<pb::RenameOrganizationRequest>,
    ) -> Result<Response<pb::Organization>, Status> {
        let caller = Caller::of(&request)?.clone();
        let name = lifecycle::checked_name(&request.get_ref().name)?;
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
        Ok(audited(convert::organization(&org, caller.role), &org.id))
    }

    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.get_ref();
        let page = PageRequest::parse(body.page_size, &body.page_token)?;
        let members = self.context.store.read(|rx| {
            rx.org_records::<MemberRecord>(OrgKind::Member, &caller.org_id, page.after.as_deref(), page.fetch())
                .map_err(Status::from)
        })?;
        let (members, next_page_token) = page.finish(members, |m| m.id.clone());
        Ok(Response::new(pb::ListMembersResponse {
            members: members.iter().map(convert::member).collect(),
            next_page_token,
        }))
    }

    async fn add_member(&self, request: Request<pb::AddMemberRequest>) -> Result<Response<pb::Member>, Status> {
        let caller = Caller::of(&request)?.clone();
        let body = request.get_ref();
        let email = validate_email(&body.email)?;
        let role = role_of(body.role)?;
        if role == Role::Owner {
            caller.require(Access::Own)?;
        }
        let org_id = caller.org_id.clone();
        let member = self
            .context
            .store
            .write(move |tx| Ok::<_, Status>(members::add(tx, &org_id, &email, role, None)?))
            .await?;
        Ok(audited(convert::member(&member), &member.id))
    }

    async fn set_member_role(
        &self,
        request: Request<pb::SetMemberRoleRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let caller = Caller::of(&request)?.clone();
        let body = request.get_ref();
        let role = role_of(body.role)?;
        let member_id = body.member_id.clone();
        let member = self
            .context
            .store
            .write(move |tx| {
                let mut member = member_in_org(tx, &caller, &member_id)?;
                if member.role == Role::Owner || role == Role::Owner {
                    caller.require(Access::Own)?;
                }
                if member.role == Role::Owner && role != Role::Owner {
                    members::ensure_other_owner(tx, &member)?;
                }
                member.role = role;
                tx.put(&member)?;
                Ok::<_, Status>(member)
            })
            .await?;
        Ok(audited(convert::member(&member), &member.id))
    }

    async fn remove_member(
        &self,
        request: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::RemoveMemberResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let id = request.get_ref().member_id.clone();
        let audited_id = id.clone();
        self.context
            .store
            .write(move |tx| {
                let member = member_in_org(tx, &caller, &id)?;
                if member.role == Role::Owner {
                    caller.require(Access::Own)?;
                    members::ensure_other_owner(tx, &member)?;
                }
                members::remove(tx, &member)?;
                Ok::<_, Status>(())
            })
            .await?;
        Ok(audited(pb::RemoveMemberResponse {}, &audited_id))
    }

    async fn create_api_token(
        &self,
        request: Request<pb::CreateApiTokenRequest>,
    ) -> Result<Response<pb::CreateApiTokenResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let body = request.get_ref();
        let name = body.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > MAX_TOKEN_NAME || name.chars().any(char::is_control) {
            return Err(invalid(
                "name",
                format!("must be 1 to {MAX_TOKEN_NAME} printable characters"),
            ));
        }
        if body.expires_in_seconds > MAX_TOKEN_LIFETIME_SECONDS {
            return Err(invalid(
                "expires_in_seconds",
                format!(
                    "must be at most {MAX_TOKEN_LIFETIME_SECONDS} (366 days), or 0 for a token that does not expire"
                ),
            ));
        }
        let requested_expiry = (body.expires_in_seconds > 0)
            .then(|| self.context.store.clock().now_ms() + i64::from(body.expires_in_seconds) * 1000);
        let member_id = if body.member_id.is_empty() {
            caller.member_id.clone()
        } else {
            body.member_id.clone()
        };
        if member_id != caller.member_id {
            caller.require(Access::ManageMembers)?;
        }
        let (record, role, token) = self
            .context
            .store
            .write(move |tx| {
                let member = member_in_org(tx, &caller, &member_id)?;
                if member.role == Role::Owner && member.id != caller.member_id {
                    caller.require(Access::Own)?;
                }
                if tokens::of_org(tx, &caller.org_id)?.len() >= tokens::MAX_TOKENS {
                    return Err(with_reason(
                        tonic::Code::ResourceExhausted,
                        "TOO_MANY_TOKENS",
                        format!(
                            "the organization has {} API tokens, the most it may have",
                            tokens::MAX_TOKENS
                        ),
                    ));
                }
                // A token never outlives the token that minted it.
                let parent_expiry = tx
                    .get::<ApiTokenRecord>(&caller.token_id)?
                    .and_then(|parent| parent.expires_at_ms);
                let expires_at_ms = match (requested_expiry, parent_expiry) {
                    (Some(requested), Some(parent)) => Some(requested.min(parent)),
                    (requested, parent) => requested.or(parent),
                };
                let new = NewToken {
                    org_id: &caller.org_id,
                    member_id: &member.id,
                    name: &name,
                    parent: Some(&caller.token_id),
                    operator: false,
                    expires_at_ms,
                };
                let (record, token) = tokens::issue(tx, new)?;
                Ok::<_, Status>((record, member.role, token))
            })
            .await?;
        let response = pb::CreateApiTokenResponse {
            token: Some(convert::api_token(&record, role)),
            secret: token.expose().to_owned(),
        };
        Ok(audited(response, &record.id))
    }

    async fn list_api_tokens(
        &self,
        request: Request<pb::ListApiTokensRequest>,
    ) -> Result<Response<pb::ListApiTokensResponse>, Status> {
        let caller = Caller::of(&request)?;
        let see_all = caller.role.may(Access::ManageMembers);
        let body = request.get_ref();
        let page = PageRequest::parse(body.page_size, &body.page_token)?;
        let tokens = self.context.store.read(|rx| {
            let mut out = Vec::new();
            for token in tokens::of_org(rx, &caller.org_id)? {
                if !see_all && token.member_id != caller.member_id {
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
        let caller = Caller::of(&request)?.clone();
        let id = request.get_ref().id.clone();
        let audited_id = id.clone();
        self.context
            .store
            .write(move |tx| {
                let token = tx
                    .get::<ApiTokenRecord>(&id)?
                    .filter(|t| t.org_id == caller.org_id)
                    .ok_or_else(|| not_found("API token", &id))?;
                if token.member_id != caller.member_id {
                    caller.require(Access::ManageMembers)?;
                    let holder = tx.get::<MemberRecord>(&token.member_id)?;
                    if holder.is_some_and(|m| m.role == Role::Owner) {
                        caller.require(Access::Own)?;
                    }
                }
                tokens::revoke(tx, &token.id)?;
                Ok::<_, Status>(())
            })
            .await?;
        Ok(audited(pb::RevokeApiTokenResponse {}, &audited_id))
    }

    async fn create_invitation(
        &self,
        request: Request<pb::CreateInvitationRequest>,
    ) -> Result<Response<pb::CreateInvitationResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let body = request.get_ref();
        let email = validate_email(&body.email)?;
        let role = role_of(body.role)?;
        if role == Role::Owner {
            caller.require(Access::Own)?;
        }
        let hours = match i64::from(body.expires_in_hours) {
            0 => DEFAULT_INVITATION_HOURS,
            h if (1..=MAX_INVITATION_HOURS).contains(&h) => h,
            _ => {
                return Err(invalid(
                    "expires_in_hours",
                    format!("must be 1 to {MAX_INVITATION_HOURS}"),
                ));
            }
        };
        let ttl = jiff::SignedDuration::from_hours(hours);
        let (invitation, token) = self
            .context
            .store
            .write(move |tx| {
                Ok::<_, Status>(invitations::invite(
                    tx,
                    &caller.org_id,
                    &email,
                    role,
                    &caller.member_id,
                    ttl,
                )?)
            })
            .await?;
        let response = pb::CreateInvitationResponse {
            invitation: Some(convert::invitation(&invitation)),
            token: token.expose().to_owned(),
        };
        Ok(audited(response, &invitation.id))
    }

    async fn list_invitations(
        &self,
        request: Request<pb::ListInvitationsRequest>,
    ) -> Result<Response<pb::ListInvitationsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.get_ref();
        let page = PageRequest::parse(body.page_size, &body.page_token)?;
        let invitations = self.context.store.read(|rx| {
            rx.org_records::<InvitationRecord>(OrgKind::Invitation, &caller.org_id, page.after.as_deref(), page.fetch())
                .map_err(Status::from)
        })?;
        let (invitations, next_page_token) = page.finish(invitations, |i| i.id.clone());
        Ok(Response::new(pb::ListInvitationsResponse {
            invitations: invitations.iter().map(convert::invitation).collect(),
            next_page_token,
        }))
    }

    async fn revoke_invitation(
        &self,
        request: Request<pb::RevokeInvitationRequest>,
    ) -> Result<Response<pb::RevokeInvitationResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let id = request.get_ref().id.clone();
        let audited_id = id.clone();
        self.context
            .store
            .write(move |tx| {
                let invitation = tx
                    .get::<InvitationRecord>(&id)?
                    .filter(|i| i.org_id == caller.org_id)
                    .ok_or_else(|| not_found("invitation", &id))?;
                invitations::remove(tx, &invitation)?;
                Ok::<_, Status>(())
            })
            .await?;
        Ok(audited(pb::RevokeInvitationResponse {}, &audited_id))
    }

    async fn accept_invitation(
        &self,
        request: Request<pb::AcceptInvitationRequest>,
    ) -> Result<Response<pb::AcceptInvitationResponse>, Status> {
        let peer = request.remote_addr().map(|addr| addr.to_string()).unwrap_or_default();
        let token = request.into_inner().token;
        let token = token.trim().to_owned();
        if token.is_empty() || token.len() > 200 {
            return Err(invalid("token", "give the invitation token you were sent"));
        }
        let (org, member, secret) = self
            .context
            .store
            .write(move |tx| {
                let (member, record, secret) = invitations::accept(tx, &token)?;
                let org = tx
                    .get::<OrganizationRecord>(&member.org_id)?
                    .ok_or_else(|| not_found("organization", &member.org_id))?;
                audit::append(
                    tx,
                    Entry {
                        org_id: org.id.clone(),
                        member_id: member.id.clone(),
                        token_id: record.id.clone(),
                        method: "/fluxcascade.v1.OrganizationService/AcceptInvitation".into(),
                        resource_id: member.id.clone(),
                        peer,
                        code: 0,
                    },
                )?;
                Ok::<_, Status>((org, member, secret))
            })
            .await?;
        Ok(Response::new(pb::AcceptInvitationResponse {
            organization: Some(convert::organization(&org, member.role)),
            member: Some(convert::member(&member)),
            token: secret.expose().to_owned(),
        }))
    }

    async fn get_usage(&self, request: Request<pb::GetUsageRequest>) -> Result<Response<pb::Usage>, Status> {
        let caller = Caller::of(&request)?;
        let month = request.get_ref().month.trim().to_owned();
        let month = if month.is_empty() {
            usage::month_of(jiff::Timestamp::now())
        } else {
            let valid = jiff::civil::Date::strptime("%Y-%m-%d", format!("{month}-01")).is_ok() && month.len() == 7;
            if !valid {
                return Err(invalid("month", "must be YYYY-MM, e.g. 2026-12"));
            }
            month
        };
        let record = self
            .context
            .store
            .read(|rx| usage::of_month(rx, &caller.org_id, &month))?;
        Ok(Response::new(convert::usage(&month, &record)))
    }

    async fn list_audit_entries(
        &self,
        request: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.get_ref();
        let page = PageRequest::parse(body.page_size, &body.page_token)?;
        let since = body
            .since
            .as_ref()
            .map(|at| convert::time_from_pb("since", at))
            .transpose()?;
        let member = body.member_id.trim();
        let filter = audit::Filter {
            since,
            member_id: (!member.is_empty()).then_some(member),
            before: page.after.as_deref(),
            limit: page.fetch(),
        };
        let entries = self.context.store.read(|rx| audit::list(rx, &caller.org_id, &filter))?;
        let (entries, next_page_token) = page.finish(entries, |e| e.id.clone());
        Ok(Response::new(pb::ListAuditEntriesResponse {
            entries: entries.iter().map(convert::audit_entry).collect(),
            next_page_token,
        }))
    }
}
