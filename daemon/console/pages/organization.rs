//! The organization: members and their roles, invitations, API tokens, usage per month as a
//! chart, and the audit log.

use http::StatusCode;
use maud::html;

use super::done_notice;
use crate::console::chart::{Bar, bars};
use crate::console::html::{Section, csrf, notice, page, post_button, time};
use crate::console::respond;
use crate::console::rpc::Failure;
use crate::console::visit::{Answer, Visit};
use crate::pb;

/// Months the usage chart covers.
const USAGE_MONTHS: i16 = 6;
/// Audit entries shown per page.
const AUDIT_PAGE: i32 = 50;

const ROLES: [pb::Role; 3] = [pb::Role::Owner, pb::Role::Admin, pb::Role::Member];

fn role_name(value: i32) -> &'static str {
    crate::api::convert::role_from_pb(value).map_or("—", crate::auth::Role::as_str)
}

/// `YYYY-MM` of this month and the months before it, oldest first.
fn months() -> Vec<String> {
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
        .first_of_month();
    (0..USAGE_MONTHS)
        .rev()
        .filter_map(|back| today.checked_sub(jiff::Span::new().months(back)).ok())
        .map(|month| month.strftime("%Y-%m").to_string())
        .collect()
}

pub async fn show(visit: &Visit<'_>) -> Answer {
    let mut organizations = visit.api.organizations();
    let members = organizations
        .list_members(visit.api.call(pb::ListMembersRequest {
            page_size: 1000,
            page_token: String::new(),
        }))
        .await
        .map_err(Failure::from)?
        .into_inner()
        .members;
    let may_invite = visit.who.may("OrganizationService/CreateInvitation");
    let may_revoke_invitations = visit.who.may("OrganizationService/RevokeInvitation");
    let invitations = if visit.who.may("OrganizationService/ListInvitations") {
        organizations
            .list_invitations(visit.api.call(pb::ListInvitationsRequest {
                page_size: 1000,
                page_token: String::new(),
            }))
            .await
            .map_err(Failure::from)?
            .into_inner()
            .invitations
    } else {
        Vec::new()
    };
    let tokens = organizations
        .list_api_tokens(visit.api.call(pb::ListApiTokensRequest {
            page_size: 1000,
            page_token: String::new(),
        }))
        .await
        .map_err(Failure::from)?
        .into_inner()
        .tokens;
    let mut usage = Vec::new();
    for month in months() {
        let used = organizations
            .get_usage(visit.api.call(pb::GetUsageRequest { month: month.clone() }))
            .await
            .map_err(Failure::from)?
            .into_inner();
        usage.push(used);
    }
    let audit = if visit.who.may("OrganizationService/ListAuditEntries") {
        Some(
            organizations
                .list_audit_entries(visit.api.call(pb::ListAuditEntriesRequest {
                    page_size: AUDIT_PAGE,
                    page_token: visit.request.query.get("audit").to_owned(),
                    since: None,
                    member_id: String::new(),
                }))
                .await
                .map_err(Failure::from)?
                .into_inner(),
        )
    } else {
        None
    };
    let member_email = |id: &str| {
        members
            .iter()
            .find(|m| m.id == id)
            .map_or_else(|| id.to_owned(), |m| m.email.clone())
    };
    let written: Vec<Bar> = usage
        .iter()
        .map(|u| Bar {
            label: u.month.clone(),
            value: u.records_created + u.records_updated,
        })
        .collect();
    let deliveries: Vec<Bar> = usage
        .iter()
        .map(|u| Bar {
            label: u.month.clone(),
            value: u.webhook_deliveries,
        })
        .collect();
    // The signed-in member: the one the session's token acts as.
    let me = tokens
        .iter()
        .find(|t| t.id == visit.who.token_id)
        .map(|t| t.member_id.clone())
        .unwrap_or_default();
    let may_set_role = visit.who.may("OrganizationService/SetMemberRole");
    let may_remove = visit.who.may("OrganizationService/RemoveMember");
    // Anything about an owner (their role, their removal, their tokens, making one) needs the
    // owner role, which the API checks once it knows the member; the page asks the same.
    let owns = visit.who.may("OrganizationService/DeleteOrganization");
    let owner = i32::from(pb::Role::Owner);
    let roles: Vec<pb::Role> = ROLES
        .into_iter()
        .filter(|role| owns || *role != pb::Role::Owner)
        .collect();
    let body = html! {
        @if let Some(done) = done_notice(visit) { (notice("success", done)) }
        section aria-labelledby="members-heading" {
            h2 id="members-heading" { "Members" }
            div class="table" { table {
                thead { tr { th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Joined" } th scope="col" { span class="visually-hidden" { "Actions" } } } }
                tbody {
                    @for member in &members {
                        tr {
                            td { (member.email) @if member.id == me { " (you)" } }
                            td {
                                @if may_set_role && (owns || member.role != owner) {
                                    form method="post" action=(format!("/organization/members/{}/role", member.id)) class="inline" {
                                        (csrf(visit))
                                        select name="role" aria-label=(format!("Role of {}", member.email)) {
                                            @for role in &roles { option value=(role.as_str_name()) selected[i32::from(*role) == member.role] { (role_name((*role).into())) } }
                                        }
                                        button type="submit" class="secondary" { "Change" }
                                    }
                                } @else { (role_name(member.role)) }
                            }
                            td { (time(member.created_at.as_ref())) }
                            td class="actions" {
                                @if may_remove && member.id != me && (owns || member.role != owner) {
                                    (post_button(visit, &format!("/organization/members/{}/remove", member.id), "Remove", "danger", Some("Remove this member and revoke their tokens?")))
                                }
                            }
                        }
                    }
                }
            } }
        }
        @if may_invite || !invitations.is_empty() {
            section aria-labelledby="invitations-heading" {
                h2 id="invitations-heading" { "Invitations" }
                @if may_invite { form method="post" action="/organization/invitations" class="row" {
                    (csrf(visit))
                    label for="invite-email" { "Email" }
                    input id="invite-email" name="email" type="email" required;
                    label for="invite-role" { "Role" }
                    select id="invite-role" name="role" {
                        @for role in &roles { option value=(role.as_str_name()) selected[*role == pb::Role::Member] { (role_name((*role).into())) } }
                    }
                    button type="submit" { "Invite" }
                } }
                @if !invitations.is_empty() {
                    ul {
                        @for invitation in &invitations {
                            li {
                                (invitation.email) " as " (role_name(invitation.role)) ", expires " (time(invitation.expires_at.as_ref())) " "
                                @if may_revoke_invitations {
                                    (post_button(visit, &format!("/organization/invitations/{}/revoke", invitation.id), "Revoke", "secondary", None))
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="tokens-heading" {
            h2 id="tokens-heading" { "API tokens" }
            div class="table" { table {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Member" } th scope="col" { "Created" } th scope="col" { "Expires" } th scope="col" { span class="visually-hidden" { "Actions" } } } }
                tbody {
                    @for token in &tokens {
                        tr {
                            td { (token.name) @if token.id == visit.who.token_id { " (this session)" } }
                            td { (member_email(&token.member_id)) }
                            td { (time(token.created_at.as_ref())) }
                            td { (time(token.expires_at.as_ref())) }
                            td class="actions" {
                                @if token.id != visit.who.token_id
                                    && (token.member_id == me || (may_remove && (owns || token.role != owner))) {
                                    (post_button(visit, &format!("/organization/tokens/{}/revoke", token.id), "Revoke", "danger", Some("Revoke this token and every token made with it?")))
                                }
                            }
                        }
                    }
                }
            } }
        }
        section aria-labelledby="usage-heading" {
            h2 id="usage-heading" { "Usage" }
            (bars("Records written per month", "synced", &written))
            (bars("Webhook deliveries per month", "deliveries", &deliveries))
        }
        @if let Some(audit) = &audit {
            section aria-labelledby="audit-heading" {
                h2 id="audit-heading" { "Audit log" }
                div class="table" { table {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Call" } th scope="col" { "Resource" } th scope="col" { "From" } } }
                    tbody {
                        @for entry in &audit.entries {
                            tr {
                                td { (time(entry.at.as_ref())) }
                                td { (member_email(&entry.member_id)) }
                                td { code { (entry.method.rsplit('/').next().unwrap_or_default()) } }
                                td { code { (entry.resource_id) } }
                                td { (entry.peer) }
                            }
                        }
                    }
                } }
                @if !audit.next_page_token.is_empty() {
                    p { a href=(format!("/organization?audit={}", audit.next_page_token)) { "Older entries" } }
                }
            }
        }
    };
    Ok(respond::page(
        StatusCode::OK,
        page(visit, Section::Organization, &visit.who.org_name, body),
    ))
}

pub async fn invite(visit: &Visit<'_>) -> Answer {
    let form = &visit.request.form;
    let created = visit
        .api
        .organizations()
        .create_invitation(visit.api.call(pb::CreateInvitationRequest {
            email: form.get("email").to_owned(),
            role: pb::Role::from_str_name(form.get("role")).unwrap_or_default().into(),
            expires_in_hours: 0,
        }))
        .await
        .map_err(Failure::from)?
        .into_inner();
    let email = created.invitation.as_ref().map_or("", |i| i.email.as_str());
    let link = format!("{}/accept-invitation?token={}", visit.public_url, created.token);
    let body = html! {
        p { "Send " strong { (email) } " this link to the console (it is shown only now):" }
        pre class="secret" { code { a href=(link) { (link) } } }
        p { "Or the invitation token alone, for " code { "fluxctl org accept TOKEN" } ":" }
        pre class="secret" { code { (created.token) } }
        p { a href="/organization" { "Back to the organization" } }
    };
    Ok(respond::page(
        StatusCode::OK,
        page(visit, Section::Organization, "Invitation created", body),
    ))
}

pub async fn revoke_invitation(visit: &Visit<'_>, id: &str) -> Answer {
    visit
        .api
        .organizations()
        .revoke_invitation(visit.api.call(pb::RevokeInvitationRequest { id: id.to_owned() }))
        .await
        .map_err(Failure::from)?;
    Ok(respond::redirect("/organization?done=revoked"))
}

pub async fn set_role(visit: &Visit<'_>, id: &str) -> Answer {
    visit
        .api
        .organizations()
        .set_member_role(
            visit.api.call(pb::SetMemberRoleRequest {
                member_id: id.to_owned(),
                role: pb::Role::from_str_name(visit.request.form.get("role"))
                    .unwrap_or_default()
                    .into(),
            }),
        )
        .await
        .map_err(Failure::from)?;
    Ok(respond::redirect("/organization?done=saved"))
}

pub async fn remove_member(visit: &Visit<'_>, id: &str) -> Answer {
    visit
        .api
        .organizations()
        .remove_member(visit.api.call(pb::RemoveMemberRequest {
            member_id: id.to_owned(),
        }))
        .await
        .map_err(Failure::from)?;
    Ok(respond::redirect("/organization?done=removed"))
}

pub async fn revoke_token(visit: &Visit<'_>, id: &str) -> Answer {
    visit
        .api
        .organizations()
        .revoke_api_token(visit.api.call(pb::RevokeApiTokenRequest { id: id.to_owned() }))
        .await
        .map_err(Failure::from)?;
    Ok(respond::redirect("/organization?done=revoked"))
}
