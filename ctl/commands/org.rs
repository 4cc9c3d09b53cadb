//! `fluxctl org …`: the organization, members, roles and API tokens.

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

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Show the organization.
    Get,
    /// Rename the organization (owners only).
    Rename { name: String },
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
    },
    /// Revoke an API token.
    RevokeToken { token_id: String },
}

const MEMBER_COLUMNS: &[&str] = &["id", "email", "role", "createdAt"];
const TOKEN_COLUMNS: &[&str] = &["id", "name", "memberId", "role", "createdAt"];

pub async fn run(command: OrgCommand, target: &Target, format: Format) -> Result<(), ClientError> {
    let mut client = OrganizationServiceClient::new(target.connect().await?);
    match command {
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
        OrgCommand::CreateToken { name, member } => {
            let request = pb::CreateApiTokenRequest {
                name,
                member_id: member.unwrap_or_default(),
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
