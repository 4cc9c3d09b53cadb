//! Stored shapes of sync jobs, their per-record outcomes, cursors and retries.

use serde::{Deserialize, Serialize};

use crate::store::{BytesTable, CURSORS, OUTCOMES, RETRIES, Record, SYNC_JOBS, SYNC_STATES};

/// The seed's sync statuses, plus `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    Pending,
    Running,
    Completed,
    Partial,
    Failed,
    Cancelled,
    /// Asked to stop and not stopped yet: shown while a cancelled job reaches its next
    /// checkpoint, never stored.
    Cancelling,
}

/// What a running job is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPhase {
    Queued,
    Matching,
    Syncing,
    Retrying,
}

impl SyncStatus {
    pub fn is_finished(self) -> bool {
        !matches!(self, SyncStatus::Pending | SyncStatus::Running | SyncStatus::Cancelling)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Pending => "pending",
            SyncStatus::Running => "running",
            SyncStatus::Completed => "completed",
            SyncStatus::Partial => "partial",
            SyncStatus::Failed => "failed",
            SyncStatus::Cancelled => "cancelled",
            SyncStatus::Cancelling => "cancelling",
        }
    }
}

/// Counts of a job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStats {
    pub fetched: u64,
    pub created: u64,
    pub updated: u64,
    pub failed: u64,
    pub skipped: u64,
    pub unchanged: u64,
    /// Records written without an optional field whose transform failed.
    #[serde(default)]
    pub warnings: u64,
    /// Records changed on both sides since the last sync, resolved by the conflict policy.
    #[serde(default)]
    pub conflicts: u64,
    /// Records read that the mapping's filter leaves out (never linked).
    #[serde(default)]
    pub filtered: u64,
}

/// What started a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Manual,
    Schedule,
    /// A record-level sync of changes providers reported through inbound webhooks.
    Webhook,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SyncJobRecord {
    pub id: String,
    pub org_id: String,
    pub mapping_id: String,
    pub status: SyncStatus,
    pub stats: SyncStats,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    pub full: bool,
    pub trigger: Trigger,
    pub total_estimate: Option<u64>,
    /// While pending or running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<SyncPhase>,
}

impl Record for SyncJobRecord {
    const TABLE: BytesTable = SYNC_JOBS;
    fn id(&self) -> &str {
        &self.id
    }
}

/// Which way a pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// Source records written to the target.
    Forward,
    /// Target records written to the source.
    Backward,
}

impl Flow {
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Forward => "forward",
            Flow::Backward => "backward",
        }
    }

    /// The flow the other way.
    pub fn opposite(self) -> Flow {
        match self {
            Flow::Forward => Flow::Backward,
            Flow::Backward => Flow::Forward,
        }
    }
}

/// Where incremental listing of one side stands.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct CursorRecord {
    /// `<mapping>/<flow>`.
    pub key: String,
    /// Records modified at or after this (Unix ms) are listed next time.
    pub watermark_ms: Option<i64>,
    /// The provider's page cursor of an unfinished pass, to resume after a crash.
    pub page_cursor: Option<String>,
    /// The latest modification seen in the unfinished pass.
    pub pass_max_ms: Option<i64>,
    /// The pass started listing from this watermark (kept while the pass is unfinished).
    pub pass_since_ms: Option<i64>,
    /// When (our clock, Unix ms) the unfinished pass started.
    #[serde(default)]
    pub pass_started_ms: Option<i64>,
    /// The match index of the written side is built for this mapping.
    pub match_index_built: bool,
    /// The filter the watermark was reached with (a hash; empty: none): another filter lists
    /// every record again.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub filter: String,
}

impl Record for CursorRecord {
    const TABLE: BytesTable = CURSORS;
    fn id(&self) -> &str {
        &self.key
    }
}

/// A record a job skipped or failed, with why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutcomeRecord {
    /// `<job>/<sequence>`.
    pub key: String,
    pub flow: Flow,
    pub record_id: String,
    pub linked_id: Option<String>,
    pub failed: bool,
    /// Written, with a warning (an optional field left out).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
    pub message: String,
}

impl Record for OutcomeRecord {
    const TABLE: BytesTable = OUTCOMES;
    fn id(&self) -> &str {
        &self.key
    }
}

/// Which side a conflicting field's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SideName {
    Source,
    Target,
}

/// One field both sides changed since the last sync.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FieldConflict {
    /// The field, named on the side the finding pass writes.
    pub field: String,
    /// Both values, mapped to that side's field.
    pub source_value: String,
    pub target_value: String,
    pub policy: crate::mappings::spec::ConflictPolicy,
    pub winner: SideName,
}

/// A record both sides changed since the last sync, as a job resolved it; stored beside the
/// job's outcomes under `<job>/~c/<sequence>` (after them in key order).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConflictRecord {
    pub key: String,
    /// The pass that found it.
    pub flow: Flow,
    pub source_id: String,
    pub target_id: String,
    pub source_modified_at: String,
    pub target_modified_at: String,
    pub fields: Vec<FieldConflict>,
}

impl Record for ConflictRecord {
    const TABLE: BytesTable = OUTCOMES;
    fn id(&self) -> &str {
        &self.key
    }
}

/// The key prefix of a job's conflicts.
pub fn conflicts_prefix(job_id: &str) -> String {
    format!("{job_id}/~c/")
}

/// A record whose write failed, retried by later runs up to a cap.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RetryRecord {
    /// `<mapping>/<flow>/<record id>`.
    pub key: String,
    pub record_id: String,
    pub attempts: u32,
    pub last_error: String,
    /// The job of the last attempt: a record tried by the current job is not tried again in it.
    #[serde(default)]
    pub last_job: String,
}

impl Record for RetryRecord {
    const TABLE: BytesTable = RETRIES;
    fn id(&self) -> &str {
        &self.key
    }
}

/// Where a mapping's syncs stand, so starting one reads one record instead of the mapping's
/// whole job history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SyncStateRecord {
    pub mapping_id: String,
    /// The queued or running job, if any.
    pub active_job: Option<String>,
    /// The last job that finished, and how.
    pub last_job: Option<String>,
    pub last_status: Option<SyncStatus>,
    /// A job of this mapping completed (fully or partly): later runs are not first syncs.
    pub succeeded_once: bool,
}

impl Record for SyncStateRecord {
    const TABLE: BytesTable = SYNC_STATES;
    fn id(&self) -> &str {
        &self.mapping_id
    }
}
