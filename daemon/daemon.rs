//! Wiring: config → store → crypto → actors → servers, and shutdown in reverse.

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::actors::{self, Factories};
use crate::api::{self, Context};
use crate::auth::bootstrap;
use crate::config::Config;
use crate::connections::ConnectionRuntime;
use crate::connections::actor::ConnectionFactory;
use crate::crypto::{CryptoError, MasterKey, write_private_file};
use crate::events::now_rfc3339;
use crate::mappings::actor::MappingFactory;
use crate::mappings::service::MappingRuntime;
use crate::metrics::Metrics;
use crate::sandbox::{self, Sandbox};
use crate::store::{Store, StoreError};
use crate::syncs::SyncRuntime;
use crate::web::{self, WebState};
use crate::webhooks::actor::{EndpointFactory, WebhookRuntime};
use crate::webhooks::ssrf::AddressPolicy;

/// File written once both listeners are bound: `{"grpc":"ADDR","http":"ADDR"}` (plus
/// `"sandbox":"URL"` with `--sandbox`).
pub const ENDPOINTS_FILE: &str = "endpoints.json";
/// How long a graceful shutdown may take before fluxd exits anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// Errors that stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
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
    #[error("cannot start actors: {0}")]
    Actors(#[from] ractor::SpawnErr),
    #[error(transparent)]
    Grpc(#[from] api::ServeError),
    #[error("cannot build the webhook HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
}

/// Creates the data dir (mode 0700) if needed.
pub fn prepare_data_dir(path: &Path) -> Result<(), DaemonError> {
    let error = |error| DaemonError::DataDir {
        path: path.display().to_string(),
        error,
    };
    std::fs::create_dir_all(path).map_err(error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(error)?;
    Ok(())
}

/// Opens the store with the master key, creating both on first start.
pub fn open_store(config: &Config) -> Result<Store, DaemonError> {
    prepare_data_dir(&config.data_dir)?;
    let (key, source) = MasterKey::load_or_create(&config.data_dir)?;
    tracing::info!(?source, "master key loaded");
    Ok(Store::open(&config.data_dir, key)?)
}

/// Runs the daemon until `shutdown` resolves, then stops accepting, lets in-flight work
/// finish, stops the actors and closes the store.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    let store = open_store(&config)?;
    bootstrap::ensure_first_org(&store, &config.data_dir)?;

    let grpc_listener = bind("gRPC", config.grpc_listen).await?;
    let http_listener = bind("HTTP", config.http_listen).await?;
    let grpc_addr = local_addr(&grpc_listener, config.grpc_listen);
    let http_addr = local_addr(&http_listener, config.http_listen);

    let mut providers = config.providers.clone();
    let mut endpoints = serde_json::json!({ "grpc": grpc_addr.to_string(), "http": http_addr.to_string() });
    if config.sandbox {
        let sandbox = Sandbox::default();
        sandbox.seed(config.sandbox_records);
        let sandbox_addr = sandbox
            .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|error| DaemonError::Bind {
                what: "sandbox",
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                error,
            })?;
        let base = format!("http://{sandbox_addr}");
        tracing::info!(%base, "sandbox providers listening; all four providers point at it");
        providers = sandbox::provider_settings(&base);
        endpoints["sandbox"] = base.into();
    }
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{http_addr}"));
    let connections = Arc::new(ConnectionRuntime {
        store: store.clone(),
        http: ConnectionRuntime::http_client()?,
        providers,
        redirect_uri: format!("{}/oauth/callback", public_url.trim_end_matches('/')),
    });

    let policy = AddressPolicy {
        allow_private: config.webhooks.allow_private,
        allow_http: config.webhooks.allow_http,
    };
    let (webhooks, recorder) = WebhookRuntime::start(store.clone(), policy, config.webhooks.delivery_retention)?;

    let mappings = Arc::new(MappingRuntime::new(connections.clone()));
    let syncs = SyncRuntime::new(
        store.clone(),
        mappings.clone(),
        config.sync.max_parallel,
        config.sync.confirm_threshold,
    );

    let tree = actors::start_tree(Factories {
        connections: Arc::new(ConnectionFactory {
            runtime: connections.clone(),
        }),
        mappings: Arc::new(MappingFactory { syncs: syncs.clone() }),
        webhook_endpoints: Arc::new(EndpointFactory {
            runtime: webhooks.clone(),
        }),
    })
    .await?;
    let metrics = Metrics::new(&tree.live);
    syncs.resume_interrupted()?;

    let context = Arc::new(Context {
        store: store.clone(),
        config: config.clone(),
        live: tree.live.clone(),
        webhook_policy: policy,
        connections: connections.clone(),
        mappings,
        syncs,
        started: Instant::now(),
        started_at: now_rfc3339(),
    });
    let stop = CancellationToken::new();
    let retention = tokio::spawn(prune_events(store.clone(), config.events_retention_days, stop.clone()));
    let mut grpc = tokio::spawn(api::serve(
        grpc_listener,
        context,
        metrics.clone(),
        stop.clone().cancelled_owned(),
    ));
    let http = tokio::spawn(web::serve(
        http_listener,
        Arc::new(WebState { metrics, connections }),
        stop.clone().cancelled_owned(),
    ));

    write_private_file(&config.data_dir.join(ENDPOINTS_FILE), endpoints.to_string().as_bytes()).map_err(|error| {
        DaemonError::DataDir {
            path: config.data_dir.display().to_string(),
            error,
        }
    })?;
    tracing::info!(grpc = %grpc_addr, http = %http_addr, data_dir = %config.data_dir.display(), "fluxd ready");
    // Not under systemd (no NOTIFY_SOCKET) this is a no-op.
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

    let early_exit = tokio::select! {
        () = shutdown => {
            tracing::info!("shutting down");
            None
        }
        result = &mut grpc => Some(result),
    };
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    stop.cancel();
    let graceful = async {
        let grpc_result = match early_exit {
            Some(result) => result,
            None => grpc.await,
        };
        let _ = http.await;
        let _ = retention.await;
        tree.shutdown(Duration::from_secs(5)).await;
        // Attempts still in flight hold the outcome sender; what they do not record in time
        // stays queued and is sent again after the next start (at-least-once).
        drop(webhooks);
        let _ = tokio::time::timeout(Duration::from_secs(2), recorder).await;
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
    drop(store);
    tracing::info!("fluxd stopped");
    outcome
}

/// Prunes outbox events older than the retention, a minute after start and then hourly.
async fn prune_events(store: Store, days: u32, stop: CancellationToken) {
    let mut next = Duration::from_secs(60);
    loop {
        tokio::select! {
            () = tokio::time::sleep(next) => {}
            () = stop.cancelled() => return,
        }
        next = Duration::from_secs(3600);
        let cutoff = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * i64::from(days));
        match crate::events::prune_before(&store, cutoff) {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, days, "pruned old events"),
            Err(error) => tracing::warn!(%error, "could not prune old events"),
        }
    }
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, DaemonError> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| DaemonError::Bind { what, addr, error })
}

fn local_addr(listener: &TcpListener, requested: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(requested)
}
