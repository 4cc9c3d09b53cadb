//! Wiring: config → store → crypto → actors → servers, and shutdown in reverse.
//!
//! The caller binds the listeners and owns the shutdown signal ([`Listeners`], [`start`],
//! [`Running::serve_until`]), so tests, the demo and the benches boot a daemon on sockets
//! they bound, and several daemons can share a process: nothing here is process-wide.

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::actors::{self, ActorTree, Directory, Factories};
use crate::api::{self, Context};
use crate::auth::bootstrap;
use crate::cluster::Ownership;
use crate::cluster::keeper::Keeper;
use crate::cluster::leases::NodeInfo;
use crate::config::Config;
use crate::connections::ConnectionRuntime;
use crate::connections::actor::ConnectionFactory;
use crate::connections::runtime::RefreshLocks;
use crate::console::Console;
use crate::crypto::{CryptoError, MasterKey, write_private_file};
use crate::events::now_rfc3339;
use crate::inbound::Receiver;
use crate::inbound::accept::forget_seen;
use crate::inbound::rate_caps::RateCaps;
use crate::mappings::actor::MappingFactory;
use crate::mappings::service::MappingRuntime;
use crate::metrics::Metrics;
use crate::placement::OrgPlacement;
use crate::providers::config::{ProviderConfigError, SharedApps, resolve_all};
use crate::reload::Reloader;
use crate::store::{Location, Reader, Store, StoreError};
use crate::syncs::change_jobs::ChangeJobs;
use crate::syncs::{SyncRuntime, SyncSettings};
use crate::web::{self, WebState};
use crate::webhooks::actor::{EndpointFactory, WebhookRuntime};
use crate::webhooks::ssrf::{AddressPolicy, SharedPolicy};

/// File written once both listeners are bound: `{"grpc":"ADDR","http":"ADDR"}` (plus
/// `"sandbox":"URL"` with `--sandbox`).
pub const ENDPOINTS_FILE: &str = "endpoints.json";
/// How long a graceful shutdown may take before fluxd exits anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);
/// The `meta` key recording whether a data dir is a sandbox one.
const MODE_KEY: &str = "data_dir_mode";

/// Errors that stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Tls(#[from] api::tls::TlsError),
    #[error("metrics.bearer_token_file: cannot read {path}: {error}")]
    MetricsToken { path: String, error: std::io::Error },
    #[error("the store could not write ({0}); restart fluxd once the disk has room")]
    StoreFailed(String),
    #[error("cannot prepare data dir {path}: {error}")]
    DataDir { path: String, error: std::io::Error },
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bootstrap(#[from] bootstrap::BootstrapError),
    #[error("cannot bind {what} listener on {addr}: {error}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error(transparent)]
    Providers(#[from] ProviderConfigError),
    #[error("cannot start actors: {0}")]
    Actors(#[from] ractor::SpawnErr),
    #[error(transparent)]
    Grpc(#[from] api::ServeError),
    #[error("cannot build the webhook HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error(
        "data dir {path} holds {stored} data ({connections} connection(s)) and fluxd was started {requested}; \
         sandbox and real connections never share a data dir: use another --data-dir"
    )]
    ModeMismatch {
        path: String,
        stored: &'static str,
        requested: &'static str,
        connections: u64,
    },
    #[error(
        "this fluxd was built without the sandbox (the `sandbox` cargo feature); remove `sandbox` from its configuration"
    )]
    SandboxNotBuilt,
}

/// Creates the data dir (mode 0700) if needed.
pub fn prepare_data_dir(path: &Path) -> Result<(), DaemonError> {
    let error = |error| DaemonError::DataDir {
        path: path.display().to_string(),
        error,
    };
    if path.is_dir() {
        // An existing directory keeps its mode (it may be shared, with a sticky bit); only
        // say when others can reach into it.
        let mode = std::fs::metadata(path).map_err(error)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o7777), "the data dir is accessible by other users; its files are 0600, but consider chmod 700");
        }
        return Ok(());
    }
    std::fs::create_dir_all(path).map_err(error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(error)?;
    Ok(())
}

