//! The store's behaviour, on both engines: each test in `both_engines!` runs on a redb file
//! and on a fresh PostgreSQL database (when `FLUXD_TEST_POSTGRES_URL` names a server; without
//! it the PostgreSQL half says loudly that it did not run).

use super::*;
use crate::auth::records::OrganizationRecord;

/// Where a test's store lives; the temp dir (embedded) lives as long as this.
struct At {
    location: Location,
    _dir: tempfile::TempDir,
}

impl At {
    fn embedded() -> At {
        let dir = tempfile::tempdir().unwrap();
        At {
            location: Location::Embedded(dir.path().to_owned()),
            _dir: dir,
        }
    }

    /// A new, empty database on the test server, or `None` (said loudly) without one.
    fn postgres(test: &str) -> Option<At> {
        let Ok(server) = std::env::var("FLUXD_TEST_POSTGRES_URL") else {
            eprintln!(
                "*** SKIPPED {test} on PostgreSQL: FLUXD_TEST_POSTGRES_URL is not set (.ci/postgres starts a server) ***"
            );
            return None;
        };
        let name = format!("fluxd_unit_{}", uuid::Uuid::new_v4().simple());
        let mut admin = ::postgres::Client::connect(&server, ::postgres::NoTls).unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let mut url = url::Url::parse(&server).unwrap();
        url.set_path(&name);
        Some(At {
            location: Location::Postgres(url.to_string()),
            _dir: tempfile::tempdir().unwrap(),
        })
    }

    fn open(&self, key: &MasterKey) -> Result<Store, StoreError> {
        Store::open_at(
            &self.location,
            key.clone(),
            &format!("node_{}", uuid::Uuid::new_v4().simple()),
        )
    }
}

