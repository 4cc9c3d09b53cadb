//! The thread that hears other nodes' news: `LISTEN fluxd_wake`. Each endpoint named in a
//! wake-up is woken here as if this node had committed the deliveries itself (its actor runs
//! on one node only; elsewhere the wake-up finds nothing and costs nothing); job news goes to
//! the store's job hook (watchers, cancels).

use std::sync::Weak;
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use postgres::NoTls;
use postgres::fallible_iterator::FallibleIterator;

use super::txn::parse;
use super::{Notice, WAKE_CHANNEL};
use crate::store::{Shared, StoreError};

/// How often the thread checks that the store is still open.
const POLL: Duration = Duration::from_secs(1);
/// Wait before connecting again after the connection failed.
const RECONNECT: Duration = Duration::from_secs(1);
/// How long opening the store waits for the first `LISTEN`.
const LISTEN_WAIT: Duration = Duration::from_secs(15);

/// Starts the thread and returns once it listens: from then on, no commit of another node is
/// missed.
pub(super) fn start(config: postgres::Config, node_id: String, shared: Weak<Shared>) -> Result<(), StoreError> {
    let (ready, listening) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("fluxd-store-listen".into())
        .spawn(move || {
            while shared.strong_count() > 0 {
                if let Err(error) = listen(&config, &node_id, &shared, &ready) {
                    tracing::warn!(%error, "lost the store's notification connection; reconnecting");
                    std::thread::sleep(RECONNECT);
                }
            }
        })
        .map_err(|error| StoreError::Io(error.to_string()))?;
    listening
        .recv_timeout(LISTEN_WAIT)
        .map_err(|_| StoreError::Postgres("could not listen for the other nodes' notifications".into()))
}

/// Listens (telling `ready` once it does) until the connection fails or the store closes.
fn listen(
    config: &postgres::Config,
    node_id: &str,
    shared: &Weak<Shared>,
    ready: &SyncSender<()>,
) -> Result<(), postgres::Error> {
    let mut client = config.connect(NoTls)?;
    client.batch_execute(&format!("LISTEN {WAKE_CHANNEL}"))?;
    // Only the first time matters; later sends find the buffer full or nobody waiting.
    let _ = ready.try_send(());
    loop {
        let mut notifications = client.notifications();
        let mut arrived = notifications.timeout_iter(POLL);
        while let Some(notification) = arrived.next()? {
            let Some(shared) = shared.upgrade() else {
                return Ok(());
            };
            let Some((sender, notice, ids)) = parse(notification.payload()) else {
                continue;
            };
            if sender == node_id {
                continue;
            }
            match notice {
                Notice::Wake => {
                    if let Some(wake) = shared.wake_endpoint.get() {
                        ids.split(',').for_each(wake);
                    }
                }
                Notice::Job | Notice::Cancel => {
                    if let Some(hook) = shared.job_news.get() {
                        ids.split(',').for_each(|job| hook(notice, job));
                    }
                }
                Notice::Entity => {
                    if let Some(hook) = shared.entity_news.get() {
                        ids.split(',').for_each(hook);
                    }
                }
            }
        }
        if shared.strong_count() == 0 {
            return Ok(());
        }
    }
}
