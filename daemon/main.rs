//! `fluxd`: the FluxCascade daemon.

mod logging;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use fluxcascade::config::{Config, LogFormat, Overrides};
use fluxcascade::crypto::{KeySource, MasterKey, write_private_file};
use fluxcascade::daemon::{self, Listeners};
use tokio::signal::unix::{SignalKind, signal};

/// fluxd allocates many small, short-lived values (JSON records, store keys, HTTP headers)
/// on several threads at once, where mimalloc spends far less time than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where fluxd keeps its state and finds its configuration.
#[derive(clap::Args, Clone, Default)]
struct StoreArgs {
    /// TOML configuration file.
    #[arg(long, env = "FLUXD_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for fluxd.redb, master.key, admin.token and endpoints.json [default: ./fluxd-data].
    #[arg(long, env = "FLUXD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Keep the state in this PostgreSQL database instead of the data dir's fluxd.redb:
    /// postgres://user:password@host:port/database. Nodes on one database form a cluster
    /// (they must share the master key).
    #[arg(long = "store", env = "FLUXD_STORE_URL", value_name = "URL", hide_env_values = true)]
    store_url: Option<String>,
}

/// How fluxd serves.
#[derive(clap::Args, Clone, Default)]
struct ServeArgs {
    /// gRPC control-plane address [default: 127.0.0.1:50051]; port 0 picks a free port.
    #[arg(long, env = "FLUXD_GRPC_LISTEN")]
    grpc_listen: Option<SocketAddr>,
    /// HTTP listener for the web console, OAuth callbacks, inbound webhooks, /healthz and /metrics [default: 127.0.0.1:8787].
    #[arg(long, env = "FLUXD_HTTP_LISTEN")]
    http_listen: Option<SocketAddr>,
    /// Log format.
    #[arg(long, env = "FLUXD_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Allow webhook endpoints on loopback/private addresses and plain http:// (for local receivers and tests).
    #[arg(long, env = "FLUXD_ALLOW_PRIVATE_WEBHOOKS")]
    allow_private_webhooks: bool,
}

/// The in-process simulators.
#[derive(clap::Args, Clone, Default)]
struct SandboxArgs {
    /// Run local simulators of HubSpot, Jobber, Pipedrive and Salesforce and connect to them
    /// instead of the real services (no accounts or network needed). A data dir is either a
    /// sandbox one or a live one, never both.
    #[cfg(feature = "sandbox")]
    #[arg(long, env = "FLUXD_SANDBOX")]
    sandbox: bool,
    /// Records the sandbox seeds per people object [default: 50].
    #[cfg(feature = "sandbox")]
    #[arg(long, env = "FLUXD_SANDBOX_RECORDS")]
    sandbox_records: Option<usize>,
}

/// FluxCascade daemon: keeps HubSpot, Jobber, Pipedrive and Salesforce in step.
///
/// SIGTERM or SIGINT stops it gracefully; SIGHUP reloads the configuration file (log filter,
/// provider apps and secrets, webhook address policy) and logs what needs a restart.
#[derive(Parser)]
#[command(name = "fluxd", version, about, long_about)]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    serve: ServeArgs,
    #[command(flatten)]
    sandbox: SandboxArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Run {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        serve: ServeArgs,
        #[command(flatten)]
        sandbox: SandboxArgs,
    },
    /// Start fluxd with sandbox providers, connect HubSpot and Jobber, create a mapping and
    /// run its first sync; keeps serving until Ctrl-C. Logs go to fluxd.log in the data dir
    /// (warnings also to the terminal); run again on the same data dir, it reconnects its connections and replaces its mapping (the sandbox starts afresh).
    #[cfg(feature = "sandbox")]
    Demo {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        serve: ServeArgs,
        /// Records the sandbox seeds per people object [default: 50].
        #[arg(long, env = "FLUXD_SANDBOX_RECORDS")]
        sandbox_records: Option<usize>,
    },
    /// Run only the provider simulators (the sandbox), e.g. for a fluxd started elsewhere.
    #[cfg(feature = "sandbox")]
    Sandbox {
        /// Address to listen on (loopback only, unless --allow-remote).
        #[arg(long, default_value = "127.0.0.1:8790")]
        listen: std::net::SocketAddr,
        /// Allow a non-loopback --listen address (the simulators have no authentication).
        #[arg(long)]
        allow_remote: bool,
        /// Print the `[providers.*]` config that points fluxd at this sandbox, then serve.
        #[arg(long)]
        print_config: bool,
        /// People records to seed per provider (a fifth of that for other objects).
        #[arg(long, default_value_t = 50)]
        records: usize,
        /// Switch the providers' rate limits off (they are on by default, at the providers'
        /// published figures) and let HubSpot's search see changes at once.
        #[arg(long)]
        no_limits: bool,
    },
    /// Bring the store's schema to this version and exit (fluxd also does it at start; with
    /// PostgreSQL, run it once before upgrading the nodes).
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Re-encrypt every stored secret under a new master key, in one transaction. Run it
    /// while fluxd is stopped.
    RotateKey {
        #[command(flatten)]
        store: StoreArgs,
        /// Where to write the new key when the current one comes from FLUXD_MASTER_KEY or a
        /// systemd credential (with a key file in the data dir, that file is replaced).
        #[arg(long)]
        new_key_file: Option<std::path::PathBuf>,
    },
}

