//! The stored mapping.

use serde::{Deserialize, Serialize};

use super::spec::MappingSpec;
use crate::store::{BytesTable, MAPPINGS, Record};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MappingRecord {
    pub id: String,
    pub org_id: String,
    pub spec: MappingSpec,
    pub active: bool,
    pub created_at: String,
    pub updated_at: String,
    /// RFC 3339 of the next scheduled run, kept so a restart resumes the schedule.
    pub next_run_at: Option<String>,
}

impl Record for MappingRecord {
    const TABLE: BytesTable = MAPPINGS;
    fn id(&self) -> &str {
        &self.id
    }
}