/// Where `config` keeps the state.
pub fn store_location(config: &Config) -> Location {
    match &config.store.url {
        Some(url) => Location::Postgres(url.clone()),
        None => Location::Embedded(config.data_dir.clone()),
    }
}

/// Opens the store with the master key as node `node_id`, creating both on first start (on
/// PostgreSQL, a node without the cluster's key makes one that the database then refuses).
pub fn open_store(config: &Config, node_id: &str) -> Result<Store, DaemonError> {
    prepare_data_dir(&config.data_dir)?;
    let location = store_location(config);
    let store_exists =
        matches!(location, Location::Embedded(_)) && config.data_dir.join(crate::store::DB_FILE).exists();
    let (key, source) = MasterKey::load_or_create(&config.data_dir, store_exists)?;
    tracing::info!(source = %source, "master key loaded");
    Ok(Store::open_at(&location, key, node_id)?)
}

/// The two listeners a daemon serves, bound by its caller.
pub struct Listeners {
    pub grpc: TcpListener,
    pub http: TcpListener,
}

impl Listeners {
    /// Binds the addresses `config` names.
    pub async fn bind(config: &Config) -> Result<Listeners, DaemonError> {
        Ok(Listeners {
            grpc: bind("gRPC", config.grpc_listen, config.grpc.tls()).await?,
            http: bind("HTTP", config.http_listen, false).await?,
        })
    }
}

/// Runs the daemon on `listeners` until `shutdown` resolves, then stops accepting, lets
/// in-flight work finish, stops the actors and closes the store.
pub async fn run(listeners: Listeners, config: Config, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    start(listeners, config).await?.serve_until(shutdown).await
}

/// A started daemon: serving, with every actor running.
pub struct Running {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// Base URL of the in-process sandbox, with `--sandbox`.
    pub sandbox_url: Option<String>,
    store: Store,
    /// This node's id among the nodes of a cluster.
    node_id: String,
    /// Keeps this node's organization leases (cluster mode only).
    keeper: Option<Keeper>,
    tree: ActorTree,
    syncs: Arc<SyncRuntime>,
    stop: CancellationToken,
    grpc: JoinHandle<Result<(), api::ServeError>>,
    http: JoinHandle<()>,
    retention: JoinHandle<()>,
    record_jobs: JoinHandle<()>,
    reloader: Arc<Reloader>,
}

