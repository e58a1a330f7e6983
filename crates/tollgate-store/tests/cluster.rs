//! What cluster nodes rely on: notifications pushed to a second handle, a full resync, a node's
//! own commits published without reading them back, a store opened lazily while unreachable
//! that catches up once it answers, and the state's documents round-tripping through the
//! local cache form.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::TestStore;
use tollgate_store::{Change, Feed, Policies, State, Store, StoreError, Writer};

fn service(name: &str) -> Change {
    Change::Put {
        kind: "service".into(),
        key: name.into(),
        body: format!("{{\"name\":\"{name}\",\"targets\":[{{\"url\":\"http://127.0.0.1:1\"}}]}}"),
    }
}

async fn wait_for(feed: &Feed, revision: i64) -> Duration {
    let started = std::time::Instant::now();
    let mut states = feed.subscribe();
    while feed.current().revision < revision {
        tokio::time::timeout(Duration::from_secs(5), states.changed())
            .await
            .expect("change not seen within 5 s")
            .unwrap();
    }
    started.elapsed()
}

#[tokio::test]
async fn postgres_notifications_reach_another_node_without_polling() {
    let t = TestStore::postgres().await;
    let writer = t.open().await;
    let reader = Feed::open(t.open().await).await.unwrap();
    // An hour between polls: only the notification (or the resync when the listener
    // connects) can bring the change in.
    let _watch = reader.watch(Duration::from_secs(3600));
    tokio::time::timeout(Duration::from_secs(5), async {
        while reader.health().listening != Some(true) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("listener up");
    let revision = writer.commit(0, &[service("a")], &[]).await.unwrap();
    wait_for(&reader, revision).await;
    assert!(reader.current().services.contains_key("a"));
    let health = reader.health();
    assert!(health.reachable);
    assert_eq!(health.revision, revision);
    assert!(health.notifications >= 1, "{health:?}");
    assert!(health.resyncs >= 1, "the listener resyncs when it connects");
    t.drop_it().await;
}

async fn wait_listening(feed: &Feed) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while feed.health().listening != Some(true) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("listener up");
}

#[tokio::test]
async fn postgres_a_nodes_own_commits_are_not_read_back() {
    let t = TestStore::postgres().await;
    let feed = Feed::open(t.open().await).await.unwrap();
    let _watch = feed.watch(Duration::from_secs(3600));
    wait_listening(&feed).await;
    let before = feed.health();
    for i in 0..10 {
        // As the admin API's write path does: commit, then publish what was committed.
        let base = feed.current();
        let mut writer = Writer::new(&base, "tester");
        let policy = serde_json::from_value(serde_json::json!({
            "name": "response-headers", "config": {"set": {"x-rev": i.to_string()}}
        }))
        .unwrap();
        writer
            .upsert::<Policies>("response-headers".into(), policy, None)
            .unwrap();
        let prepared = writer.finish();
        let store = feed.store();
        let revision = store
            .commit(prepared.base_revision, &prepared.changes, &prepared.audit)
            .await
            .unwrap();
        let mut state = prepared.state;
        state.revision = revision;
        feed.install(Arc::new(state));
        tokio::time::timeout(Duration::from_secs(5), async {
            while feed.health().notifications < before.notifications + i + 1 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the notification of the node's own commit arrives");
    }
    // Let a read the last notification started finish.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = feed.health();
    assert_eq!(after.revision, before.revision + 10);
    assert_eq!(after.reads, before.reads, "{after:?}");
    t.drop_it().await;
}

#[tokio::test]
async fn postgres_committed_here_waits_for_the_commit_in_flight() {
    let t = TestStore::postgres().await;
    let store = t.open().await;
    let other = t.open().await;
    // Another session holds the revision's row, so the commit waits at its bump.
    let mut blocker = store.pool().begin().await.unwrap();
    sqlx::query("SELECT revision FROM store_state WHERE id = 1 FOR UPDATE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let committing = tokio::spawn({
        let store = store.clone();
        async move { store.commit(0, &[service("a")], &[]).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let asked = tokio::spawn({
        let store = store.clone();
        async move { store.committed_here(1).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !asked.is_finished(),
        "answered before the commit in flight ended"
    );
    assert!(
        !other.committed_here(1).await,
        "another handle commits nothing"
    );
    blocker.rollback().await.unwrap();
    assert_eq!(committing.await.unwrap().unwrap(), 1);
    assert!(
        asked.await.unwrap(),
        "revision 1 was committed through this handle"
    );
    assert!(!other.committed_here(1).await);
    t.drop_it().await;
}

#[tokio::test]
async fn postgres_lazy_store_serves_the_cached_state_then_catches_up() {
    let t = TestStore::postgres().await;
    let store = t.open().await;
    store.commit(0, &[service("a")], &[]).await.unwrap();
    let cached = Feed::open(t.open().await).await.unwrap().current();
    let r2 = store.commit(1, &[service("b")], &[]).await.unwrap();

    // A node started while the store was unreachable, from its cache at revision 1.
    let lazy = Store::open_lazy(&t.url).unwrap();
    let error = StoreError::Timeout(Duration::from_secs(5));
    let feed = Feed::from_cache(lazy, (*cached).clone(), &error);
    let health = feed.health();
    assert!(health.from_cache && !health.reachable, "{health:?}");
    assert_eq!(feed.current().revision, 1);

    let state = feed.refresh().await.unwrap();
    assert_eq!(state.revision, r2);
    assert!(state.services.contains_key("b"));
    let health = feed.health();
    assert!(
        health.reachable && !health.from_cache && health.error.is_none(),
        "{health:?}"
    );
    t.drop_it().await;
}

#[tokio::test]
async fn an_unreachable_store_is_reported_and_the_state_kept() {
    // Nothing listens on port 1.
    let lazy = Store::open_lazy("postgres://nobody@127.0.0.1:1/none").unwrap();
    let feed = Feed::from_cache(lazy, State::default(), &StoreError::Timeout(Duration::ZERO));
    let err = feed.refresh().await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    let health = feed.health();
    assert!(!health.reachable);
    assert_eq!(health.errors, 2);
    assert!(health.unreachable_since.is_some());
    assert!(health.error.unwrap().contains("127.0.0.1:1") || err.to_string().contains("within"));
    assert!(
        Store::open_lazy("sqlite:/tmp/x.db").is_err(),
        "only PostgreSQL can be opened lazily"
    );
}

async fn documents_round_trip(t: TestStore) {
    let store = t.open().await;
    store
        .commit(0, &[service("a"), service("b")], &[])
        .await
        .unwrap();
    store
        .commit(
            1,
            &[Change::Delete {
                kind: "service".into(),
                key: "a".into(),
            }],
            &[],
        )
        .await
        .unwrap();
    let loaded = store.load_all().await.unwrap();
    let state = State::from_loaded(&loaded).unwrap();
    let docs = state.to_loaded().unwrap();
    assert_eq!(docs.revision, loaded.revision);
    let keys = |l: &tollgate_store::Loaded| {
        l.docs
            .iter()
            .map(|d| {
                (
                    d.kind.clone(),
                    d.key.clone(),
                    d.revision,
                    d.created_at,
                    d.updated_at,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&docs), keys(&loaded));
    let again = State::from_loaded(&docs).unwrap();
    assert_eq!(again.services, state.services);
    assert_eq!(again.to_loaded().unwrap().docs, docs.docs);
    t.drop_it().await;
}

#[tokio::test]
async fn sqlite_documents_round_trip() {
    documents_round_trip(TestStore::sqlite().await).await;
}

#[tokio::test]
async fn postgres_documents_round_trip() {
    documents_round_trip(TestStore::postgres().await).await;
}
