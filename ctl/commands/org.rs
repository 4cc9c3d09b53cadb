//! `fluxctl org …`: organizations, members, invitations, roles, API tokens and usage.

use clap::Subcommand;
use fluxcascade::pb::{self, organization_service_client::OrganizationServiceClient};

use crate::client::{ClientError, Target};
use crate::output::{self, Format};
use crate::pages::{self, PageArgs};
use crate::views;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    Owner,
    Admin,
    Member,
}

impl From<RoleArg> for pb::Role {
    fn from(role: RoleArg) -> pb::Role {
        match role {
            RoleArg::Owner => pb::Role::Owner,
            RoleArg::Admin => pb::Role::Admin,
            RoleArg::Member => pb::Role::Member,
        }
    }
}

/// Roles an invitation may give.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum InviteRoleArg {
    Admin,
    Member,
    /// Owners only.
    Owner,
}

impl From<InviteRoleArg> for pb::Role {
    fn from(role: InviteRoleArg) -> pb::Role {
        match role {
            InviteRoleArg::Owner => pb::Role::Owner,
            InviteRoleArg::Admin => pb::Role::Admin,
            InviteRoleArg::Member => pb::Role::Member,
        }
    }
}

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Create an organization; prints its id and an Owner API token (shown once).
    Create { name: String },
    /// List the organizations you are a member of.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show the organization of your token.
    Get,
    /// Rename the organization (owners only).
    Rename { name: String },
    /// Delete the organization with everything in it (owners only): connections are
    /// revoked at the providers, actors stopped, all its data removed.
    Delete {
        /// The organization's id, as a confirmation.
        id: String,
    },
    /// Invite a person; prints a single-use invitation token to give them.
    Invite {
        email: String,
        #[arg(long, value_enum, default_value = "member")]
        role: InviteRoleArg,
        /// Hours until the invitation expires [default: 168, at most 720].
        #[arg(long)]
        expires_in_hours: Option<i32>,
    },
    /// Accept an invitation; prints your API token (needs no token of your own).
    Accept { token: String },
    /// List pending invitations.
    Invitations {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Revoke a pending invitation.
    RevokeInvitation { invitation_id: String },
    /// What the organization used in a month: records synced, sync runs, webhook deliveries,
    /// inbound webhooks.
    Usage {
        /// YYYY-MM (UTC) [default: this month].
        #[arg(long)]
        month: Option<String>,
    },
    /// List members.
    Members {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Add a member.
    AddMember {
        email: String,
        #[arg(long, value_enum, default_value = "member")]
        role: RoleArg,
    },
    /// Change a member's role.
    SetRole {
        member_id: String,
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// Remove a member and revoke their tokens.
    RemoveMember { member_id: String },
    /// List API tokens.
    Tokens {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Issue an API token (printed once).
    CreateToken {
        #[arg(long)]
        name: String,
        /// Member the token acts as [default: you].
        #[arg(long)]
        member: Option<String>,
        /// Days after which the token stops working (at most 366) [default: never].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=366))]
        expires_in_days: Option<u32>,
    },
    /// Revoke an API token.
    RevokeToken { token_id: String },
}

const MEMBER_COLUMNS: &[&str] = &["id", "email", "role", "createdAt"];
const ORG_COLUMNS: &[&str] = &["id", "name", "role", "createdAt"];
const INVITATION_COLUMNS: &[&str] = &["id", "email", "role", "invitedBy", "expiresAt"];
const TOKEN_COLUMNS: &[&str] = &["id", "name", "memberId", "role", "createdAt", "expiresAt"];

pub async fn run(command: OrgCommand, target: &Target, format: Format) -> Result<(), ClientError> {
    if let OrgCommand::Accept { token } = command {
        let mut client = OrganizationServiceClient::new(target.connect_anonymous().await?);
        let accepted = client
            .accept_invitation(pb::AcceptInvitationRequest { token })
            .await?
            .into_inner();
        let value = serde_json::json!({
            "organization": accepted.organization.as_ref().map(views::organization),
            "member": accepted.member.as_ref().map(views::member),
            "token": accepted.token,
        });
        output::print(format, &value, &[]);
        return Ok(());
    }
    let mut client = OrganizationServiceClient::new(target.connect().await?);
    match command {
        OrgCommand::Accept { .. } => unreachable!("accepted above, without a token"),
        OrgCommand::Create { name } => {
            let created = client
                .create_organization(pb::CreateOrganizationRequest { name })
                .await?
                .into_inner();
            let mut value = created
                .organization
                .as_ref()
                .map(views::organization)
                .unwrap_or_default();
            value["owner"] = created.owner.as_ref().map(views::member).unwrap_or_default();
            value["token"] = created.token.into();
            output::print(format, &value, &[]);
        }
        OrgCommand::List { page } => {
            let orgs = pages::collect(page, |page_token, page_size| {
                let mut client = client.clone();
                async move {
                    let page = client
                        .list_organizations(pb::ListOrganizationsRequest { page_size, page_token })
                        .await?
                        .into_inner();
                    Ok((page.organizations, page.next_page_token))
                }
            })
            .await?;
            let value = serde_json::Value::Array(orgs.iter().map(views::organization).collect());
            output::print(format, &value, ORG_COLUMNS);
        }
        OrgCommand::Delete { id } => {
            let deleted = client
                .delete_organization(pb::DeleteOrganizationRequest { id: id.clone() })
                .await?
                .into_inner();
            let value = serde_json::json!({ "deleted": id, "grantsRevoked": deleted.grants_revoked });
            output::print(format, &value, &[]);
        }
        OrgCommand::Invite {
            email,
            role,
            expires_in_hours,
        } => {
            let request = pb::CreateInvitationRequest {
                email,
                role: pb::Role::from(role).into(),
                expires_in_hours: expires_in_hours.unwrap_or_default(),
            };
            let created = client.create_invitation(request).await?.into_inner();
            let mut value = created.invitation.as_ref().map(views::invitation).unwrap_or_default();
            value["token"] = created.token.into();
            output::print(format, &value, &[]);
        }
        OrgCommand::Invitations { page } => {
            let invitations = pages::collect(page, |page_token, page_size| {
                let mut client = client.clone();
                async move {
                    let page = client
                        .list_invitations(pb::ListInvitationsRequest { page_size, page_token })
                        .await?
                        .into_inner();
                    Ok((page.invitations, page.next_page_token))
                }
            })
            .await?;
            let value = serde_json::Value::Array(invitations.iter().map(views::invitation).collect());
            output::print(format, &value, INVITATION_COLUMNS);
        }
        OrgCommand::RevokeInvitation { invitation_id } => {
            client
                .revoke_invitation(pb::RevokeInvitationRequest {
                    id: invitation_id.clone(),
                })
                .await?;
            output::print(format, &serde_json::json!({ "revoked": invitation_id }), &[]);
        }
        OrgCommand::Usage { month } => {
            let usage = client
                .get_usage(pb::GetUsageRequest {
                    month: month.unwrap_or_default(),
                })
                .await?
                .into_inner();
            output::print(format, &views::usage(&usage), &[]);
        }
        OrgCommand::Get => {
            let org = client
                .get_organization(pb::GetOrganizationRequest {})
                .await?
                .into_inner();
            output::print(format, &views::organization(&org), &[]);
        }
        OrgCommand::Rename { name } => {
            let org = client
                .rename_organization(pb::RenameOrganizationRequest { name })
                .await?
                .into_inner();
            output::print(format, &views::organization(&org), &[]);
        }
        OrgCommand::Members { page } => {
            let members = pages::collect(page, |page_token, page_size| {
                let mut client = client.clone();
                async move {
                    let page = client
                        .list_members(pb::ListMembersRequest { page_size, page_token })
                        .await?
                        .into_inner();
                    Ok((page.members, page.next_page_token))
                }
            })
            .await?;
            let value = serde_json::Value::Array(members.iter().map(views::member).collect());
            output::print(format, &value, MEMBER_COLUMNS);
        }
        OrgCommand::AddMember { email, role } => {
            let role = pb::Role::from(role).into();
            let member = client
                .add_member(pb::AddMemberRequest { email, role })
                .await?
                .into_inner();
            output::print(format, &views::member(&member), &[]);
        }
        OrgCommand::SetRole { member_id, role } => {
            let role = pb::Role::from(role).into();
            let member = client
                .set_member_role(pb::SetMemberRoleRequest { member_id, role })
                .await?
                .into_inner();
            output::print(format, &views::member(&member), &[]);
        }
        OrgCommand::RemoveMember { member_id } => {
            client
                .remove_member(pb::RemoveMemberRequest {
                    member_id: member_id.clone(),
                })
                .await?;
            output::print(format, &serde_json::json!({ "removed": member_id }), &[]);
        }
        OrgCommand::Tokens { page } => {
            let tokens = pages::collect(page, |page_token, page_size| {
                let mut client = client.clone();
                async move {
                    let page = client
                        .list_api_tokens(pb::ListApiTokensRequest { page_size, page_token })
                        .await?
                        .into_inner();
                    Ok((page.tokens, page.next_page_token))
                }
            })
            .await?;
            let value = serde_json::Value::Array(tokens.iter().map(views::api_token).collect());
            output::print(format, &value, TOKEN_COLUMNS);
        }
        OrgCommand::CreateToken {
            name,
            member,
            expires_in_days,
        } => {
            let request = pb::CreateApiTokenRequest {
                name,
                member_id: member.unwrap_or_default(),
                expires_in_seconds: expires_in_days.map_or(0, |days| days * 24 * 3600),
            };
            let created = client.create_api_token(request).await?.into_inner();
            let mut value = created.token.as_ref().map(views::api_token).unwrap_or_default();
            value["secret"] = created.secret.into();
            output::print(format, &value, &[]);
        }
        OrgCommand::RevokeToken { token_id } => {
            client
                .revoke_api_token(pb::RevokeApiTokenRequest { id: token_id.clone() })
                .await?;
            output::print(format, &serde_json::json!({ "revoked": token_id }), &[]);
        }
    }
    Ok(())
}