/// Opens the store and starts the actors and both servers; returns once fluxd is ready.
pub async fn start(listeners: Listeners, mut config: Config) -> Result<Running, DaemonError> {
    let grpc_addr = local_addr(&listeners.grpc, config.grpc_listen);
    let http_addr = local_addr(&listeners.http, config.http_listen);
    // Everything that can be refused without touching the data dir is checked first.
    let sandbox_url = start_sandbox(&mut config).await?;
    let apps = SharedApps::new(resolve_all(&config.providers)?);
    let tls = api::tls::server_config(&config.grpc)?;
    let metrics_token = match &config.metrics.bearer_token_file {
        None => None,
        Some(path) => {
            let token = std::fs::read_to_string(path).map_err(|error| DaemonError::MetricsToken {
                path: path.display().to_string(),
                error,
            })?;
            Some(crate::crypto::Secret::new(token.trim().to_owned()))
        }
    };
    let node_id = format!("node_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let store = open_store(&config, &node_id)?;
    check_mode(&store, &config).await?;
    bootstrap::ensure_first_org(&store, &config.data_dir).await?;

    let mut endpoints = serde_json::json!({ "grpc": grpc_addr.to_string(), "http": http_addr.to_string() });
    if tls.is_some() {
        endpoints["grpcTls"] = true.into();
    }
    if let Some(url) = &sandbox_url {
        endpoints["sandbox"] = url.clone().into();
    }
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{http_addr}"));
    let lease_term = Duration::from_secs(u64::from(config.cluster.lease_seconds));
    let ownership = match store.postgres() {
        Some(_) => Ownership::clustered(lease_term),
        None => Ownership::default(),
    };
    let directory = Directory::new(ownership.clone());
    let metrics = Metrics::new();
    let connections = Arc::new(ConnectionRuntime {
        store: store.clone(),
        http: ConnectionRuntime::http_client()?,
        apps: apps.clone(),
        redirect_uri: format!("{}/oauth/callback", public_url.trim_end_matches('/')),
        directory: directory.clone(),
        refresh_locks: RefreshLocks::default(),
        metrics: metrics.clone(),
    });

    let policy = SharedPolicy::new(AddressPolicy {
        allow_private: config.webhooks.allow_private,
        allow_http: config.webhooks.allow_http,
    });
    let webhooks = WebhookRuntime::start(
        store.clone(),
        policy.clone(),
        config.webhooks.delivery_retention,
        directory.clone(),
        metrics.deliveries.clone(),
    )?;

    let mappings = Arc::new(MappingRuntime::new(connections.clone()));
    let syncs = SyncRuntime::new(
        store.clone(),
        mappings.clone(),
        SyncSettings {
            max_parallel: config.sync.max_parallel,
            confirm_threshold: config.sync.confirm_threshold,
        },
        metrics.clone(),
        ownership.clone(),
    );

    let tree = actors::start_tree(
        Factories {
            connections: Arc::new(ConnectionFactory {
                runtime: connections.clone(),
            }),
            mappings: Arc::new(MappingFactory { syncs: syncs.clone() }),
            webhook_endpoints: Arc::new(EndpointFactory { runtime: webhooks }),
        },
        directory.clone(),
    )
    .await?;
    metrics.watch_actors(&tree.live);
    metrics.watch_leases(&ownership);
    syncs.resume_interrupted().await?;
    let change_jobs = ChangeJobs::new(syncs.clone())?;
    let keeper = ownership.is_clustered().then(|| {
        syncs.hear_other_nodes();
        crate::placement::relay_entity_changes(&store, &directory, &syncs);
        let placement = Arc::new(OrgPlacement {
            store: store.clone(),
            directory: directory.clone(),
            syncs: syncs.clone(),
            change_jobs: change_jobs.clone(),
        });
        let node = NodeInfo {
            node_id: node_id.clone(),
            grpc_address: grpc_addr.to_string(),
            http_address: http_addr.to_string(),
        };
        tracing::info!(node_id = %node_id, lease_seconds = config.cluster.lease_seconds, "cluster mode: this node claims organizations by lease");
        Keeper::start(store.clone(), node, lease_term, ownership.clone(), Arc::new(placement))
    });

    let context = Arc::new(Context {
        store: store.clone(),
        config: config.clone(),
        live: tree.live.clone(),
        directory,
        webhook_policy: policy.clone(),
        connections: connections.clone(),
        mappings,
        syncs: syncs.clone(),
        public_url: public_url.trim_end_matches('/').to_owned(),
        started: Instant::now(),
        started_at: now_rfc3339(),
        node_id: node_id.clone(),
    });
    let stop = CancellationToken::new();
    let retention = tokio::spawn(prune_events(store.clone(), config.events_retention_days, stop.clone()));
    let record_jobs = tokio::spawn(change_jobs.clone().run(stop.clone()));
    let reloader = Arc::new(Reloader::new(config.clone(), apps.clone(), policy));
    let inbound = Receiver {
        store: store.clone(),
        apps,
        public_url: public_url.trim_end_matches('/').to_owned(),
        metrics: metrics.inbound.clone(),
        caps: RateCaps::new(config.inbound.requests_per_second),
        jobs: change_jobs,
    };
    let console = Console::new(
        api::in_process(&context, metrics.clone()),
        store.clone(),
        &context.public_url,
    );
    let grpc = tokio::spawn(api::serve(
        listeners.grpc,
        context,
        metrics.clone(),
        tls,
        stop.clone().cancelled_owned(),
    ));
    let http = tokio::spawn(web::serve(
        listeners.http,
        Arc::new(WebState {
            metrics,
            metrics_token,
            connections,
            inbound,
            console,
        }),
        stop.clone().cancelled_owned(),
    ));

    write_private_file(&config.data_dir.join(ENDPOINTS_FILE), endpoints.to_string().as_bytes()).map_err(|error| {
        DaemonError::DataDir {
            path: config.data_dir.display().to_string(),
            error,
        }
    })?;
    tracing::info!(grpc = %grpc_addr, http = %http_addr, data_dir = %config.data_dir.display(), "fluxd ready");
    // Not under systemd (no NOTIFY_SOCKET) these are no-ops.
    let status = format!("serving gRPC on {grpc_addr}, HTTP on {http_addr}");
    let _ = sd_notify::notify(
        false,
        &[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status(&status)],
    );
    Ok(Running {
        grpc_addr,
        http_addr,
        sandbox_url,
        store,
        node_id,
        keeper,
        tree,
        syncs,
        stop,
        grpc,
        http,
        retention,
        record_jobs,
        reloader,
    })
}

impl Running {
    /// What puts a reloaded configuration in force while this daemon runs.
    pub fn reloader(&self) -> Arc<Reloader> {
        self.reloader.clone()
    }

    /// Serves until `shutdown` resolves (or the gRPC server fails), then stops gracefully.
    pub async fn serve_until(mut self, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
        let mut store_failure = None;
        let early_exit = tokio::select! {
            () = shutdown => {
                tracing::info!("shutting down");
                None
            }
            result = &mut self.grpc => Some(result),
            failure = self.store.failed() => {
                // redb refuses every write after an I/O error until the file is opened again:
                // stop, so the service manager restarts fluxd on a reopened store. Nothing
                // acknowledged is lost (what failed was never acknowledged).
                tracing::error!(%failure, "the store cannot write; stopping so that a restart reopens it");
                store_failure = Some(failure);
                None
            }
        };
        let _ = sd_notify::notify(
            false,
            &[
                sd_notify::NotifyState::Stopping,
                sd_notify::NotifyState::Status("stopping: finishing requests, pausing syncs"),
            ],
        );
        self.stop.cancel();
        let Running {
            store,
            node_id,
            keeper,
            tree,
            syncs,
            grpc,
            http,
            retention,
            record_jobs,
            ..
        } = self;
        let graceful = async {
            let grpc_result = match early_exit {
                Some(result) => result,
                None => grpc.await,
            };
            let _ = http.await;
            let _ = retention.await;
            let _ = record_jobs.await;
            // No new claims while stopping, but the leases are renewed until the actors and
            // jobs have stopped; then they go back.
            if let Some(keeper) = &keeper {
                keeper.drain();
            }
            syncs.shutdown(Duration::from_secs(3)).await;
            tree.shutdown(Duration::from_secs(3)).await;
            if let Some(keeper) = keeper {
                keeper.stop().await;
                crate::cluster::keeper::leave(&store, &node_id).await;
            }
            grpc_result
        };
        let outcome = match tokio::time::timeout(SHUTDOWN_GRACE, graceful).await {
            Ok(Ok(Err(error))) => Err(DaemonError::Grpc(error)),
            Ok(_) => Ok(()),
            Err(_) => {
                tracing::warn!("graceful shutdown took too long; exiting anyway");
                Ok(())
            }
        };
        // Closing the store waits for the writer to finish what it holds.
        tokio::task::spawn_blocking(move || drop(store)).await.ok();
        tracing::info!("fluxd stopped");
        match store_failure {
            Some(failure) => Err(DaemonError::StoreFailed(failure)),
            None => outcome,
        }
    }
}

/// Refuses to mix sandbox and real connections in one data dir: the first start records
/// which kind the dir is, later starts of the other kind fail with the reason.
async fn check_mode(store: &Store, config: &Config) -> Result<(), DaemonError> {
    let requested = if config.sandbox { "sandbox" } else { "live" };
    let stored = store.read(|rx| rx.meta(MODE_KEY))?;
    match stored.as_deref() {
        Some(mode) if mode == requested.as_bytes() => Ok(()),
        Some(_) => Err(DaemonError::ModeMismatch {
            path: config.data_dir.display().to_string(),
            stored: if config.sandbox {
                "live (non-sandbox)"
            } else {
                "sandbox"
            },
            requested: if config.sandbox {
                "with --sandbox"
            } else {
                "without --sandbox"
            },
            connections: store.read(|rx| rx.count::<crate::connections::ConnectionRecord>())?,
        }),
        None => {
            let mode = requested.as_bytes().to_vec();
            Ok(store.write(move |tx| tx.set_meta(MODE_KEY, &mode)).await?)
        }
    }
}

/// With `sandbox` set, starts the provider simulators on loopback and points every
/// provider at them; returns their base URL.
#[cfg(feature = "sandbox")]
async fn start_sandbox(config: &mut Config) -> Result<Option<String>, DaemonError> {
    if !config.sandbox {
        return Ok(None);
    }
    let sandbox = crate::sandbox::Sandbox::default();
    sandbox.seed(config.sandbox_records);
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let addr = sandbox.spawn(loopback).await.map_err(|error| DaemonError::Bind {
        what: "sandbox",
        addr: loopback,
        error,
    })?;
    let base = format!("http://{addr}");
    tracing::info!(%base, "sandbox providers listening; all four providers point at it");
    config.providers = crate::sandbox::provider_settings(&base);
    Ok(Some(base))
}

#[cfg(not(feature = "sandbox"))]
async fn start_sandbox(config: &mut Config) -> Result<Option<String>, DaemonError> {
    if config.sandbox {
        return Err(DaemonError::SandboxNotBuilt);
    }
    Ok(None)
}

/// How long the keys of accepted inbound events are kept to drop redeliveries (HubSpot and
/// Salesforce retry for up to a day).
const SEEN_RETENTION: Duration = Duration::from_secs(3 * 24 * 3600);

/// Prunes outbox events older than the retention, expired API tokens (console sessions) and
/// the keys of inbound events older than [`SEEN_RETENTION`], a minute after start and then
/// hourly.
async fn prune_events(store: Store, days: u32, stop: CancellationToken) {
    let mut next = Duration::from_secs(60);
    loop {
        tokio::select! {
            () = tokio::time::sleep(next) => {}
            () = stop.cancelled() => return,
        }
        next = Duration::from_secs(3600);
        let cutoff = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * i64::from(days));
        match crate::events::prune_before(&store, cutoff).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, days, "pruned old events"),
            Err(error) => tracing::warn!(%error, "could not prune old events"),
        }
        let now_ms = store.clock().now_ms();
        in_batches(&store, 1_000, "expired API tokens", move |tx, limit| {
            crate::auth::tokens::revoke_expired(tx, now_ms, limit)
        })
        .await;
        let before_ms = store.clock().now_ms() - i64::try_from(SEEN_RETENTION.as_millis()).unwrap_or(i64::MAX);
        in_batches(&store, 10_000, "the keys of old inbound events", move |tx, limit| {
            forget_seen(tx, before_ms, limit)
        })
        .await;
    }
}

