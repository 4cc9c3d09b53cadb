//! One actor per mapping: owns its schedule, triggers syncs (a trigger while a sync runs joins
//! that sync), reloads on update, pauses while inactive, and keeps the next run time in the
//! store so a restart resumes the schedule (a run missed while down happens at start).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};

use super::records::MappingRecord;
use super::schedule::Schedule;
use crate::actors::ChildFactory;
use crate::actors::supervisor::{spawn_child, stored_ids};
use crate::events::rfc3339;
use crate::store::{Reader, StoreError};
use crate::syncs::SyncRuntime;
use crate::syncs::records::Trigger;

/// Messages to a [`MappingActor`].
#[derive(Debug)]
pub enum MappingMsg {
    /// The mapping changed (updated, activated, deactivated).
    Reload,
    /// The scheduled time may have come.
    Tick,
}

pub struct MappingActor {
    syncs: Arc<SyncRuntime>,
}

pub struct MappingState {
    id: String,
    /// What the schedule needs of the stored mapping (not the whole spec: a daemon keeps
    /// thousands of these actors).
    record: Option<Scheduled>,
    timer: Option<JoinHandle<Result<(), ractor::MessagingErr<MappingMsg>>>>,
}

/// The scheduling view of a stored mapping.
#[derive(Clone)]
struct Scheduled {
    id: String,
    org_id: String,
    active: bool,
    schedule: Option<String>,
    next_run_at: Option<String>,
}

impl From<MappingRecord> for Scheduled {
    fn from(record: MappingRecord) -> Scheduled {
        Scheduled {
            id: record.id,
            org_id: record.org_id,
            active: record.active,
            schedule: record.spec.schedule,
            next_run_at: record.next_run_at,
        }
    }
}

impl MappingActor {
    fn load(&self, state: &mut MappingState) -> Result<(), StoreError> {
        let id = state.id.clone();
        state.record = self
            .syncs
            .store
            .read(|rx| rx.get::<MappingRecord>(&id))?
            .map(Scheduled::from);
        Ok(())
    }

    /// Arms the timer for the stored next run (now if it is overdue).
    fn arm(&self, myself: &ActorRef<MappingMsg>, state: &mut MappingState) {
        if let Some(timer) = state.timer.take() {
            timer.abort();
        }
        let Some(record) = state.record.as_ref().filter(|r| r.active) else {
            return;
        };
        let Some(next) = record
            .next_run_at
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        else {
            return;
        };
        let wait = next
            .duration_since(self.syncs.store.clock().now())
            .as_secs_f64()
            .max(0.0);
        state.timer = Some(myself.send_after(Duration::from_secs_f64(wait), || MappingMsg::Tick));
    }

    async fn tick(&self, state: &mut MappingState) -> Result<(), ActorProcessingErr> {
        let Some(record) = state.record.clone().filter(|r| r.active) else {
            return Ok(());
        };
        let due = record
            .next_run_at
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .is_none_or(|t| t <= self.syncs.store.clock().now());
        if !due {
            return Ok(());
        }
        let schedule = match record.schedule.as_deref().map(Schedule::parse) {
            Some(Ok(schedule)) => Some(schedule),
            Some(Err(error)) => {
                // Stored by an older fluxd that accepted it: stop the schedule rather than
                // firing in a loop; updating the mapping with a valid schedule restarts it.
                tracing::warn!(mapping_id = %record.id, %error, "the mapping's schedule no longer parses; it stays paused until the schedule is fixed");
                None
            }
            None => None,
        };
        if schedule.is_some() {
            match self
                .syncs
                .start(&record.org_id, &record.id, false, true, Trigger::Schedule)
                .await
            {
                Ok(job) => tracing::info!(mapping_id = %record.id, job_id = %job.id, "scheduled sync triggered"),
                Err(error) => tracing::warn!(mapping_id = %record.id, %error, "scheduled sync could not start"),
            }
        }
        let next = schedule
            .and_then(|schedule| schedule.next_after(self.syncs.store.clock().now()))
            .map(rfc3339);
        let id = record.id.clone();
        state.record = self
            .syncs
            .store
            .write(move |tx| {
                let Some(mut current) = tx.get::<MappingRecord>(&id)? else {
                    return Ok::<_, StoreError>(None);
                };
                current.next_run_at = next;
                tx.put(&current)?;
                Ok(Some(Scheduled::from(current)))
            })
            .await?;
        Ok(())
    }
}

impl Actor for MappingActor {
    type Msg = MappingMsg;
    type State = MappingState;
    type Arguments = String;

    async fn pre_start(&self, myself: ActorRef<MappingMsg>, id: String) -> Result<MappingState, ActorProcessingErr> {
        let mut state = MappingState {
            id,
            record: None,
            timer: None,
        };
        self.load(&mut state)?;
        self.arm(&myself, &mut state);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<MappingMsg>,
        message: MappingMsg,
        state: &mut MappingState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            MappingMsg::Reload => self.load(state)?,
            MappingMsg::Tick => self.tick(state).await?,
        }
        self.arm(&myself, state);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<MappingMsg>,
        state: &mut MappingState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.timer.take() {
            timer.abort();
        }
        Ok(())
    }
}

