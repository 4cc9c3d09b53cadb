//! Stored shapes of organizations, members and API tokens.

use serde::{Deserialize, Serialize};

use super::Role;
use crate::store::{API_TOKENS, BytesTable, MEMBERS, ORGANIZATIONS, Record, TOKEN_HASHES};

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
