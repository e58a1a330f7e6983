//! The store on both engines: compare-and-swap commits, the change feed, the append-only audit
//! log, tokens, and refusing a schema newer than the binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestStore;
use tollgate_store::{AuditQuery, AuditRecord, Change, Feed, Role, StoreError, TokenRecord};

fn put(kind: &str, key: &str, body: &str) -> Change {
    Change::Put {
        kind: kind.into(),
        key: key.into(),
        body: body.into(),
    }
}

fn record(key: &str) -> AuditRecord {
    AuditRecord {
        actor: "tester".into(),
        action: "service.create".into(),
        kind: "service".into(),
        key: key.into(),
        before: None,
        after: Some(serde_json::json!({"name": key})),
    }
}

async fn commits_and_feed(t: TestStore) {
    let store = t.open().await;
    assert_eq!(store.revision().await.unwrap(), 0);
    let r1 = store
        .commit(
            0,
            &[put("note", "a", "{\"n\":1}"), put("note", "b", "{}")],
            &[record("a")],
        )
        .await
        .unwrap();
    assert_eq!(r1, 1);
    // A writer that prepared its change against revision 0 loses, and writes nothing.
    let err = store
        .commit(0, &[put("note", "c", "{}")], &[record("c")])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: 0,
                current: 1
            }
        ),
        "{err}"
    );
    let r2 = store
        .commit(
            1,
            &[
                Change::Delete {
                    kind: "note".into(),
                    key: "b".into(),
                },
                put("note", "a", "{\"n\":2}"),
            ],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r2, 2);
    let all = store.load_all().await.unwrap();
    assert_eq!(all.revision, 2);
    let keys: Vec<_> = all.docs.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys, ["a"], "deleted and refused objects are not listed");
    assert_eq!(all.docs[0].body.as_deref(), Some("{\"n\":2}"));
    let delta = store.load_since(1).await.unwrap();
    assert_eq!(delta.docs.len(), 2, "the update and the tombstone");
    assert!(delta.docs.iter().any(|d| d.key == "b" && d.body.is_none()));

    // A second handle (another node) sees commits through its feed.
    let other = t.open().await;
    let feed = Feed::open(other).await.unwrap();
    assert_eq!(feed.current().revision, 2);
    store
        .commit(
            2,
            &[put(
                "service",
                "z",
                "{\"name\":\"z\",\"targets\":[{\"url\":\"http://127.0.0.1:1\"}]}",
            )],
            &[],
        )
        .await
        .unwrap();
    let state = feed.refresh().await.unwrap();
    assert_eq!(state.revision, 3);
    assert!(state.services.contains_key("z"));
    // The periodic check reads only the revision while nothing changed, then what changed.
    feed.check().await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&feed.current(), &state), "unchanged");
    store
        .commit(3, &[put("note", "d", "{}")], &[])
        .await
        .unwrap();
    feed.check().await.unwrap();
    assert_eq!(feed.current().revision, 4);
    assert_eq!(feed.health().revision, 4);

    // The audit log only grows.
    let audit = store
        .audit(&AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].record.key, "a");
    assert_eq!(audit[0].revision, 1);
    let tamper = sqlx::query("UPDATE audit_log SET actor = 'mallory'")
        .execute(store.pool())
        .await;
    assert!(tamper.is_err(), "audit rows cannot be updated");
    let tamper = sqlx::query("DELETE FROM audit_log")
        .execute(store.pool())
        .await;
    assert!(tamper.is_err(), "audit rows cannot be deleted");
    store.close().await;
    t.drop_it().await;
}

