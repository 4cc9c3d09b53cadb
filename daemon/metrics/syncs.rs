//! Sync jobs: runs by trigger and final status, records by outcome, and how long runs take.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::syncs::SyncJobRecord;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    trigger: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecordLabels {
    outcome: String,
}

/// What sync jobs did. Cheap to clone.
#[derive(Clone)]
pub struct SyncMetrics {
    runs: Family<RunLabels, Counter>,
    records: Family<RecordLabels, Counter>,
    duration: Histogram,
}

impl Default for SyncMetrics {
    fn default() -> Self {
        SyncMetrics {
            runs: Family::default(),
            records: Family::default(),
            duration: Histogram::new(exponential_buckets(0.01, 2.0, 20)),
        }
    }
}

impl SyncMetrics {
    /// Counts a finished job, its records and its run time.
    pub fn finished(&self, job: &SyncJobRecord, seconds: f64) {
        let trigger = serde_json::to_value(job.trigger)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        self.runs
            .get_or_create(&RunLabels {
                trigger,
                status: job.status.as_str().to_owned(),
            })
            .inc();
        let stats = job.stats;
        for (outcome, count) in [
            ("created", stats.created),
            ("updated", stats.updated),
            ("unchanged", stats.unchanged),
            ("skipped", stats.skipped),
            ("failed", stats.failed),
            ("filtered", stats.filtered),
        ] {
            if count > 0 {
                self.records
                    .get_or_create(&RecordLabels {
                        outcome: outcome.to_owned(),
                    })
                    .inc_by(count);
            }
        }
        self.duration.observe(seconds);
    }

    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "sync_runs",
            "Finished sync jobs by trigger and status",
            self.runs.clone(),
        );
        registry.register("sync_records", "Records synced, by outcome", self.records.clone());
        registry.register(
            "sync_duration_seconds",
            "How long sync jobs ran, queued time excluded",
            self.duration.clone(),
        );
    }
}
