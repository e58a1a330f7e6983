//! The store on SQLite or PostgreSQL, through sqlx's `Any` driver: one set of queries (both
//! engines accept `$N` placeholders), one migration directory per engine.
//!
//! Every change set is committed with compare-and-swap on the store revision: the caller says
//! which revision it prepared the change against, and the commit bumps the revision by one only
//! if nobody else committed in between (otherwise [`StoreError::Conflict`], nothing written).
//! That keeps several admin nodes on one PostgreSQL consistent without long transactions, and
//! gives readers a cheap change feed: documents written after revision R are those with
//! `revision > R`, deletions included as tombstones.

use std::time::Duration;

use std::sync::Arc;

use sqlx::Connection;
use sqlx::any::AnyPoolOptions;
use sqlx::any::AnyRow;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{AnyConnection, AnyPool, Row};
use tokio::sync::{OnceCell, watch};

use crate::{AuditEntry, AuditQuery, AuditRecord, Change, Doc, StoreError};

mod held;
mod tokens;
mod url;
mod write;

use held::Held;

use url::parse;
pub use url::{Synchronous, redact};
use write::insert_audit;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL channel a commit notifies, with the new revision as payload.
pub const NOTIFY_CHANNEL: &str = "tollgate_changes";

/// How long one store operation may take before it is reported as failed (a database that
/// accepts connections but never answers must not hang the caller).
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// How long opening a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The database engine behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file (WAL mode).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Documents read in one consistent snapshot of the store.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The store revision the documents are at.
    pub revision: i64,
    /// The documents (for a delta read, tombstones included).
    pub docs: Vec<Doc>,
}

/// A configuration store.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The URL as given, credentials included: only for opening PostgreSQL listeners.
    url: Arc<str>,
    display_url: String,
    /// Set once the schema is known to be current (migrations applied).
    schema: Arc<OnceCell<()>>,
    committed: watch::Sender<i64>,
    /// The revisions commits through this handle are making now ([`Store::committed_here`]).
    committing: watch::Sender<Vec<i64>>,
    /// The connection every commit goes through. SQLite: commits on one connection find its
    /// page cache current; spread over the pool's, each would find the pages the last commit
    /// changed stale and read them again. PostgreSQL: no pings around each commit ([`held`]).
    writer: Arc<Held>,
    /// PostgreSQL: the connection the change feed's reads go through ([`held`]); SQLite's
    /// reads use the pool (several may run at once, and a ping there is no network trip).
    reader: Arc<Held>,
    /// SQLite: when a commit is on disk ([`Synchronous`]).
    synchronous: Synchronous,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("url", &self.display_url)
            .finish()
    }
}

