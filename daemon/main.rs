//! `fluxd`: the FluxCascade daemon.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use fluxcascade::config::{Config, LogFormat, Overrides};
use fluxcascade::crypto::{KeySource, MasterKey, write_private_file};
use fluxcascade::daemon::{self, Listeners};
use tracing_subscriber::EnvFilter;

/// fluxd allocates many small, short-lived values (JSON records, store keys, HTTP headers)
/// on several threads at once, where mimalloc spends far less time than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// FluxCascade daemon: keeps HubSpot, Jobber, Pipedrive and Salesforce in step.
#[derive(Parser)]
#[command(name = "fluxd", version, about)]
struct Cli {
    #[command(flatten)]
    overrides: Overrides,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Run,
    /// Start fluxd with sandbox providers, connect HubSpot and Jobber, create a mapping and
    /// run its first sync; keeps serving until Ctrl-C.
    #[cfg(feature = "sandbox")]
    Demo,
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
    /// Re-encrypt every stored secret under a new master key, in one transaction.
    /// Run it while fluxd is stopped.
    RotateKey {
        /// Where to write the new key when the current one comes from FLUXD_MASTER_KEY or a
        /// systemd credential (with a key file in the data dir, that file is replaced).
        #[arg(long)]
        new_key_file: Option<std::path::PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(&cli.overrides)?;
    init_tracing(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => runtime.block_on(async {
            let listeners = Listeners::bind(&config).await?;
            daemon::run(listeners, config, shutdown_signal()).await
        })?,
        Command::RotateKey { new_key_file } => rotate_key(&config, new_key_file)?,
        #[cfg(feature = "sandbox")]
        Command::Demo => runtime.block_on(async {
            let listeners = Listeners::bind(&config).await?;
            fluxcascade::demo::run(listeners, config, shutdown_signal()).await
        })?,
        #[cfg(feature = "sandbox")]
        Command::Sandbox {
            listen,
            allow_remote,
            print_config,
            records,
            no_limits,
        } => runtime.block_on(run_sandbox(listen, allow_remote, print_config, records, no_limits))?,
    }
    Ok(())
}

fn init_tracing(config: &Config) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
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
    daemon::prepare_data_dir(&config.data_dir)?;
    let (old_key, source) = MasterKey::load_or_create(&config.data_dir)?;
    let target = match (&source, new_key_file) {
        (_, Some(path)) => path,
        (KeySource::File(path), None) => path.clone(),
        (KeySource::Environment | KeySource::Credential(_), None) => {
            anyhow::bail!("the master key comes from {source:?}; pass --new-key-file PATH for the new key")
        }
    };
    let store = fluxcascade::store::Store::open(&config.data_dir, old_key)
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
