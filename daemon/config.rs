//! fluxd's configuration: a TOML file, overridden by environment variables and flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::providers::config::ProvidersConfig;

/// Errors reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("config file {path} is invalid: {error}")]
    Parse { path: PathBuf, error: toml::de::Error },
    #[error(
        "store url: give a postgres://user:password@host:port/database URL (or none, for the data dir's redb file)"
    )]
    StoreUrl,
    #[error("cluster.lease_seconds: give 2 to 3600 seconds")]
    LeaseSeconds,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// TLS on the gRPC listener: a certificate and key (PEM), and, for mutual TLS, the CA that
/// client certificates must chain to.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcConfig {
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub client_ca_file: Option<PathBuf>,
}

impl GrpcConfig {
    /// Whether the gRPC listener speaks TLS.
    pub fn tls(&self) -> bool {
        self.tls_cert_file.is_some()
    }
}

/// Access to `/metrics`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// A file holding the bearer token scrapers must send; unset: `/metrics` is open.
    pub bearer_token_file: Option<PathBuf>,
}

/// Outbound webhook policy.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Allow endpoint URLs that resolve to loopback, private, link-local or metadata addresses.
    pub allow_private: bool,
    /// Allow `http://` endpoint URLs (always allowed together with `allow_private`).
    pub allow_http: bool,
    /// Finished deliveries (with their attempt logs) kept per endpoint; older ones are pruned.
    pub delivery_retention: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow_private: false,
            allow_http: false,
            delivery_retention: 10_000,
        }
    }
}

/// Who may create organizations.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OrganizationCreators {
    /// Holders of the operator token (`admin.token` in the data dir).
    #[default]
    Operator,
    /// Any member of any organization (each creator becomes the new one's owner).
    Anyone,
}

/// Organizations on this daemon.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OrganizationsConfig {
    pub create: OrganizationCreators,
}

/// Inbound provider webhooks.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct InboundConfig {
    /// Webhook requests accepted per second per connection (twice that in a burst); more are
    /// answered 429, which every provider retries.
    pub requests_per_second: u32,
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            requests_per_second: 500,
        }
    }
}

/// Where the state lives: the data dir's redb file unless `url` names a PostgreSQL database.
#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://user:password@host:port/database`: the database many nodes share (cluster
    /// mode). It may carry a password, so it is never printed.
    pub url: Option<String>,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.url.as_ref().map(|_| "<url>"))
            .finish()
    }
}

/// Cluster mode (nodes sharing a PostgreSQL store).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Term of an organization's lease, in seconds: a node that stops renewing (killed, cut
    /// off) loses its organizations to the other nodes after this long. Renewed every third
    /// of it.
    pub lease_seconds: u32,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig { lease_seconds: 10 }
    }
}

/// The whole configuration, as the TOML file spells it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub store: StoreConfig,
    pub cluster: ClusterConfig,
    pub grpc_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub log_format: LogFormat,
    /// `tracing` filter, e.g. `info,fluxcascade=debug`; `RUST_LOG` overrides it.
    pub log_filter: String,
    pub webhooks: WebhookConfig,
    pub inbound: InboundConfig,
    pub organizations: OrganizationsConfig,
    pub grpc: GrpcConfig,
    pub metrics: MetricsConfig,
    /// Base URL at which browsers (OAuth redirects) and providers (webhooks) reach the HTTP listener (OAuth redirects go to
    /// `<public_url>/oauth/callback`, webhooks to `<public_url>/webhooks/…`); default
    /// `http://<http_listen>`.
    pub public_url: Option<String>,
    /// Each provider's OAuth app: `[providers.hubspot]`, `[providers.jobber]`, …
    pub providers: ProvidersConfig,
    /// Run the provider simulators in-process and point all four providers at them.
    pub sandbox: bool,
    /// Records the in-process sandbox seeds per people object (a fifth of that for others).
    pub sandbox_records: usize,
    pub sync: SyncConfig,
    /// Days events stay in the outbox (for redelivery); older ones are pruned hourly.
    pub events_retention_days: u32,
}

/// How syncs run.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    /// Jobs running at once across all mappings.
    pub max_parallel: usize,
    /// A first sync that would create more records than this asks for confirmation (`--yes`).
    pub confirm_threshold: u64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            max_parallel: 4,
            confirm_threshold: 1000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./fluxd-data"),
            store: StoreConfig::default(),
            cluster: ClusterConfig::default(),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            log_format: LogFormat::Text,
            log_filter: "info".into(),
            webhooks: WebhookConfig::default(),
            inbound: InboundConfig::default(),
            organizations: OrganizationsConfig::default(),
            grpc: GrpcConfig::default(),
            metrics: MetricsConfig::default(),
            public_url: None,
            providers: ProvidersConfig::default(),
            sandbox: false,
            sandbox_records: 50,
            sync: SyncConfig::default(),
            events_retention_days: 30,
        }
    }
}

/// Values given on the command line or in `FLUXD_*` variables; each wins over the file.
#[derive(Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub store_url: Option<String>,
    pub grpc_listen: Option<SocketAddr>,
    pub http_listen: Option<SocketAddr>,
    pub log_format: Option<LogFormat>,
    pub allow_private_webhooks: bool,
    pub sandbox: bool,
    pub sandbox_records: Option<usize>,
}

impl Config {
    /// Reads the file named by `overrides.config` (if any) and applies the overrides.
    pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut config = match &overrides.config {
            Some(path) => Self::from_file(path)?,
            None => Config::default(),
        };
        if let Some(dir) = &overrides.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &overrides.store_url {
            config.store.url = Some(url.clone());
        }
        if let Some(url) = &config.store.url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::StoreUrl);
        }
        if !(2..=3600).contains(&config.cluster.lease_seconds) {
            return Err(ConfigError::LeaseSeconds);
        }
        if let Some(addr) = overrides.grpc_listen {
            config.grpc_listen = addr;
        }
        if let Some(addr) = overrides.http_listen {
            config.http_listen = addr;
        }
        if let Some(format) = overrides.log_format {
            config.log_format = format;
        }
        if overrides.allow_private_webhooks {
            config.webhooks.allow_private = true;
        }
        if overrides.sandbox {
            config.sandbox = true;
        }
        if let Some(records) = overrides.sandbox_records {
            config.sandbox_records = records;
        }
        Ok(config)
    }

    fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        toml::from_str(&text).map_err(|error| ConfigError::Parse {
            path: path.to_owned(),
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_apply_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fluxd.toml");
        std::fs::write(
            &path,
            "data_dir = \"/var/lib/fluxd\"\ngrpc_listen = \"127.0.0.1:6000\"\nlog_format = \"json\"\n[webhooks]\nallow_http = true\n",
        )
        .unwrap();
        let overrides = Overrides {
            config: Some(path.clone()),
            grpc_listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        };
        let config = Config::load(&overrides).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/fluxd"));
        assert_eq!(config.grpc_listen.port(), 0);
        assert_eq!(config.http_listen.port(), 8787);
        assert_eq!(config.log_format, LogFormat::Json);
        assert!(config.webhooks.allow_http && !config.webhooks.allow_private);
    }

    #[test]
    fn unknown_keys_are_refused_with_the_key_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fluxd.toml");
        std::fs::write(&path, "grpc_listn = \"127.0.0.1:1\"\n").unwrap();
        let error = Config::load(&Overrides {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(error.to_string().contains("grpc_listn"), "{error}");
    }
}