/// Starts one [`MappingActor`] per stored mapping.
pub struct MappingFactory {
    pub syncs: Arc<SyncRuntime>,
}

impl ChildFactory for MappingFactory {
    fn kind(&self) -> &'static str {
        "mapping"
    }

    fn initial_ids(&self) -> Vec<String> {
        stored_ids::<MappingRecord>(&self.syncs.store, "mapping")
    }

    fn spawn(&self, id: String, supervisor: ActorCell) -> BoxFuture<'static, Result<ActorCell, SpawnErr>> {
        let actor = MappingActor {
            syncs: self.syncs.clone(),
        };
        spawn_child(actor, id, supervisor)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::actors::{ActorTree, Directory, Factories, NoChildren, start_tree};
    use crate::clock::Clock;
    use crate::connections::ConnectionRuntime;
    use crate::crypto::MasterKey;
    use crate::mappings::service::MappingRuntime;
    use crate::store::Store;
    use crate::syncs::{SyncJobRecord, SyncSettings};

    /// A daemon's mapping side on paused time, with one mapping on `schedule` whose next run
    /// is `first_run` from now. Its syncs fail at once (its connections do not exist), which
    /// is enough to see when the schedule starts them.
    async fn scheduled(schedule: &str, first_run: Duration) -> (tempfile::TempDir, Store, ActorTree) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_on_caller(
            dir.path(),
            MasterKey::generate(),
            Clock::following_tokio(whole_second()),
        )
        .unwrap();
        let directory = Directory::default();
        let connections = Arc::new(ConnectionRuntime {
            store: store.clone(),
            http: ConnectionRuntime::http_client().unwrap(),
            apps: Default::default(),
            redirect_uri: "http://127.0.0.1:9/oauth/callback".into(),
            directory: directory.clone(),
            refresh_locks: Default::default(),
            metrics: Default::default(),
        });
        let syncs = SyncRuntime::new(
            store.clone(),
            Arc::new(MappingRuntime::new(connections)),
            SyncSettings {
                max_parallel: 1,
                confirm_threshold: 0,
            },
            crate::metrics::Metrics::new(),
            crate::cluster::Ownership::default(),
        );
        let spec: crate::mappings::MappingSpec = crate::mappings::spec::parse_file(&format!(
            "name: m\nsource: {{connection: conn_a, object: contacts}}\ntarget: {{connection: conn_b, object: clients}}\nfieldPairs:\n  - {{sourceField: email, targetField: email}}\nschedule: \"{schedule}\"\n"
        ))
        .unwrap();
        let record = MappingRecord {
            id: "map_1".into(),
            org_id: "org_1".into(),
            spec,
            active: true,
            created_at: rfc3339(store.clock().now()),
            updated_at: rfc3339(store.clock().now()),
            next_run_at: Some(rfc3339(
                store.clock().now() + jiff::SignedDuration::try_from(first_run).unwrap(),
            )),
        };
        store.write(move |tx| tx.put(&record)).await.unwrap();
        let tree = start_tree(
            Factories {
                connections: Arc::new(NoChildren("connection")),
                mappings: Arc::new(MappingFactory { syncs }),
                webhook_endpoints: Arc::new(NoChildren("webhook endpoint")),
            },
            directory,
        )
        .await
        .unwrap();
        (dir, store, tree)
    }

    fn jobs(store: &Store) -> usize {
        store.read(|rx| rx.list::<SyncJobRecord>()).unwrap().len()
    }

    /// Now, to the second: stored times have second precision, so the clock starts on one.
    fn whole_second() -> jiff::Timestamp {
        jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn an_interval_schedule_starts_a_sync_at_each_interval() {
        let (_dir, store, tree) = scheduled("10s", Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(9_990)).await;
        assert_eq!(jobs(&store), 0, "not before the first run");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(jobs(&store), 1, "the first run at 10 s");
        tokio::time::sleep(Duration::from_millis(9_980)).await;
        assert_eq!(jobs(&store), 1);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(jobs(&store), 2, "the second at 20 s");
        tree.shutdown(Duration::from_secs(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_schedule_that_no_longer_parses_pauses_instead_of_firing_in_a_loop() {
        let (_dir, store, tree) = scheduled("every now and then", Duration::ZERO).await;
        tokio::time::sleep(Duration::from_secs(3_600)).await;
        assert_eq!(jobs(&store), 0);
        let mapping = store.read(|rx| rx.get::<MappingRecord>("map_1")).unwrap().unwrap();
        assert_eq!(mapping.next_run_at, None, "the schedule is paused until fixed");
        tree.shutdown(Duration::from_secs(1)).await;
    }
}