/// Runs each test body on both engines: `fn name(at: At) { … }` becomes `name::embedded` and
/// `name::postgres`.
macro_rules! both_engines {
    ($(#[$attr:meta])* fn $name:ident($at:ident) $body:block) => {
        mod $name {
            use super::*;
            fn run($at: At) $body
            $(#[$attr])*
            fn embedded() {
                run(At::embedded())
            }
            $(#[$attr])*
            fn postgres() {
                if let Some(at) = At::postgres(stringify!($name)) {
                    run(at)
                }
            }
        }
    };
}

fn open_temp() -> (At, Store, MasterKey) {
    let at = At::embedded();
    let key = MasterKey::generate();
    let store = at.open(&key).unwrap();
    (at, store, key)
}

fn open(at: &At) -> (Store, MasterKey) {
    let key = MasterKey::generate();
    (at.open(&key).unwrap(), key)
}

fn org(id: &str) -> OrganizationRecord {
    OrganizationRecord {
        id: id.into(),
        name: "n".into(),
        created_at: "t".into(),
    }
}

both_engines! {
#[test]
fn failed_change_commits_nothing(at) {
    let (store, _) = open(&at);
    let result: Result<(), StoreError> = store.write_blocking(|tx| {
        tx.put(&org("org_a"))?;
        Err(StoreError::WrongMasterKey)
    });
    assert!(result.is_err());
    assert_eq!(store.read(|rx| rx.get::<OrganizationRecord>("org_a")).unwrap(), None);
}
}

/// Every byte the store keeps: the file, or every table's rows.
fn stored_bytes(at: &At) -> Vec<u8> {
    match &at.location {
        Location::Embedded(dir) => std::fs::read(dir.join(DB_FILE)).unwrap(),
        Location::Postgres(url) => {
            let mut client = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
            let mut bytes = Vec::new();
            for table in RECORD_TABLES {
                let sql = format!("SELECT key, body FROM {}", redb::TableHandle::name(&table));
                for row in client.query(&sql, &[]).unwrap() {
                    bytes.extend(row.get::<_, String>(0).into_bytes());
                    bytes.extend(row.get::<_, Vec<u8>>(1));
                }
            }
            bytes
        }
    }
}

both_engines! {
#[test]
fn secrets_are_sealed_at_rest_and_survive_reopen_and_key_rotation(at) {
    let (store, key) = open(&at);
    let plaintext = "whsec_plaintext_marker_0123456789";
    store
        .write_blocking(move |tx| tx.put_secret("wh_1", "signing", &Secret::new(plaintext)))
        .unwrap();
    drop(store);
    let bytes = stored_bytes(&at);
    assert!(bytes.windows(6).any(|w| w == b"wh_1/s"), "the secret's row was read");
    assert!(!bytes.windows(plaintext.len()).any(|w| w == plaintext.as_bytes()));

    let store = at.open(&key).unwrap();
    let new_key = MasterKey::generate();
    assert_eq!(store.rotate_master_key(&new_key).unwrap(), 1);
    drop(store);
    assert!(matches!(at.open(&key), Err(StoreError::WrongMasterKey)));
    let store = at.open(&new_key).unwrap();
    let secret = store.read(|rx| rx.secret("wh_1", "signing")).unwrap().unwrap();
    assert_eq!(secret.expose(), plaintext);
}
}

both_engines! {
#[test]
fn a_wrong_master_key_is_refused_at_open(at) {
    drop(open(&at));
    assert!(matches!(at.open(&MasterKey::generate()), Err(StoreError::WrongMasterKey)));
}
}

both_engines! {
#[test]
fn index_scans_respect_prefix_and_limit(at) {
    let (store, _) = open(&at);
    store
        .write_blocking(|tx| {
            for key in ["a/1", "a/2", "a/3", "b/1"] {
                tx.index_insert(IndexTable::MappingJobs, key)?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let keys = store
        .read(|rx| rx.index_keys(IndexTable::MappingJobs, "a/", 2))
        .unwrap();
    assert_eq!(keys, vec!["a/1", "a/2"]);
    let keys = store
        .read(|rx| rx.index_keys(IndexTable::MappingJobs, "b/", 10))
        .unwrap();
    assert_eq!(keys, vec!["b/1"]);
    assert_eq!(store.read(|rx| rx.index_count(IndexTable::MappingJobs, "a/")).unwrap(), 3);
    assert_eq!(store.read(|rx| rx.index_count(IndexTable::MappingJobs, "")).unwrap(), 4);
}
}

both_engines! {
#[test]
fn pages_continue_after_the_last_key_and_records_list_in_id_order(at) {
    let (store, _) = open(&at);
    store
        .write_blocking(|tx| {
            for id in ["org_c", "org_a", "org_b", "org_ab"] {
                tx.put(&org(id))?;
                tx.index_org(OrgKind::Member, "org_x", id)?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let ids: Vec<String> = store
        .read(|rx| rx.list::<OrganizationRecord>())
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(ids, ["org_a", "org_ab", "org_b", "org_c"]);
    assert_eq!(store.read(|rx| rx.count::<OrganizationRecord>()).unwrap(), 4);
    let page = store
        .read(|rx| rx.keys_after(ORGANIZATIONS, "org_a", Some("org_a"), 10))
        .unwrap();
    assert_eq!(page, ["org_ab"]);
    let page = store
        .read(|rx| rx.org_ids(OrgKind::Member, "org_x", Some("org_a"), 2))
        .unwrap();
    assert_eq!(page, ["org_ab", "org_b"]);
    let removed = store
        .write_blocking(|tx| tx.remove::<OrganizationRecord>("org_b"))
        .unwrap();
    assert_eq!(removed.map(|o| o.id).as_deref(), Some("org_b"));
    assert_eq!(store.read(|rx| rx.count::<OrganizationRecord>()).unwrap(), 3);
}
}

both_engines! {
#[test]
fn events_broadcast_only_after_commit(at) {
    let (store, _) = open(&at);
    let mut events = store.subscribe_events();
    let _: Result<(), StoreError> = store.write_blocking(|tx| {
        crate::events::emit(
            tx,
            "org_1",
            crate::events::EventType::MappingCreated,
            serde_json::json!({}),
        )?;
        Err(StoreError::WrongMasterKey)
    });
    assert!(events.try_recv().is_err(), "aborted change broadcast nothing");
    store
        .write_blocking(|tx| {
            crate::events::emit(
                tx,
                "org_1",
                crate::events::EventType::MappingCreated,
                serde_json::json!({}),
            )
        })
        .unwrap();
    assert_eq!(
        events.try_recv().unwrap().event_type,
        crate::events::EventType::MappingCreated
    );
}
}

both_engines! {
#[test]
fn reverse_index_scans_start_from_the_end_or_before_a_key(at) {
    let (store, _) = open(&at);
    store
        .write_blocking(|tx| {
            for key in ["a/1", "a/2", "a/3", "b/1"] {
                tx.index_insert(IndexTable::MappingJobs, key)?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let newest = store
        .read(|rx| rx.index_keys_rev(IndexTable::MappingJobs, "a/", None, 2))
        .unwrap();
    assert_eq!(newest, vec!["a/3", "a/2"]);
    let older = store
        .read(|rx| rx.index_keys_rev(IndexTable::MappingJobs, "a/", Some("a/2"), 10))
        .unwrap();
    assert_eq!(older, vec!["a/1"]);
}
}

both_engines! {
#[test]
fn concurrent_changes_commit_independently_in_groups(at) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(concurrent_changes(at));
}
}

async fn concurrent_changes(at: At) {
    let (store, key) = open(&at);
    // A hundred writers at once: the writer groups them, yet each commits or rolls back alone.
    let writes = (0..100).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write(move |tx| {
                    tx.put(&org(&format!("org_{n:03}")))?;
                    if n % 10 == 0 {
                        return Err(StoreError::WrongMasterKey);
                    }
                    Ok(())
                })
                .await
        })
    });
    let results = futures::future::join_all(writes).await;
    let failed = results.iter().filter(|r| r.as_ref().unwrap().is_err()).count();
    assert_eq!(failed, 10);
    // A change that panics is rolled back and reported; the writer carries on.
    let panicked: Result<(), StoreError> = store
        .write(|tx| {
            tx.put(&org("org_panic"))?;
            panic!("deliberate");
        })
        .await;
    assert!(matches!(panicked, Err(StoreError::ChangePanicked)));
    store.write(|tx| tx.put(&org("org_after"))).await.unwrap();
    // Everything acknowledged is durable: it is there after reopening.
    drop(store);
    let store = at.open(&key).unwrap();
    let orgs = store.read(|rx| rx.list::<OrganizationRecord>()).unwrap();
    assert_eq!(orgs.len(), 91, "90 committed writes and the one after the panic");
    assert!(orgs.iter().all(|o| o.id != "org_panic" && o.id != "org_000"));
}

#[test]
fn the_database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let (at, _store, _) = open_temp();
    let Location::Embedded(dir) = &at.location else {
        unreachable!()
    };
    let mode = std::fs::metadata(dir.join(DB_FILE)).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn opening_a_version_1_store_derives_sync_states_and_the_indexes_of_later_versions() {
    let (at, store, key) = open_temp();
    // Records as version 1 stored them, and no version 2 bookkeeping.
    store
        .write_blocking(|tx| {
            let raw = |tx: &mut Tx<'_>, table: BytesTable, key: &str, json: &str| {
                tx.raw.raw_insert(table, key, json.as_bytes())
            };
            raw(
                tx,
                CONNECTIONS,
                "conn_1",
                r#"{"id":"conn_1","org_id":"org_a","provider":"hubspot","account_id":"62515"}"#,
            )?;
            raw(
                tx,
                MAPPINGS,
                "map_1",
                r#"{"id":"map_1","org_id":"org_a","spec":{"source":{"connection":"conn_1"},"target":{"connection":"conn_2"}}}"#,
            )?;
            raw(
                tx,
                SYNC_JOBS,
                "job_1",
                r#"{"id":"job_1","mapping_id":"map_1","status":"completed"}"#,
            )?;
            raw(
                tx,
                SYNC_JOBS,
                "job_2",
                r#"{"id":"job_2","mapping_id":"map_1","status":"running"}"#,
            )?;
            raw(
                tx,
                MEMBERS,
                "mem_2",
                r#"{"id":"mem_2","org_id":"org_b","principal_id":"mem_1","email":"a@example.com"}"#,
            )?;
            raw(
                tx,
                MEMBERS,
                "mem_1",
                r#"{"id":"mem_1","org_id":"org_a","email":"a@example.com"}"#,
            )?;
            tx.set_meta("schema_version", &1u32.to_be_bytes())
        })
        .unwrap();
    drop(store);
    let store = at.open(&key).unwrap();
    assert_eq!(store.read(|rx| rx.org_count(OrgKind::Connection, "org_a")).unwrap(), 1);
    assert_eq!(store.read(|rx| rx.org_count(OrgKind::Mapping, "org_a")).unwrap(), 1);
    assert_eq!(store.read(|rx| rx.org_count(OrgKind::Mapping, "org_b")).unwrap(), 0);
    let state = store
        .read(|rx| rx.get::<crate::syncs::records::SyncStateRecord>("map_1"))
        .unwrap()
        .unwrap();
    assert_eq!(state.active_job.as_deref(), Some("job_2"));
    assert_eq!(state.last_job.as_deref(), Some("job_1"));
    assert!(state.succeeded_once);
    // Version 3: connections by account, mappings by connection.
    let keys = |index, prefix: &str| store.read(|rx| rx.index_keys(index, prefix, 10)).unwrap();
    assert_eq!(keys(IndexTable::Accounts, "hubspot/62515/"), ["hubspot/62515/conn_1"]);
    assert_eq!(keys(IndexTable::ConnectionMappings, "conn_1/"), ["conn_1/map_1"]);
    assert_eq!(keys(IndexTable::ConnectionMappings, "conn_2/"), ["conn_2/map_1"]);
    // Version 5: a person's memberships (a member without a principal is its own).
    assert_eq!(
        keys(IndexTable::PrincipalMembers, "mem_1/"),
        ["mem_1/mem_1", "mem_1/mem_2"]
    );
}

/// Two nodes on one PostgreSQL database.
fn two_nodes(test: &str) -> Option<(At, Store, Store)> {
    let at = At::postgres(test)?;
    let key = MasterKey::generate();
    let first = at.open(&key).unwrap();
    let second = at.open(&key).unwrap();
    Some((at, first, second))
}

#[test]
fn nodes_on_one_database_see_each_others_writes_and_wakeups() {
    let Some((_at, first, second)) = two_nodes("nodes_on_one_database_see_each_others_writes_and_wakeups") else {
        return;
    };
    first.write_blocking(|tx| tx.put(&org("org_1"))).unwrap();
    assert!(
        second
            .read(|rx| rx.get::<OrganizationRecord>("org_1"))
            .unwrap()
            .is_some()
    );
    let (woke, heard) = std::sync::mpsc::channel();
    second.set_wake_endpoint_hook(move |endpoint| {
        let _ = woke.send(endpoint.to_owned());
    });
    first
        .write_blocking(|tx| {
            tx.after_commit_wake("wh_1");
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let endpoint = heard.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    assert_eq!(endpoint, "wh_1");
    // Nothing from a rolled-back change.
    let _: Result<(), StoreError> = first.write_blocking(|tx| {
        tx.after_commit_wake("wh_2");
        Err(StoreError::WrongMasterKey)
    });
    first
        .write_blocking(|tx| {
            tx.after_commit_wake("wh_3");
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert_eq!(heard.recv_timeout(std::time::Duration::from_secs(10)).unwrap(), "wh_3");
}

#[test]
fn read_modify_write_changes_from_two_nodes_lose_no_update() {
    let Some((_at, first, second)) = two_nodes("read_modify_write_changes_from_two_nodes_lose_no_update") else {
        return;
    };
    first
        .write_blocking(|tx| tx.set_meta("counter", &0u64.to_be_bytes()))
        .unwrap();
    let bump = |store: Store| {
        std::thread::spawn(move || {
            for _ in 0..50 {
                store
                    .write_blocking(|tx| {
                        let now = tx
                            .meta("counter")?
                            .map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap()));
                        tx.set_meta("counter", &(now + 1).to_be_bytes())
                    })
                    .unwrap();
            }
        })
    };
    let (a, b) = (bump(first.clone()), bump(second));
    a.join().unwrap();
    b.join().unwrap();
    let counter = first.read(|rx| rx.meta("counter")).unwrap().unwrap();
    assert_eq!(u64::from_be_bytes(counter.try_into().unwrap()), 100);
}
