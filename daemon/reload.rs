//! Configuration reload (SIGHUP): what can change while fluxd runs — the provider apps with
//! their secrets, the outbound webhook address policy — is swapped in place; what cannot is
//! named as needing a restart. The log filter is the binary's to reload (it owns tracing).

use std::sync::Mutex;

use crate::config::Config;
use crate::providers::config::{ProviderConfigError, SharedApps, resolve_all};
use crate::webhooks::ssrf::{AddressPolicy, SharedPolicy};

/// What a reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Settings now in force.
    pub applied: Vec<&'static str>,
    /// Settings that changed in the file but take a restart.
    pub needs_restart: Vec<&'static str>,
}

/// Swaps reloadable settings into a running daemon.
pub struct Reloader {
    apps: SharedApps,
    policy: SharedPolicy,
    current: Mutex<Config>,
}

impl Reloader {
    pub fn new(config: Config, apps: SharedApps, policy: SharedPolicy) -> Reloader {
        Reloader {
            apps,
            policy,
            current: Mutex::new(config),
        }
    }

    /// Puts `new`'s reloadable settings in force. Provider settings that do not resolve (a
    /// missing secret file, say) are refused as a whole, and nothing changes.
    pub fn reload(&self, new: Config) -> Result<ReloadReport, ProviderConfigError> {
        let mut current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut report = ReloadReport::default();
        // Resolved every time: a secret file may have changed under the same path.
        let apps = resolve_all(&new.providers)?;
        self.apps.replace(apps);
        report.applied.push("providers");
        if current.log_filter != new.log_filter {
            report.applied.push("log_filter");
        }
        if (current.webhooks.allow_private, current.webhooks.allow_http)
            != (new.webhooks.allow_private, new.webhooks.allow_http)
        {
            self.policy.set(AddressPolicy {
                allow_private: new.webhooks.allow_private,
                allow_http: new.webhooks.allow_http,
            });
            report.applied.push("webhooks.allow_private/allow_http");
        }
        let restart = [
            ("data_dir", current.data_dir != new.data_dir),
            ("grpc_listen", current.grpc_listen != new.grpc_listen),
            ("http_listen", current.http_listen != new.http_listen),
            ("log_format", current.log_format != new.log_format),
            ("public_url", current.public_url != new.public_url),
            (
                "sandbox",
                current.sandbox != new.sandbox || current.sandbox_records != new.sandbox_records,
            ),
            ("sync", current.sync != new.sync),
            ("inbound", current.inbound != new.inbound),
            ("organizations", current.organizations != new.organizations),
            ("grpc", current.grpc != new.grpc),
            ("metrics", current.metrics != new.metrics),
            (
                "webhooks.delivery_retention",
                current.webhooks.delivery_retention != new.webhooks.delivery_retention,
            ),
            (
                "events_retention_days",
                current.events_retention_days != new.events_retention_days,
            ),
        ];
        report.needs_restart = restart
            .iter()
            .filter(|(_, changed)| *changed)
            .map(|(name, _)| *name)
            .collect();
        // What needs a restart keeps its running value, so a second reload reports it again.
        let mut next = new;
        next.data_dir = current.data_dir.clone();
        next.grpc_listen = current.grpc_listen;
        next.http_listen = current.http_listen;
        next.log_format = current.log_format;
        next.public_url = current.public_url.clone();
        next.sandbox = current.sandbox;
        next.sandbox_records = current.sandbox_records;
        next.sync = current.sync.clone();
        next.inbound = current.inbound.clone();
        next.organizations = current.organizations.clone();
        next.grpc = current.grpc.clone();
        next.metrics = current.metrics.clone();
        next.webhooks.delivery_retention = current.webhooks.delivery_retention;
        next.events_retention_days = current.events_retention_days;
        *current = next;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reloads_apply_what_they_can_and_name_what_needs_a_restart() {
        let config = Config::default();
        let reloader = Reloader::new(config.clone(), SharedApps::default(), SharedPolicy::default());
        let mut changed = config.clone();
        changed.webhooks.allow_private = true;
        changed.log_filter = "debug".into();
        changed.grpc_listen = "127.0.0.1:1".parse().unwrap();
        let report = reloader.reload(changed.clone()).unwrap();
        assert_eq!(
            report.applied,
            ["providers", "log_filter", "webhooks.allow_private/allow_http"]
        );
        assert_eq!(report.needs_restart, ["grpc_listen"]);
        assert!(reloader.policy.get().allow_private);
        let again = reloader.reload(changed).unwrap();
        assert_eq!(again.needs_restart, ["grpc_listen"], "still not in force");
        assert_eq!(again.applied, ["providers"]);
    }
}
