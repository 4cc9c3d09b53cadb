//! fluxd's logs: on stderr as text (coloured only on a terminal) or JSON with typed fields at
//! the top level; for the demo, everything to a file in its data dir and only warnings on the
//! terminal. The filter (`log_filter`, or `RUST_LOG`) is reloaded on SIGHUP.

use std::io::IsTerminal;

use fluxcascade::config::{Config, LogFormat};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

/// Changes the filter of the logs in force.
pub type FilterHandle = reload::Handle<EnvFilter, Registry>;

/// Where logs go.
pub enum Destination {
    Stderr,
    /// Everything to this file, warnings and errors also to stderr.
    #[cfg(feature = "sandbox")]
    DemoFile(std::path::PathBuf),
}

/// `RUST_LOG` when set, else `configured`.
fn filter(configured: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(configured))
}

/// Installs the logger; returns the handle that reloads its filter.
pub fn init(config: &Config, destination: Destination) -> FilterHandle {
    let (filter, handle) = reload::Layer::new(filter(&config.log_filter));
    let registry = tracing_subscriber::registry().with(filter);
    let terminal = std::io::stderr().is_terminal();
    match destination {
        Destination::Stderr => match config.log_format {
            LogFormat::Text => registry
                .with(fmt::layer().with_writer(std::io::stderr).with_ansi(terminal))
                .init(),
            LogFormat::Json => registry
                .with(
                    fmt::layer()
                        .json()
                        .flatten_event(true)
                        .with_current_span(false)
                        .with_span_list(false)
                        .with_writer(std::io::stderr),
                )
                .init(),
        },
        #[cfg(feature = "sandbox")]
        Destination::DemoFile(path) => {
            let file = std::fs::OpenOptions::new().create(true).append(true).open(&path);
            match file {
                Ok(file) => registry
                    .with(fmt::layer().with_writer(std::sync::Mutex::new(file)).with_ansi(false))
                    .with(warnings(terminal))
                    .init(),
                Err(error) => {
                    registry.with(warnings(terminal)).init();
                    tracing::warn!(path = %path.display(), %error, "cannot open the log file; only warnings are shown");
                }
            }
        }
    }
    handle
}

/// Warnings and errors on stderr, for the demo's terminal.
#[cfg(feature = "sandbox")]
fn warnings<S>(terminal: bool) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    use tracing_subscriber::Layer;
    fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(terminal)
        .with_filter(tracing_subscriber::filter::LevelFilter::WARN)
}

/// Puts `configured` in force, unless `RUST_LOG` decides.
pub fn set_filter(handle: &FilterHandle, configured: &str) {
    if std::env::var_os("RUST_LOG").is_some() {
        return;
    }
    if let Err(error) = handle.reload(EnvFilter::new(configured)) {
        tracing::warn!(%error, "log filter not reloaded");
    }
}
