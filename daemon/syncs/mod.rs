//! Syncs: one execution of a mapping. The runner queues and runs jobs (one per mapping at a
//! time, a bounded number overall, interrupted jobs resumed at start); the engine streams pages
//! through fetch → transform → write with identity links, checkpointed cursors, hashes of
//! the last values written per field, first-sync matching, filters, and conflict policies for
//! two-way mappings.
//! Record-level jobs sync the records inbound webhooks reported changed, one by one.

pub mod change_jobs;
pub mod changes;
pub mod engine;
pub mod intents;
pub mod links;
pub mod matching;
pub mod plan;
mod reconcile;
pub mod records;
pub mod retention;
pub mod runner;

pub use records::{SyncJobRecord, SyncStats, SyncStatus};
pub use runner::{SyncError, SyncRuntime, SyncSettings};
