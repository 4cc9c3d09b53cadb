//! The permission matrix: every RPC of the control plane, what it needs, and whether it
//! changes anything (and so is audited). The authorization layer reads this one table; a
//! method missing from it is refused.

use super::Role;

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No API token: the request carries its own credential (an invitation token).
    Public,
    /// Any member, to create an organization; the daemon's `[organizations] create`
    /// setting decides further (the operator token only, by default).
    CreateOrganization,
    /// Read anything in the organization.
    Read,
    /// Run, cancel and preview syncs.
    Operate,
    /// Manage one's own API tokens (others' need [`Access::ManageMembers`], checked by the
    /// handler, which knows whose token it is).
    OwnTokens,
    /// Create, change and delete connections, mappings and webhook endpoints.
    Configure,
    /// See secrets again (webhook signing secrets).
    RevealSecrets,
    /// Invite, add, change and remove members and their tokens, below the owner role.
    ManageMembers,
    /// Rename or delete the organization.
    Own,
    /// The daemon's own operation (its cluster's nodes): the operator token only.
    Operator,
}

impl Role {
    /// Whether this role may make calls that need `access`.
    pub fn may(self, access: Access) -> bool {
        match access {
            Access::Public | Access::CreateOrganization | Access::Read | Access::Operate | Access::OwnTokens => true,
            // The layer also requires the operator token.
            Access::Operator => self == Role::Owner,
            Access::Configure | Access::RevealSecrets | Access::ManageMembers => self != Role::Member,
            Access::Own => self == Role::Owner,
        }
    }
}

/// One RPC's row of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub access: Access,
    /// Whether a successful call changes state: such calls are audited.
    pub mutates: bool,
}

const fn rule(access: Access, mutates: bool) -> Rule {
    Rule { access, mutates }
}