/// The configuration overrides of the top-level flags and a subcommand's (the subcommand's
/// win).
fn overrides(cli: &Cli, store: &StoreArgs, serve: &ServeArgs, sandbox: &SandboxArgs) -> Overrides {
    #[cfg(feature = "sandbox")]
    let (sandbox_on, records) = (
        cli.sandbox.sandbox || sandbox.sandbox,
        sandbox.sandbox_records.or(cli.sandbox.sandbox_records),
    );
    #[cfg(not(feature = "sandbox"))]
    let (sandbox_on, records) = {
        let _ = sandbox;
        (false, None)
    };
    Overrides {
        config: store.config.clone().or_else(|| cli.store.config.clone()),
        data_dir: store.data_dir.clone().or_else(|| cli.store.data_dir.clone()),
        store_url: store.store_url.clone().or_else(|| cli.store.store_url.clone()),
        grpc_listen: serve.grpc_listen.or(cli.serve.grpc_listen),
        http_listen: serve.http_listen.or(cli.serve.http_listen),
        log_format: serve.log_format.or(cli.serve.log_format),
        allow_private_webhooks: cli.serve.allow_private_webhooks || serve.allow_private_webhooks,
        sandbox: sandbox_on,
        sandbox_records: records,
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let none = (StoreArgs::default(), ServeArgs::default(), SandboxArgs::default());
    match &cli.command {
        None => {
            let overrides = overrides(&cli, &none.0, &none.1, &none.2);
            runtime.block_on(serve(overrides))?;
        }
        Some(Command::Run {
            store,
            serve: args,
            sandbox,
        }) => {
            let overrides = overrides(&cli, store, args, sandbox);
            runtime.block_on(serve(overrides))?;
        }
        Some(Command::Migrate { store }) => {
            let config = Config::load(&overrides(&cli, store, &none.1, &none.2))?;
            logging::init(&config, logging::Destination::Stderr);
            let store = daemon::open_store(&config, "migrate")?;
            println!("store schema at version {}", fluxcascade::store::SCHEMA_VERSION);
            drop(store);
        }
        Some(Command::RotateKey { store, new_key_file }) => {
            let config = Config::load(&overrides(&cli, store, &none.1, &none.2))?;
            logging::init(&config, logging::Destination::Stderr);
            rotate_key(&config, new_key_file.clone())?;
        }
        #[cfg(feature = "sandbox")]
        Some(Command::Demo {
            store,
            serve: args,
            sandbox_records,
        }) => {
            let mut overrides = overrides(&cli, store, args, &none.2);
            overrides.sandbox_records = sandbox_records.or(overrides.sandbox_records);
            let config = Config::load(&overrides)?;
            runtime.block_on(async {
                let listeners = Listeners::bind(&config).await?;
                daemon::prepare_data_dir(&config.data_dir)?;
                logging::init(
                    &config,
                    logging::Destination::DemoFile(config.data_dir.join("fluxd.log")),
                );
                ignore_hangups();
                fluxcascade::demo::run(listeners, config, shutdown_signal()).await
            })?;
        }
        #[cfg(feature = "sandbox")]
        Some(Command::Sandbox {
            listen,
            allow_remote,
            print_config,
            records,
            no_limits,
        }) => {
            logging::init(&Config::default(), logging::Destination::Stderr);
            runtime.block_on(async {
                ignore_hangups();
                run_sandbox(*listen, *allow_remote, *print_config, *records, *no_limits).await
            })?;
        }
    }
    Ok(())
}

/// Runs the daemon until SIGTERM or SIGINT; SIGHUP reloads the configuration.
async fn serve(overrides: Overrides) -> anyhow::Result<()> {
    let config = Config::load(&overrides)?;
    let log_filter = logging::init(&config, logging::Destination::Stderr);
    let listeners = Listeners::bind(&config).await?;
    let running = daemon::start(listeners, config).await?;
    let reloader = running.reloader();
    tokio::spawn(async move {
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::error!("cannot listen for SIGHUP; configuration reloads need a restart");
            return;
        };
        while hangups.recv().await.is_some() {
            reload(&overrides, &reloader, &log_filter);
        }
    });
    running.serve_until(shutdown_signal()).await?;
    Ok(())
}