impl Store {
    /// Opens a store and brings its schema up to date: `sqlite:PATH` (the file is created if
    /// missing) or `postgres://user@host/db`. Concurrent openers of one PostgreSQL database
    /// serialize on the migrator's lock, so the first applies the migrations and the others
    /// wait for them and find them done.
    ///
    /// Fails at once with the driver's own reason when the database refuses the connection,
    /// rejects the credentials or does not exist, and within [`CONNECT_TIMEOUT`] when it
    /// accepts connections but does not answer.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let (backend, url, options, display_url, synchronous) = parse(url)?;
        if backend == Backend::Postgres {
            // One direct attempt first: the pool would retry a refused connection until its
            // timeout and then report only that it timed out.
            let attempt = tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect_with(&options))
                .await
                .map_err(|_| StoreError::Connect {
                    url: display_url.clone(),
                    source: sqlx::Error::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no answer within {CONNECT_TIMEOUT:?} (is it a PostgreSQL server, and is it overloaded?)"),
                    )),
                })?
                .map_err(|source| StoreError::Connect {
                    url: display_url.clone(),
                    source,
                })?;
            let _ = attempt.close().await;
        }
        let pool = pool_options(backend)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Connect {
                url: display_url.clone(),
                source,
            })?;
        let store = Self::with_pool(pool, backend, url, display_url, synchronous);
        store.schema().await?;
        let revision = store.revision().await?;
        store.committed.send_replace(revision);
        Ok(store)
    }

    /// A PostgreSQL store that connects (and checks its schema) on first use: for a node that
    /// starts while the store is unreachable and serves a cached state meanwhile. Every
    /// operation fails with [`StoreError::Connect`] or [`StoreError::Timeout`] until the
    /// database answers.
    pub fn open_lazy(url: &str) -> Result<Self, StoreError> {
        let (backend, url, options, display_url, _) = parse(url)?;
        if backend != Backend::Postgres {
            return Err(StoreError::InvalidUrl {
                url: display_url,
                reason: "only a PostgreSQL store can be opened before it is reachable".into(),
            });
        }
        let pool = pool_options(backend).connect_lazy_with(options);
        Ok(Self::with_pool(
            pool,
            backend,
            url,
            display_url,
            Synchronous::Full,
        ))
    }

    fn with_pool(
        pool: AnyPool,
        backend: Backend,
        url: String,
        display_url: String,
        synchronous: Synchronous,
    ) -> Self {
        Self {
            pool,
            backend,
            url: url.into(),
            display_url,
            schema: Arc::new(OnceCell::new()),
            committed: watch::channel(0).0,
            committing: watch::channel(Vec::new()).0,
            writer: Arc::new(Held::new(
                (synchronous == Synchronous::Normal).then_some("PRAGMA synchronous = NORMAL"),
            )),
            reader: Arc::new(Held::new(None)),
            synchronous,
        }
    }

    /// Brings the schema up to date once (every later call returns at once).
    async fn schema(&self) -> Result<(), StoreError> {
        self.schema
            .get_or_try_init(|| async {
                if self.backend == Backend::Sqlite {
                    // Persistent in the file: readers never block the writer. sqlx's SQLite
                    // connections already wait up to 5 s on a locked database (busy_timeout).
                    sqlx::query("PRAGMA journal_mode = WAL")
                        .execute(&self.pool)
                        .await
                        .map_err(|source| StoreError::Connect {
                            url: self.display_url.clone(),
                            source,
                        })?;
                }
                let migrator = match self.backend {
                    Backend::Sqlite => &SQLITE_MIGRATIONS,
                    Backend::Postgres => &POSTGRES_MIGRATIONS,
                };
                migrator.run(&self.pool).await.map_err(|e| match e {
                    MigrateError::VersionMissing(v) => StoreError::NewerSchema {
                        detail: format!(
                            "it has migration {v}, this binary knows up to {}",
                            latest(migrator)
                        ),
                    },
                    MigrateError::Execute(source) if crate::error::unreachable(&source) => {
                        StoreError::Connect {
                            url: self.display_url.clone(),
                            source,
                        }
                    }
                    other => StoreError::Migrate(other.to_string()),
                })
            })
            .await?;
        Ok(())
    }

    /// The URL with credentials, for a PostgreSQL listener connection.
    pub(crate) fn secret_url(&self) -> &str {
        &self.url
    }

    /// When a SQLite commit is on disk (always [`Synchronous::Full`] for PostgreSQL, whose
    /// server decides).
    pub fn synchronous(&self) -> Synchronous {
        self.synchronous
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL with any password removed, for messages.
    pub fn display_url(&self) -> &str {
        &self.display_url
    }

    /// The connection pool, for PostgreSQL listeners and tests.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Revisions committed through this handle (and its clones), as they happen.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.committed.subscribe()
    }

    /// Whether `revision` was committed through this handle (or its clones), after waiting
    /// (up to [`OPERATION_TIMEOUT`]) for a commit through it that is making that revision
    /// now. A committer publishes what it committed itself ([`crate::Feed::install`]), so a
    /// change notification of such a revision needs no read: on PostgreSQL the notification
    /// of a node's own commit can arrive before the commit's own answer.
    pub async fn committed_here(&self, revision: i64) -> bool {
        let mut committing = self.committing.subscribe();
        let settled = committing.wait_for(|revisions| !revisions.contains(&revision));
        // A commit cannot outlast its timeout; a wait that did is answered "not here".
        if tokio::time::timeout(OPERATION_TIMEOUT, settled)
            .await
            .is_err()
        {
            return false;
        }
        *self.committed.borrow() >= revision
    }

    /// The store's current revision.
    pub async fn revision(&self) -> Result<i64, StoreError> {
        timed(async {
            self.schema().await?;
            let rows = self
                .read(|| sqlx::query("SELECT revision FROM store_state WHERE id = 1"))
                .await?;
            let row = rows.first().ok_or(sqlx::Error::RowNotFound)?;
            Ok(row.try_get::<i64, _>(0)?)
        })
        .await
    }

    /// Every live document and the revision they are at, read in one snapshot.
    pub async fn load_all(&self) -> Result<Loaded, StoreError> {
        self.load(None).await
    }

    /// Documents written after `revision` (tombstones included), and the revision read.
    pub async fn load_since(&self, revision: i64) -> Result<Loaded, StoreError> {
        self.load(Some(revision)).await
    }

    /// One statement, so one consistent snapshot on both engines (the revision and the
    /// documents it covers: a commit updates both in one transaction) and one round trip: a
    /// node of a cluster reads every change this way, and each round trip wakes its control
    /// runtime on a core its proxy workers use (it was a transaction of five statements).
    /// The store's row is joined with the documents, so that it comes back alone (with
    /// NULL documents) when nothing matches.
    async fn load(&self, since: Option<i64>) -> Result<Loaded, StoreError> {
        timed(async {
            self.schema().await?;
            let rows = self.read(|| load_query(since)).await?;
            let Some(first) = rows.first() else {
                return Err(sqlx::Error::RowNotFound.into());
            };
            let revision: i64 = first.try_get(0)?;
            let mut docs = Vec::with_capacity(rows.len());
            for row in &rows {
                let Some(kind) = row.try_get::<Option<String>, _>(1)? else {
                    continue;
                };
                docs.push(Doc {
                    kind,
                    key: row.try_get(2)?,
                    body: row.try_get(3)?,
                    revision: row.try_get(4)?,
                    created_at: row.try_get(5)?,
                    updated_at: row.try_get(6)?,
                });
            }
            Ok(Loaded { revision, docs })
        })
        .await
    }

    /// Runs a read of the change feed: on PostgreSQL on the reader connection, made again on a
    /// new one when the held connection turns out to be closed ([`held`]); on SQLite on the
    /// pool.
    async fn read(&self, query: impl Fn() -> Query) -> Result<Vec<AnyRow>, StoreError> {
        if self.backend == Backend::Sqlite {
            return Ok(query().fetch_all(&self.pool).await?);
        }
        let mut lease = self.reader.lease(&self.pool).await?;
        let rows = match query().fetch_all(lease.conn()).await {
            Ok(rows) => rows,
            Err(e) => {
                lease.renew(&self.pool, e).await?;
                query().fetch_all(lease.conn()).await?
            }
        };
        lease.keep();
        Ok(rows)
    }

    /// Commits a change set atomically if the store is still at `expected`; returns the new
    /// revision. On [`StoreError::Conflict`] (or any error) nothing was written.
    pub async fn commit(
        &self,
        expected: i64,
        changes: &[Change],
        audit: &[AuditRecord],
    ) -> Result<i64, StoreError> {
        let making = Committing::start(&self.committing, expected + 1);
        let revision = timed(async {
            self.schema().await?;
            let committed = match self.backend {
                Backend::Sqlite => self.commit_sqlite(expected, changes, audit).await?,
                Backend::Postgres => self.commit_postgres(expected, changes, audit).await?,
            };
            if !committed {
                let current = self.revision().await?;
                return Err(StoreError::Conflict { expected, current });
            }
            Ok(expected + 1)
        })
        .await?;
        self.committed.send_replace(revision);
        drop(making);
        Ok(revision)
    }

    /// One query on the writer connection ([`write::sqlite`]). A commit cancelled midway (its
    /// caller gone, or [`OPERATION_TIMEOUT`]) drops the connection it had taken, which closes
    /// it and rolls back whatever it left open; the next commit opens another.
    async fn commit_sqlite(
        &self,
        expected: i64,
        changes: &[Change],
        audit: &[AuditRecord],
    ) -> Result<bool, StoreError> {
        let mut lease = self.writer.lease(&self.pool).await?;
        match write::sqlite(lease.conn(), expected, unix_now(), changes, audit).await {
            Ok(committed) => {
                lease.keep();
                Ok(committed)
            }
            Err(failed) => {
                if !failed.poisoned {
                    lease.keep();
                }
                Err(failed.error)
            }
        }
    }

    /// A transaction on the writer connection. Only its `BEGIN` is retried (on a new
    /// connection, when the held one turns out to be closed): a commit whose connection died
    /// later is reported failed, never sent twice.
    async fn commit_postgres(
        &self,
        expected: i64,
        changes: &[Change],
        audit: &[AuditRecord],
    ) -> Result<bool, StoreError> {
        let mut lease = self.writer.lease(&self.pool).await?;
        // At most twice: `renew` opens a new connection only in place of a reused one.
        let mut tx = loop {
            let failed = match lease.conn().begin().await {
                Ok(tx) => break tx,
                Err(e) => e,
            };
            lease.renew(&self.pool, failed).await?;
        };
        let now = unix_now();
        if !write::in_transaction(&mut tx, expected, now, changes, audit).await? {
            tx.rollback().await?;
            lease.keep();
            return Ok(false);
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTIFY_CHANNEL)
            .bind((expected + 1).to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        lease.keep();
        Ok(true)
    }

    /// Reads the audit log, newest first.
    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        timed(async {
            self.schema().await?;
            let rows = sqlx::query(
                "SELECT id, revision, at, actor, action, kind, key, before, after FROM audit_log \
                 WHERE ($1 IS NULL OR id < $1) AND ($2 IS NULL OR kind = $2) \
                 AND ($3 IS NULL OR key = $3) AND ($4 IS NULL OR actor = $4) \
                 ORDER BY id DESC LIMIT $5",
            )
            .bind(query.before_id)
            .bind(query.kind.as_deref())
            .bind(query.key.as_deref())
            .bind(query.actor.as_deref())
            .bind(i64::from(query.limit.clamp(1, 1000)))
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|row| {
                    let json = |i: usize| -> Result<Option<serde_json::Value>, StoreError> {
                        let text: Option<String> = row.try_get(i)?;
                        text.map(|t| {
                            serde_json::from_str(&t).map_err(|e| StoreError::Corrupt {
                                kind: "audit_log".into(),
                                key: String::new(),
                                reason: e.to_string(),
                            })
                        })
                        .transpose()
                    };
                    Ok(AuditEntry {
                        id: row.try_get(0)?,
                        revision: row.try_get(1)?,
                        at: row.try_get(2)?,
                        record: AuditRecord {
                            actor: row.try_get(3)?,
                            action: row.try_get(4)?,
                            kind: row.try_get(5)?,
                            key: row.try_get(6)?,
                            before: json(7)?,
                            after: json(8)?,
                        },
                    })
                })
                .collect()
        })
        .await
    }

    /// Closes the pool (waits for connections to be returned) and the writer connection.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
        self.pool.close().await;
    }
}

