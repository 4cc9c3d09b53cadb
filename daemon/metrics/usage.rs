//! Each organization's usage this month (its bill so far), read from the store when scraped.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::auth::records::OrganizationRecord;
use crate::orgs::usage::{month_of, of_month};
use crate::store::{Reader, Store};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UsageLabels {
    org: String,
    kind: String,
}

/// `fluxd_org_usage{org,kind}`. Cheap to clone.
#[derive(Clone, Default)]
pub struct UsageMetrics {
    usage: Family<UsageLabels, Gauge>,
}

impl UsageMetrics {
    /// Reads every organization's current month from `store`.
    pub(super) fn read(&self, store: &Store) {
        let month = month_of(jiff::Timestamp::now());
        let months = store.read(|rx| {
            let mut months = Vec::new();
            for org in rx.list::<OrganizationRecord>()? {
                months.push((org.id.clone(), of_month(rx, &org.id, &month)?));
            }
            Ok::<_, crate::store::StoreError>(months)
        });
        self.usage.clear();
        for (org, usage) in months.unwrap_or_default() {
            for (kind, value) in [
                ("records_created", usage.records_created),
                ("records_updated", usage.records_updated),
                ("sync_runs", usage.sync_runs),
                ("webhook_deliveries", usage.webhook_deliveries),
                ("inbound_webhooks", usage.inbound_webhooks),
            ] {
                self.usage
                    .get_or_create(&UsageLabels {
                        org: org.clone(),
                        kind: kind.into(),
                    })
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
    }

    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "org_usage",
            "Each organization's usage in the current month (UTC), by kind",
            self.usage.clone(),
        );
    }
}