/// Reads the configuration again and puts what can change in force.
fn reload(overrides: &Overrides, reloader: &fluxcascade::reload::Reloader, log_filter: &logging::FilterHandle) {
    let status = match Config::load(overrides) {
        Err(error) => {
            tracing::error!(%error, "configuration not reloaded");
            format!("reload failed: {error}")
        }
        Ok(config) => {
            logging::set_filter(log_filter, &config.log_filter);
            match reloader.reload(config) {
                Ok(report) => {
                    tracing::info!(applied = %report.applied.join(", "), "configuration reloaded");
                    if !report.needs_restart.is_empty() {
                        tracing::warn!(settings = %report.needs_restart.join(", "), "changed settings take effect at the next restart");
                    }
                    format!(
                        "reloaded {}{}",
                        report.applied.join(", "),
                        if report.needs_restart.is_empty() {
                            String::new()
                        } else {
                            format!("; restart needed for {}", report.needs_restart.join(", "))
                        }
                    )
                }
                Err(error) => {
                    tracing::error!(%error, "configuration not reloaded");
                    format!("reload failed: {error}")
                }
            }
        }
    };
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Status(&status)]);
}

#[cfg(feature = "sandbox")]
/// Modes without a configuration to reload stay up on SIGHUP (its default action ends the
/// process).
fn ignore_hangups() {
    tokio::spawn(async {
        if let Ok(mut hangups) = signal(SignalKind::hangup()) {
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: nothing to reload in this mode");
            }
        }
    });
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers; stop fluxd with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(feature = "sandbox")]
async fn run_sandbox(
    listen: std::net::SocketAddr,
    allow_remote: bool,
    print_config: bool,
    records: usize,
    no_limits: bool,
) -> anyhow::Result<()> {
    if !listen.ip().is_loopback() && !allow_remote {
        anyhow::bail!(
            "--listen {listen} is not a loopback address: the simulators answer anyone without authentication; pass --allow-remote to serve it anyway"
        );
    }
    let sandbox = fluxcascade::sandbox::Sandbox::default();
    sandbox.seed(records);
    if no_limits {
        sandbox.without_limits();
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let base = format!("http://{}", listener.local_addr()?);
    if print_config {
        #[derive(serde::Serialize)]
        struct ProvidersFile {
            providers: fluxcascade::providers::config::ProvidersConfig,
        }
        let providers = fluxcascade::sandbox::provider_settings(&base);
        say(&toml::to_string(&ProvidersFile { providers })?);
    } else {
        say(&format!("sandbox listening on {base}"));
    }
    sandbox.serve(listener, shutdown_signal()).await;
    Ok(())
}

/// Prints a line to stdout; a reader that went away (closed pipe) does not stop the sandbox.
#[cfg(feature = "sandbox")]
fn say(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
}

fn rotate_key(config: &Config, new_key_file: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    if config.store.url.is_none() && !config.data_dir.join(fluxcascade::store::DB_FILE).is_file() {
        anyhow::bail!(
            "{} holds no fluxd.redb: nothing to re-encrypt (pass --data-dir of the daemon)",
            config.data_dir.display()
        );
    }
    let (old_key, source) = MasterKey::load_or_create(&config.data_dir, true)?;
    let target = match (&source, new_key_file) {
        (_, Some(path)) => path,
        (KeySource::File(path), None) => path.clone(),
        (KeySource::Environment | KeySource::Credential(_), None) => {
            anyhow::bail!("the master key comes from {source:?}; pass --new-key-file PATH for the new key")
        }
    };
    let location = daemon::store_location(config);
    let store = fluxcascade::store::Store::open_at(&location, old_key, "rotate-key")
        .context("opening the store (is fluxd still running?)")?;
    let new_key = MasterKey::generate();
    // Write the new key beside its target first, so a crash never leaves secrets sealed under
    // a key that is nowhere on disk.
    let staged = target.with_extension("new");
    write_private_file(&staged, new_key.to_text().as_bytes())?;
    let count = store.rotate_master_key(&new_key)?;
    std::fs::rename(&staged, &target)?;
    println!(
        "re-encrypted {count} secrets; new master key written to {}",
        target.display()
    );
    Ok(())
}