/// Runs `remove` (which removes at most its limit and says how many it did) in transactions
/// of `batch` until one removes fewer; a failure is logged and ends the round.
async fn in_batches<F>(store: &Store, batch: usize, what: &'static str, remove: F)
where
    F: Fn(&mut crate::store::Tx<'_>, usize) -> Result<usize, StoreError> + Clone + Send + 'static,
{
    loop {
        let remove = remove.clone();
        match store.write(move |tx| remove(tx, batch)).await {
            Ok(removed) if removed == batch => continue,
            Ok(_) => break,
            Err(error) => {
                tracing::warn!(%error, "could not remove {what}");
                break;
            }
        }
    }
}

async fn bind(what: &'static str, addr: SocketAddr, tls: bool) -> Result<TcpListener, DaemonError> {
    if !addr.ip().is_loopback() && !tls {
        // fluxd speaks plain HTTP/2 and HTTP/1.1: tokens and webhook bodies travel unencrypted.
        tracing::warn!(listener = what, %addr, "listening beyond loopback without TLS: set [grpc] tls_cert_file/tls_key_file, put a TLS-terminating proxy in front, or keep it on a private network");
    }
    TcpListener::bind(addr)
        .await
        .map_err(|error| DaemonError::Bind { what, addr, error })
}

fn local_addr(listener: &TcpListener, requested: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(requested)
}
