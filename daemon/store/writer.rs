//! The store's one writer thread, so that no commit (each a disk flush) ever runs on an async
//! worker, with group commit: every change queued while the previous flush ran is committed
//! as its own transaction, all but the last without a flush; the last one's flush makes the
//! whole group durable.
//!
//! Each change keeps its own atomicity (a change that fails or panics rolls back alone); its
//! caller hears back, and its events and endpoint wake-ups go out, only once the group's
//! flush returned, so nothing is acknowledged that a crash could still lose. Changes that
//! can only fail when the store itself does ("shared" changes: recording delivery outcomes,
//! accepting inbound webhooks) go further and share one transaction per group, which is what
//! makes thousands of small durable writes a second cheap.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{Fence, Shared, StoreError, Tx};
use crate::events::EventRecord;

/// Changes waiting for the writer; senders wait (asynchronously) when it is full.
pub(super) const QUEUE_DEPTH: usize = 4096;
/// Most changes in one group.
const MAX_GROUP: usize = 1024;

/// What the writer does with a change's result once its group's flush has returned: `None`
/// when the change is durable, else the reason it is not.
pub(super) type Reply = Box<dyn FnOnce(Option<StoreError>) + Send>;

/// A change as the writer runs it.
pub(super) trait Change: Send {
    /// The change fails only when the store does, so it may share a transaction.
    fn shared(&self) -> bool;
    /// The lease the change is fenced by, if any.
    fn fence(&self) -> Option<&Fence>;
    /// Applies the change to `tx` and says whether to commit.
    fn apply(self: Box<Self>, tx: &mut Tx<'_>) -> Applied;
    /// Tells the caller the change could not run at all.
    fn refuse(self: Box<Self>, error: StoreError);
}

/// The outcome of applying a change.
pub(super) struct Applied {
    /// Commit (the change returned `Ok`) or roll back.
    pub commit: bool,
    pub reply: Reply,
}

/// A caller's change and where its result goes.
pub(super) struct Pending<F, T, E> {
    pub change: F,
    pub reply: oneshot::Sender<Result<T, E>>,
    pub shared: bool,
    pub fence: Option<Arc<Fence>>,
}

impl<F, T, E> Change for Pending<F, T, E>
where
    F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    fn shared(&self) -> bool {
        self.shared
    }

    fn fence(&self) -> Option<&Fence> {
        self.fence.as_deref()
    }

    fn apply(self: Box<Self>, tx: &mut Tx<'_>) -> Applied {
        let Pending { change, reply, .. } = *self;
        let result = change(tx);
        Applied {
            commit: result.is_ok(),
            reply: Box::new(move |failure| {
                let _ = reply.send(match failure {
                    None => result,
                    Some(error) => Err(E::from(error)),
                });
            }),
        }
    }

    fn refuse(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(E::from(error)));
    }
}

/// A committed change waiting for its group's flush.
struct Committed {
    reply: Reply,
    events: Vec<Arc<EventRecord>>,
    woken: BTreeSet<String>,
}

/// Runs until every sender is gone.
pub(super) fn run(shared: Arc<Shared>, mut queue: mpsc::Receiver<Box<dyn Change>>) {
    while let Some(first) = queue.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(change) => group.push(change),
                Err(_) => break,
            }
        }
        commit_group(&shared, group);
    }
}

/// Commits `group` (each change alone, the shared ones together), flushes once, then answers
/// every caller and publishes the events.
pub(super) fn commit_group(shared: &Shared, group: Vec<Box<dyn Change>>) {
    let (together, alone): (Vec<_>, Vec<_>) = group.into_iter().partition(|change| change.shared());
    // The group's last transaction is the durable one (it makes every earlier one durable
    // too); only when that one rolls back does the group need a flush of its own.
    let last_alone = if together.is_empty() { alone.len() } else { usize::MAX };
    let mut committed = Vec::new();
    let mut unflushed = false;
    for (index, change) in alone.into_iter().enumerate() {
        let durable = index + 1 == last_alone;
        if let Some(done) = apply(shared, change, durable) {
            committed.push(done);
            unflushed = !durable;
        }
    }
    if !together.is_empty() {
        let done = apply_together(shared, together);
        unflushed &= done.is_empty();
        committed.extend(done);
    }
    if committed.is_empty() {
        return;
    }
    let flushed = if unflushed { shared.engine.flush() } else { Ok(()) };
    match flushed {
        Ok(()) => {
            for done in committed {
                for event in done.events {
                    // No receivers is fine: nobody is waiting for events right now.
                    let _ = shared.events.send(event);
                }
                if let Some(wake) = shared.wake_endpoint.get() {
                    done.woken.iter().for_each(|endpoint| wake(endpoint));
                }
                (done.reply)(None);
            }
        }
        Err(error) => {
            tracing::error!(%error, changes = committed.len(), "store flush failed; the changes are not durable");
            shared.failed("flush", &error);
            let message = error.to_string();
            for done in committed {
                (done.reply)(Some(StoreError::NotDurable(message.clone())));
            }
        }
    }
}

