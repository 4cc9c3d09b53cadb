//! Roles and what each may do.

use serde::{Deserialize, Serialize};

/// A member's role in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

/// What a call wants to do, for permission checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read any resource of the organization.
    Read,
    /// Run, cancel and preview syncs.
    Operate,
    /// Create, change and delete connections, mappings and webhook endpoints.
    Configure,
    /// See webhook secrets again after creation.
    RevealSecrets,
    /// Add and remove members and tokens (but not owners).
    ManageMembers,
    /// Grant, change or remove the owner role.
    ManageOwners,
}

impl Role {
    /// Whether this role may perform `action`.
    pub fn allows(self, action: Action) -> bool {
        match self {
            Role::Owner => true,
            Role::Admin => action != Action::ManageOwners,
            Role::Member => matches!(action, Action::Read | Action::Operate),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_matrix() {
        use Action::*;
        let table: &[(Role, Action, bool)] = &[
            (Role::Owner, ManageOwners, true),
            (Role::Owner, Configure, true),
            (Role::Admin, ManageOwners, false),
            (Role::Admin, ManageMembers, true),
            (Role::Admin, RevealSecrets, true),
            (Role::Admin, Configure, true),
            (Role::Member, Read, true),
            (Role::Member, Operate, true),
            (Role::Member, Configure, false),
            (Role::Member, RevealSecrets, false),
            (Role::Member, ManageMembers, false),
        ];
        for (role, action, allowed) in table {
            assert_eq!(role.allows(*action), *allowed, "{role:?} {action:?}");
        }
    }
}
