use super::*;
use crate::auth::records::OrganizationRecord;

fn open_temp() -> (tempfile::TempDir, Store, MasterKey) {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let store = Store::open(dir.path(), key.clone()).unwrap();
    (dir, store, key)
}

fn org(id: &str) -> OrganizationRecord {
    OrganizationRecord {
        id: id.into(),
        name: "n".into(),
        created_at: "t".into(),
    }
}

#[test]
fn failed_change_commits_nothing() {
    let (_dir, store, _) = open_temp();
    let result: Result<(), StoreError> = store.write_blocking(|tx| {
        tx.put(&org("org_a"))?;
        Err(StoreError::WrongMasterKey)
    });
    assert!(result.is_err());
    assert_eq!(store.read(|rx| rx.get::<OrganizationRecord>("org_a")).unwrap(), None);
}

#[test]
fn secrets_are_sealed_on_disk_and_survive_reopen_and_key_rotation() {
    let (dir, store, key) = open_temp();
    let plaintext = "whsec_plaintext_marker_0123456789";
    store
        .write_blocking(move |tx| tx.put_secret("wh_1", "signing", &Secret::new(plaintext)))
        .unwrap();
    drop(store);
    let bytes = std::fs::read(dir.path().join(DB_FILE)).unwrap();
    assert!(!bytes.windows(plaintext.len()).any(|w| w == plaintext.as_bytes()));

    let store = Store::open(dir.path(), key).unwrap();
    let new_key = MasterKey::generate();
    assert_eq!(store.rotate_master_key(&new_key).unwrap(), 1);
    drop(store);
    let store = Store::open(dir.path(), new_key).unwrap();
    let secret = store.read(|rx| rx.secret("wh_1", "signing")).unwrap().unwrap();
    assert_eq!(secret.expose(), plaintext);
}

#[test]
fn a_wrong_master_key_is_refused_at_open() {
    let (dir, store, _) = open_temp();
    drop(store);
    assert!(matches!(
        Store::open(dir.path(), MasterKey::generate()),
        Err(StoreError::WrongMasterKey)
    ));
}

#[test]
fn index_scans_respect_prefix_and_limit() {
    let (_dir, store, _) = open_temp();
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
}

#[test]
fn events_broadcast_only_after_commit() {
    let (_dir, store, _) = open_temp();
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

#[test]
fn reverse_index_scans_start_from_the_end_or_before_a_key() {
    let (_dir, store, _) = open_temp();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_commit_independently_in_groups() {
    let (dir, store, key) = open_temp();
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
    let store = Store::open(dir.path(), key).unwrap();
    let orgs = store.read(|rx| rx.list::<OrganizationRecord>()).unwrap();
    assert_eq!(orgs.len(), 91, "90 committed writes and the one after the panic");
    assert!(orgs.iter().all(|o| o.id != "org_panic" && o.id != "org_000"));
}

#[test]
fn the_database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, _store, _) = open_temp();
    let mode = std::fs::metadata(dir.path().join(DB_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn opening_a_version_1_store_derives_sync_states_and_the_indexes_of_later_versions() {
    let (dir, store, key) = open_temp();
    // Records as version 1 stored them, and no version 2 bookkeeping.
    store
        .write_blocking(|tx| {
            let raw = |tx: &mut Tx<'_>, table: BytesTable, key: &str, json: &str| {
                tx.txn.open_table(table)?.insert(key, json.as_bytes())?;
                Ok::<_, StoreError>(())
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
    let store = Store::open(dir.path(), key).unwrap();
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