/// Commits larger than one batch of statements (SQLite runs them 100 to a query) are written
/// whole, or not at all when they lose the race; an empty one still moves the revision.
async fn large_commits(t: TestStore) {
    let store = t.open().await;
    let docs: Vec<Change> = (0..250)
        .map(|i| put("note", &format!("n{i:03}"), &format!("{{\"n\":{i}}}")))
        .collect();
    let records: Vec<AuditRecord> = (0..130).map(|i| record(&format!("n{i:03}"))).collect();
    assert_eq!(store.commit(0, &docs, &records).await.unwrap(), 1);
    let all = store.load_all().await.unwrap();
    assert_eq!(all.docs.len(), 250);
    assert_eq!(all.docs[249].body.as_deref(), Some("{\"n\":249}"));
    let audit = |limit| AuditQuery {
        limit,
        ..Default::default()
    };
    assert_eq!(store.audit(&audit(1000)).await.unwrap().len(), 130);

    let late: Vec<Change> = (0..250)
        .map(|i| put("late", &format!("l{i}"), "{}"))
        .collect();
    let err = store.commit(0, &late, &records).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: 0,
                current: 1
            }
        ),
        "{err}"
    );
    assert_eq!(
        store.load_all().await.unwrap().docs.len(),
        250,
        "nothing of the loser"
    );
    assert_eq!(store.audit(&audit(1000)).await.unwrap().len(), 130);

    assert_eq!(store.commit(1, &[], &[]).await.unwrap(), 2);
    assert_eq!(store.revision().await.unwrap(), 2);
    store.close().await;
    t.drop_it().await;
}

async fn tokens(t: TestStore) {
    let store = t.open().await;
    let token = TokenRecord {
        id: "t1".into(),
        name: "ci".into(),
        role: Role::Operator,
        hash: tollgate_store::secrets::sha256_hex("tg_secret"),
        created_at: 1,
        created_by: "cli:test".into(),
    };
    store.create_token(&token).await.unwrap();
    let found = store
        .token_by_hash(&tollgate_store::secrets::sha256_hex("tg_secret"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, token);
    assert!(store.token_by_hash("nope").await.unwrap().is_none());
    assert_eq!(store.list_tokens().await.unwrap().len(), 1);
    assert!(store.delete_token("t1", "cli:test").await.unwrap());
    assert!(!store.delete_token("t1", "cli:test").await.unwrap());
    let audit = store
        .audit(&AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<_> = audit.iter().map(|a| a.record.action.as_str()).collect();
    assert_eq!(actions, ["token.delete", "token.create"]);
    store.close().await;
    t.drop_it().await;
}

async fn newer_schema_is_refused(t: TestStore) {
    let store = t.open().await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, $1, 0)",
    )
    .bind(vec![0_u8; 48])
    .execute(store.pool())
    .await
    .unwrap();
    store.close().await;
    let err = tollgate_store::Store::open(&t.url).await.unwrap_err();
    assert!(matches!(err, StoreError::NewerSchema { .. }), "{err}");
    assert!(err.to_string().contains("9999"), "{err}");
    t.drop_it().await;
}

#[tokio::test]
async fn sqlite_commits_and_feed() {
    let t = TestStore::sqlite().await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let store = t.open().await;
        let path = t.url.trim_start_matches("sqlite:");
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the store file is private");
        store.close().await;
    }
    commits_and_feed(t).await;
}

#[tokio::test]
async fn postgres_commits_and_feed() {
    commits_and_feed(TestStore::postgres().await).await;
}

#[tokio::test]
async fn sqlite_large_commits() {
    large_commits(TestStore::sqlite().await).await;
}

#[tokio::test]
async fn postgres_large_commits() {
    large_commits(TestStore::postgres().await).await;
}

