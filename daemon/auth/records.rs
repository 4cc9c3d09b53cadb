//! Stored shapes of organizations, members and API tokens.

use serde::{Deserialize, Serialize};

use super::Role;
use crate::store::{API_TOKENS, BytesTable, INVITATIONS, MEMBERS, ORGANIZATIONS, Record, TOKEN_HASHES};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrganizationRecord {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

impl Record for OrganizationRecord {
    const TABLE: BytesTable = ORGANIZATIONS;
    fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MemberRecord {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub role: Role,
    pub created_at: String,
    /// The person behind the member, the same across the organizations they created: `org
    /// list` shows a caller the organizations of their principal. Empty on members stored
    /// before organizations could be created (the member id stands for it).
    #[serde(default)]
    pub principal_id: String,
}

impl MemberRecord {
    /// The principal of this member.
    pub fn principal(&self) -> &str {
        if self.principal_id.is_empty() {
            &self.id
        } else {
            &self.principal_id
        }
    }
}

impl Record for MemberRecord {
    const TABLE: BytesTable = MEMBERS;
    fn id(&self) -> &str {
        &self.id
    }
}

/// An API token's metadata; the token itself is stored only as a hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApiTokenRecord {
    pub id: String,
    pub org_id: String,
    pub member_id: String,
    pub name: String,
    pub hash: String,
    pub created_at: String,
    /// The token that minted this one: revoking a token revokes what it minted.
    #[serde(default)]
    pub parent_token_id: Option<String>,
    /// An operator token (the one written to `admin.token` at first start): may create
    /// organizations when `[organizations] create = "operator"`.
    #[serde(default)]
    pub operator: bool,
    /// Unix ms after which the token is refused (and then removed); never when `None`.
    #[serde(default)]
    pub expires_at_ms: Option<i64>,
}

impl ApiTokenRecord {
    /// Whether the token has expired at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }
}

impl Record for ApiTokenRecord {
    const TABLE: BytesTable = API_TOKENS;
    fn id(&self) -> &str {
        &self.id
    }
}

/// Lookup from a token's hash to its record id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenHashRecord {
    pub hash: String,
    pub token_id: String,
}

impl Record for TokenHashRecord {
    const TABLE: BytesTable = TOKEN_HASHES;
    fn id(&self) -> &str {
        &self.hash
    }
}

/// An invitation to join an organization; the token itself is stored only as a hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InvitationRecord {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub role: Role,
    pub hash: String,
    /// The member who invited.
    pub invited_by: String,
    pub created_at: String,
    pub expires_at: String,
}

impl Record for InvitationRecord {
    const TABLE: BytesTable = INVITATIONS;
    fn id(&self) -> &str {
        &self.id
    }
}