/// Every RPC of `fluxcascade.v1`, by full method path.
pub const MATRIX: &[(&str, Rule)] = {
    use Access::*;
    &[
        ("/fluxcascade.v1.SystemService/GetStatus", rule(Read, false)),
        ("/fluxcascade.v1.SystemService/GetVersion", rule(Read, false)),
        ("/fluxcascade.v1.SystemService/ListClusterNodes", rule(Operator, false)),
        (
            "/fluxcascade.v1.OrganizationService/CreateOrganization",
            rule(CreateOrganization, true),
        ),
        (
            "/fluxcascade.v1.OrganizationService/ListOrganizations",
            rule(Read, false),
        ),
        (
            "/fluxcascade.v1.OrganizationService/DeleteOrganization",
            rule(Own, true),
        ),
        ("/fluxcascade.v1.OrganizationService/GetOrganization", rule(Read, false)),
        (
            "/fluxcascade.v1.OrganizationService/RenameOrganization",
            rule(Own, true),
        ),
        ("/fluxcascade.v1.OrganizationService/ListMembers", rule(Read, false)),
        (
            "/fluxcascade.v1.OrganizationService/AddMember",
            rule(ManageMembers, true),
        ),
        (
            "/fluxcascade.v1.OrganizationService/SetMemberRole",
            rule(ManageMembers, true),
        ),
        (
            "/fluxcascade.v1.OrganizationService/RemoveMember",
            rule(ManageMembers, true),
        ),
        (
            "/fluxcascade.v1.OrganizationService/CreateApiToken",
            rule(OwnTokens, true),
        ),
        (
            "/fluxcascade.v1.OrganizationService/ListApiTokens",
            rule(OwnTokens, false),
        ),
        (
            "/fluxcascade.v1.OrganizationService/RevokeApiToken",
            rule(OwnTokens, true),
        ),
        (
            "/fluxcascade.v1.OrganizationService/CreateInvitation",
            rule(ManageMembers, true),
        ),
        ("/fluxcascade.v1.OrganizationService/ListInvitations", rule(Read, false)),
        (
            "/fluxcascade.v1.OrganizationService/RevokeInvitation",
            rule(ManageMembers, true),
        ),
        (
            "/fluxcascade.v1.OrganizationService/AcceptInvitation",
            rule(Public, true),
        ),
        ("/fluxcascade.v1.OrganizationService/GetUsage", rule(Read, false)),
        (
            "/fluxcascade.v1.OrganizationService/ListAuditEntries",
            rule(Read, false),
        ),
        (
            "/fluxcascade.v1.ConnectionService/CreateConnection",
            rule(Configure, true),
        ),
        (
            "/fluxcascade.v1.ConnectionService/WaitConnection",
            rule(Configure, false),
        ),
        (
            "/fluxcascade.v1.ConnectionService/ImportConnection",
            rule(Configure, true),
        ),
        ("/fluxcascade.v1.ConnectionService/ListConnections", rule(Read, false)),
        ("/fluxcascade.v1.ConnectionService/GetConnection", rule(Read, false)),
        (
            "/fluxcascade.v1.ConnectionService/DeleteConnection",
            rule(Configure, true),
        ),
        (
            "/fluxcascade.v1.ConnectionService/RefreshConnection",
            rule(Configure, true),
        ),
        (
            "/fluxcascade.v1.ConnectionService/GetConnectionWebhooks",
            rule(Configure, true),
        ),
        ("/fluxcascade.v1.MappingService/CreateMapping", rule(Configure, true)),
        ("/fluxcascade.v1.MappingService/UpdateMapping", rule(Configure, true)),
        ("/fluxcascade.v1.MappingService/GetMapping", rule(Read, false)),
        ("/fluxcascade.v1.MappingService/ListMappings", rule(Read, false)),
        ("/fluxcascade.v1.MappingService/DeleteMapping", rule(Configure, true)),
        ("/fluxcascade.v1.MappingService/ActivateMapping", rule(Configure, true)),
        (
            "/fluxcascade.v1.MappingService/DeactivateMapping",
            rule(Configure, true),
        ),
        ("/fluxcascade.v1.MappingService/ListFields", rule(Read, false)),
        ("/fluxcascade.v1.MappingService/PreviewMapping", rule(Operate, false)),
        ("/fluxcascade.v1.SyncService/RunSync", rule(Operate, true)),
        ("/fluxcascade.v1.SyncService/GetSync", rule(Read, false)),
        ("/fluxcascade.v1.SyncService/ListSyncs", rule(Read, false)),
        ("/fluxcascade.v1.SyncService/CancelSync", rule(Operate, true)),
        ("/fluxcascade.v1.SyncService/WatchSync", rule(Read, false)),
        ("/fluxcascade.v1.SyncService/ListSyncErrors", rule(Read, false)),
        ("/fluxcascade.v1.SyncService/ListSyncConflicts", rule(Read, false)),
        (
            "/fluxcascade.v1.WebhookService/CreateWebhookEndpoint",
            rule(Configure, true),
        ),
        (
            "/fluxcascade.v1.WebhookService/UpdateWebhookEndpoint",
            rule(Configure, true),
        ),
        ("/fluxcascade.v1.WebhookService/GetWebhookEndpoint", rule(Read, false)),
        ("/fluxcascade.v1.WebhookService/ListWebhookEndpoints", rule(Read, false)),
        (
            "/fluxcascade.v1.WebhookService/DeleteWebhookEndpoint",
            rule(Configure, true),
        ),
        (
            "/fluxcascade.v1.WebhookService/EnableWebhookEndpoint",
            rule(Configure, true),
        ),
        (
            "/fluxcascade.v1.WebhookService/DisableWebhookEndpoint",
            rule(Configure, true),
        ),
        (
            "/fluxcascade.v1.WebhookService/RevealWebhookSecret",
            rule(RevealSecrets, true),
        ),
        (
            "/fluxcascade.v1.WebhookService/RotateWebhookSecret",
            rule(Configure, true),
        ),
        (
            "/fluxcascade.v1.WebhookService/TestWebhookEndpoint",
            rule(Configure, true),
        ),
        (
            "/fluxcascade.v1.WebhookService/ListWebhookDeliveries",
            rule(Read, false),
        ),
        ("/fluxcascade.v1.WebhookService/GetWebhookDelivery", rule(Read, false)),
        ("/fluxcascade.v1.WebhookService/RedeliverWebhook", rule(Configure, true)),
        (
            "/fluxcascade.v1.WebhookService/RecoverWebhookDeliveries",
            rule(Configure, true),
        ),
        ("/fluxcascade.v1.EventService/ListEvents", rule(Read, false)),
        ("/fluxcascade.v1.EventService/GetEvent", rule(Read, false)),
    ]
};

/// The rule of `method`, if it is an RPC of the control plane.
pub fn rule_of(method: &str) -> Option<Rule> {
    MATRIX.iter().find(|(path, _)| *path == method).map(|(_, rule)| *rule)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Every RPC in the API's descriptors has a row, and every row an RPC.
    #[test]
    fn the_matrix_covers_every_rpc_exactly() {
        let set = prost_types::FileDescriptorSet::decode(crate::pb::FILE_DESCRIPTOR_SET).unwrap();
        let mut methods: Vec<String> = set
            .file
            .iter()
            .filter(|file| file.package() == "fluxcascade.v1")
            .flat_map(|file| {
                file.service.iter().flat_map(|service| {
                    service
                        .method
                        .iter()
                        .map(move |method| format!("/fluxcascade.v1.{}/{}", service.name(), method.name()))
                })
            })
            .collect();
        methods.sort();
        let mut rows: Vec<String> = MATRIX.iter().map(|(path, _)| (*path).to_owned()).collect();
        rows.sort();
        assert_eq!(methods, rows);
    }

    #[test]
    fn roles_nest() {
        use Access::*;
        for access in [
            Public,
            CreateOrganization,
            Read,
            Operate,
            OwnTokens,
            Configure,
            RevealSecrets,
            ManageMembers,
            Own,
        ] {
            assert!(Role::Owner.may(access), "{access:?}");
            assert!(!Role::Member.may(access) || Role::Admin.may(access), "{access:?}");
        }
        assert!(!Role::Admin.may(Own));
        assert!(!Role::Member.may(Configure));
    }
}