async fn timed<T>(
    work: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(OPERATION_TIMEOUT, work).await {
        // No connection could be opened in time: the pool only says it timed out.
        Ok(Err(StoreError::Database(sqlx::Error::PoolTimedOut))) => {
            Err(StoreError::Timeout(CONNECT_TIMEOUT))
        }
        Ok(result) => result,
        Err(_) => Err(StoreError::Timeout(OPERATION_TIMEOUT)),
    }
}

/// A commit under way in [`Store::committing`], from its start until it is recorded as
/// committed, failed or cancelled (dropped).
struct Committing<'a> {
    making: &'a watch::Sender<Vec<i64>>,
    revision: i64,
}

impl<'a> Committing<'a> {
    fn start(making: &'a watch::Sender<Vec<i64>>, revision: i64) -> Self {
        making.send_modify(|revisions| revisions.push(revision));
        Self { making, revision }
    }
}

impl Drop for Committing<'_> {
    fn drop(&mut self) {
        self.making.send_modify(|revisions| {
            if let Some(i) = revisions.iter().position(|&r| r == self.revision) {
                revisions.swap_remove(i);
            }
        });
    }
}

/// A query with its arguments, owning them.
type Query = sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments<'static>>;

/// The feed's read: every live document (`None`), or what was written after a revision.
fn load_query(since: Option<i64>) -> Query {
    match since {
        None => sqlx::query(concat!(
            "SELECT s.revision, d.kind, d.key, d.body, d.revision, d.created_at, ",
            "d.updated_at FROM store_state s LEFT JOIN documents d ON d.deleted = 0 ",
            "WHERE s.id = 1 ORDER BY d.kind, d.key"
        )),
        Some(after) => sqlx::query(concat!(
            "SELECT s.revision, d.kind, d.key, d.body, d.revision, d.created_at, ",
            "d.updated_at FROM store_state s LEFT JOIN documents d ON d.revision > $1 ",
            "WHERE s.id = 1 ORDER BY d.revision, d.kind, d.key"
        ))
        .bind(after),
    }
}

fn pool_options(backend: Backend) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(match backend {
            Backend::Sqlite => 4,
            // Plus the writer and reader connections held out of it ([`held`]): 8 in all.
            Backend::Postgres => 6,
        })
        .acquire_timeout(CONNECT_TIMEOUT)
        // A PostgreSQL connection may have died with the server: it is pinged before use. A
        // SQLite connection is a file in this process and cannot die; its ping is a round trip
        // to the connection's thread (two thread wake-ups per store call) for nothing.
        .test_before_acquire(backend == Backend::Postgres)
}

fn latest(migrator: &Migrator) -> i64 {
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Unix seconds now.
pub(crate) fn unix_now() -> i64 {
    tollgate_model::Timestamp::now().unix_seconds()
}