/// Runs one change in its own transaction, committed with a flush when `durable`, else
/// without (a later commit of the group flushes it).
fn apply(shared: &Shared, change: Box<dyn Change>, durable: bool) -> Option<Committed> {
    let raw = match shared.engine.begin_write(durable) {
        Ok(raw) => raw,
        Err(error) => {
            shared.failed("begin a write", &error);
            change.refuse(error);
            return None;
        }
    };
    if let Some(refusal) = fenced_out(raw.as_ref(), change.as_ref()) {
        change.refuse(refusal);
        return None;
    }
    let mut tx = Tx {
        raw,
        key: &shared.key,
        clock: shared.clock,
        events: Vec::new(),
        woken: BTreeSet::new(),
    };
    let applied = match catch_unwind(AssertUnwindSafe(|| change.apply(&mut tx))) {
        Ok(applied) => applied,
        Err(_) => {
            // Unwinding dropped the change's reply, which tells its caller; the transaction
            // rolls back when `tx` drops.
            tracing::error!("a store change panicked; it was rolled back");
            return None;
        }
    };
    let Tx { raw, events, woken, .. } = tx;
    if !applied.commit {
        drop(raw);
        (applied.reply)(None);
        return None;
    }
    match raw.commit(&woken) {
        Ok(()) => Some(Committed {
            reply: applied.reply,
            events,
            woken,
        }),
        Err(error) => {
            shared.failed("commit", &error);
            (applied.reply)(Some(error));
            None
        }
    }
}

/// Runs shared changes in one transaction, the group's last, committed with a flush: all of
/// them commit, or (when one fails, which means the store failed, or panics) none does.
fn apply_together(shared: &Shared, changes: Vec<Box<dyn Change>>) -> Vec<Committed> {
    if changes.is_empty() {
        return Vec::new();
    }
    let raw = match shared.engine.begin_write(true) {
        Ok(raw) => raw,
        Err(error) => {
            shared.failed("begin a write", &error);
            let message = error.to_string();
            changes
                .into_iter()
                .for_each(|change| change.refuse(StoreError::GroupFailed(message.clone())));
            return Vec::new();
        }
    };
    let mut tx = Tx {
        raw,
        key: &shared.key,
        clock: shared.clock,
        events: Vec::new(),
        woken: BTreeSet::new(),
    };
    let mut replies = Vec::with_capacity(changes.len());
    let mut failure = None;
    for change in changes {
        if failure.is_some() {
            change.refuse(StoreError::GroupFailed(
                "another change in its transaction failed".into(),
            ));
            continue;
        }
        // Refused before it wrote anything: the others go on (unless the check itself failed,
        // which aborted the transaction).
        match fenced_out(tx.raw.as_ref(), change.as_ref()) {
            None => {}
            Some(refusal @ StoreError::Fenced(_)) => {
                change.refuse(refusal);
                continue;
            }
            Some(error) => {
                change.refuse(StoreError::GroupFailed(error.to_string()));
                failure = Some("checking a lease failed".to_owned());
                continue;
            }
        }
        match catch_unwind(AssertUnwindSafe(|| change.apply(&mut tx))) {
            Ok(applied) if applied.commit => replies.push(applied.reply),
            Ok(applied) => {
                // Its own reply carries its own error.
                (applied.reply)(None);
                failure = Some("a change in the same transaction failed".to_owned());
            }
            Err(_) => {
                tracing::error!("a store change panicked; its transaction was rolled back");
                failure = Some("a change in the same transaction failed unexpectedly".to_owned());
            }
        }
    }
    let Tx { raw, events, woken, .. } = tx;
    let outcome = match failure {
        Some(reason) => Err(StoreError::GroupFailed(reason)),
        None => raw.commit(&woken).inspect_err(|error| {
            shared.failed("commit", error);
        }),
    };
    match outcome {
        Ok(()) => {
            // Events and wake-ups of the whole transaction go out with its first reply.
            let mut replies = replies.into_iter();
            let first = replies.next().map(|reply| Committed { reply, events, woken });
            first
                .into_iter()
                .chain(replies.map(|reply| Committed {
                    reply,
                    events: Vec::new(),
                    woken: BTreeSet::new(),
                }))
                .collect()
        }
        Err(error) => {
            let message = error.to_string();
            for reply in replies {
                reply(Some(StoreError::GroupFailed(message.clone())));
            }
            Vec::new()
        }
    }
}

/// Why `change` may not commit in `raw`'s transaction: its fence's lease is no longer this
/// node's (or could not be checked).
fn fenced_out(raw: &dyn super::raw::RawWrite, change: &dyn Change) -> Option<StoreError> {
    let fence = change.fence()?;
    match raw.holds(fence) {
        Ok(true) => None,
        Ok(false) => {
            tracing::warn!(org_id = %fence.org_id, generation = fence.generation, "refused a write: this node no longer holds the organization's lease");
            Some(StoreError::Fenced(fence.org_id.clone()))
        }
        Err(error) => Some(error),
    }
}