/// A SQLite commit that fails after its first batch of statements ran (here a trigger refuses
/// one document of the second) leaves nothing behind, and the next commit, on the same
/// writer connection, goes through.
#[tokio::test]
async fn sqlite_failed_commit_is_rolled_back() {
    let t = TestStore::sqlite().await;
    let store = t.open().await;
    sqlx::query(
        "CREATE TRIGGER refuse_boom BEFORE INSERT ON documents WHEN NEW.key = 'boom' \
         BEGIN SELECT RAISE(ABORT, 'boom refused'); END",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let mut docs: Vec<Change> = (0..150)
        .map(|i| put("note", &format!("n{i:03}"), "{}"))
        .collect();
    docs.push(put("note", "boom", "{}"));
    let err = store.commit(0, &docs, &[record("x")]).await.unwrap_err();
    assert!(err.to_string().contains("boom refused"), "{err}");
    assert_eq!(store.revision().await.unwrap(), 0);
    assert!(store.load_all().await.unwrap().docs.is_empty());
    docs.pop();
    assert_eq!(store.commit(0, &docs, &[record("x")]).await.unwrap(), 1);
    assert_eq!(store.load_all().await.unwrap().docs.len(), 150);
    // A lost race on the writer connection is rolled back as well.
    let err = store.commit(0, &docs[..1], &[]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(store.commit(1, &docs[..1], &[]).await.unwrap(), 2);
    store.close().await;
    t.drop_it().await;
}

#[tokio::test]
async fn sqlite_tokens() {
    tokens(TestStore::sqlite().await).await;
}

#[tokio::test]
async fn postgres_tokens() {
    tokens(TestStore::postgres().await).await;
}

#[tokio::test]
async fn sqlite_newer_schema_is_refused() {
    newer_schema_is_refused(TestStore::sqlite().await).await;
}

#[tokio::test]
async fn postgres_newer_schema_is_refused() {
    newer_schema_is_refused(TestStore::postgres().await).await;
}

#[tokio::test]
async fn bad_urls_are_clear_errors() {
    let err = tollgate_store::Store::open("mysql://x").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("expected sqlite:PATH or postgres://"),
        "{err}"
    );
    let err = tollgate_store::Store::open("postgres://nobody:pw@127.0.0.1:1/db")
        .await
        .unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("cannot connect"), "{shown}");
    assert!(!shown.contains(":pw@"), "password redacted: {shown}");
}

/// `synchronous=normal` on a SQLite URL: commits skip the per-commit fsync, and the store
/// works as with the default (what is committed is there when the file is opened again).
/// Any other value is refused, naming the parameter.
#[tokio::test]
async fn sqlite_synchronous_setting() {
    let t = TestStore::sqlite().await;
    assert_eq!(
        t.open().await.synchronous(),
        tollgate_store::Synchronous::Full
    );
    let url = format!("{}?synchronous=normal", t.url);
    let store = tollgate_store::Store::open(&url).await.unwrap();
    assert_eq!(store.synchronous(), tollgate_store::Synchronous::Normal);
    assert_eq!(
        store
            .commit(0, &[put("note", "a", "{}")], &[record("x")])
            .await
            .unwrap(),
        1
    );
    let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(store.pool())
        .await
        .unwrap();
    // The pool's connections keep SQLite's default (FULL = 2); only commits change.
    assert_eq!(level, 2);
    store.close().await;
    let store = tollgate_store::Store::open(&url).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), 1);
    assert_eq!(store.load_all().await.unwrap().docs.len(), 1);
    store.close().await;
    let err = tollgate_store::Store::open(&format!("{}?synchronous=off", t.url))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err}");
    assert!(err.to_string().contains("synchronous=\"off\""), "{err}");
    t.drop_it().await;
}

/// A PostgreSQL store keeps one connection for its commits and one for its feed reads, out
/// of the pool and without the pool's pings. When the server closes them (a restart, an
/// idle-session timeout, an operator's `pg_terminate_backend`), the next commit and the
/// next reads go through on new connections, and the commit is made once.
#[tokio::test]
async fn postgres_held_connections_closed_by_the_server_are_replaced() {
    use sqlx::Connection;
    let t = TestStore::postgres().await;
    let store = t.open().await;
    assert_eq!(
        store
            .commit(0, &[put("note", "a", "{}")], &[])
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.load_since(0).await.unwrap().docs.len(), 1);
    let database = t.url.rsplit_once('/').unwrap().1.to_owned();
    let mut admin = sqlx::PgConnection::connect(&common::postgres_admin_url())
        .await
        .unwrap();
    let terminated: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()) t",
    )
    .bind(&database)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(
        terminated >= 2,
        "the held connections were open: {terminated}"
    );
    assert_eq!(store.revision().await.unwrap(), 1);
    assert_eq!(
        store
            .commit(1, &[put("note", "b", "{}")], &[])
            .await
            .unwrap(),
        2
    );
    let delta = store.load_since(1).await.unwrap();
    assert_eq!((delta.revision, delta.docs.len()), (2, 1));
    assert_eq!(delta.docs[0].key, "b");
    drop(admin);
    store.close().await;
    t.drop_it().await;
}
