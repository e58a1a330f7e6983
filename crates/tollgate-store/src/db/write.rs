//! The statements of a commit: bump the revision if it is still the expected one, write the
//! changed documents and the audit records.
//!
//! On PostgreSQL each is its own statement in a transaction (the extended protocol runs one
//! statement per query). On SQLite, sqlx runs every query on the connection's worker thread
//! and hands each result back across threads: a commit of one change through sqlx's
//! transaction API was five such round trips (BEGIN, UPDATE, two INSERTs, COMMIT; BEGIN and
//! COMMIT each a rendezvous of two wake-ups), each waking the worker and then the control
//! runtime on the cores the proxy workers serve requests on. SQLite runs the statements of
//! one query in order, each binding its own `$N` parameters, so a commit is one query: `BEGIN
//! IMMEDIATE`, the revision bump, the writes and `COMMIT` (in batches of up to [`BATCH`]
//! writes when it is large, the first opening the transaction and the last committing it).
//! The bump sets the revision to NULL when the store is no longer at the expected one: the
//! column's NOT NULL constraint stops the query there, before any write, and the caller
//! rolls the transaction back.

use sqlx::{Any, AnyConnection};

use crate::{AuditRecord, Change, StoreError};

/// Statements per SQLite batch: at most 8 parameters each, far below SQLite's limit of
/// 32,766 variables per query.
const BATCH: usize = 100;

/// Batches of at most this many statements keep their prepared form in the connection's
/// cache (a single change and its audit record: the common write); larger ones are
/// prepared for one use, so that a big import does not evict the cached statements.
const CACHED_UP_TO: usize = 3;

const BUMP: &str = "UPDATE store_state SET revision = revision + 1 WHERE id = 1 AND revision = $1";

/// SQLite's bump: `$2` if the store is at `$1`, else NULL, which the column refuses (see
/// [`is_lost_race`]).
const SQLITE_BUMP: &str =
    "UPDATE store_state SET revision = CASE WHEN revision = $1 THEN $2 END WHERE id = 1";

/// Where a change or audit record takes its revision (`$R`) and time (`$T`) from, and the
/// first of its own parameters.
struct Params {
    revision: usize,
    now: usize,
    next: usize,
}

impl Params {
    /// Shared parameters from `$revision` on: the revision, then the time, then each write's.
    fn from(revision: usize) -> Self {
        Self {
            revision,
            now: revision + 1,
            next: revision + 2,
        }
    }

    fn take(&mut self, n: usize) -> usize {
        let first = self.next;
        self.next += n;
        first
    }
}

/// Appends the upsert of one document; its parameters are kind, key, body, deleted.
fn push_document(sql: &mut String, p: &mut Params) {
    let (r, t, f) = (p.revision, p.now, p.take(4));
    sql.push_str(&format!(
        "INSERT INTO documents (kind, key, body, revision, deleted, created_at, updated_at) \
         VALUES (${f}, ${}, ${}, ${r}, ${}, ${t}, ${t}) \
         ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body, \
         revision = excluded.revision, deleted = excluded.deleted, \
         updated_at = excluded.updated_at, \
         created_at = CASE WHEN documents.deleted = 1 THEN excluded.created_at \
         ELSE documents.created_at END",
        f + 1,
        f + 2,
        f + 3
    ));
}

/// Appends the insert of one audit record; its parameters are actor, action, kind, key,
/// before, after.
fn push_audit(sql: &mut String, p: &mut Params) {
    let (r, t, f) = (p.revision, p.now, p.take(6));
    sql.push_str(&format!(
        "INSERT INTO audit_log (revision, at, actor, action, kind, key, before, after) \
         VALUES (${r}, ${t}, ${f}, ${}, ${}, ${}, ${}, ${})",
        f + 1,
        f + 2,
        f + 3,
        f + 4,
        f + 5
    ));
}

type Query<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

fn bind_document<'q>(query: Query<'q>, change: &'q Change) -> Query<'q> {
    let (kind, key, body, deleted) = match change {
        Change::Put { kind, key, body } => (kind, key, Some(body.as_str()), 0_i64),
        Change::Delete { kind, key } => (kind, key, None, 1_i64),
    };
    query.bind(kind).bind(key).bind(body).bind(deleted)
}

fn audit_text(v: &Option<serde_json::Value>) -> Option<String> {
    v.as_ref().map(serde_json::Value::to_string)
}

fn bind_audit<'q>(query: Query<'q>, record: &'q AuditRecord) -> Query<'q> {
    query
        .bind(&record.actor)
        .bind(&record.action)
        .bind(&record.kind)
        .bind(&record.key)
        .bind(audit_text(&record.before))
        .bind(audit_text(&record.after))
}

/// One write of a commit.
#[derive(Clone, Copy)]
enum Write<'a> {
    Document(&'a Change),
    Audit(&'a AuditRecord),
}

impl<'a> Write<'a> {
    /// Appends this write's statement, its own parameters numbered from `p`.
    fn push_sql(self, sql: &mut String, p: &mut Params) {
        match self {
            Write::Document(_) => push_document(sql, p),
            Write::Audit(_) => push_audit(sql, p),
        }
    }

    /// Binds this write's own parameters, in the order of [`Write::push_sql`].
    fn bind<'q>(self, query: Query<'q>) -> Query<'q>
    where
        'a: 'q,
    {
        match self {
            Write::Document(change) => bind_document(query, change),
            Write::Audit(record) => bind_audit(query, record),
        }
    }
}

/// Runs the commit's statements in `tx` (PostgreSQL): returns `false` (nothing written) when
/// the store is no longer at `expected`.
pub(super) async fn in_transaction(
    tx: &mut sqlx::Transaction<'_, Any>,
    expected: i64,
    now: i64,
    changes: &[Change],
    audit: &[AuditRecord],
) -> Result<bool, StoreError> {
    one_by_one(tx, expected, now, &writes(changes, audit)).await
}

fn writes<'a>(changes: &'a [Change], audit: &'a [AuditRecord]) -> Vec<Write<'a>> {
    changes
        .iter()
        .map(Write::Document)
        .chain(audit.iter().map(Write::Audit))
        .collect()
}

/// Commits on a SQLite connection outside any transaction: `Ok(false)` when the store is no
/// longer at `expected`. On any error the transaction this opened has been rolled back,
/// unless the rollback failed too: then `conn` may still be in it, and the error says so
/// ([`Failed::poisoned`]) so that the caller closes the connection instead of reusing it.
pub(super) async fn sqlite(
    conn: &mut AnyConnection,
    expected: i64,
    now: i64,
    changes: &[Change],
    audit: &[AuditRecord],
) -> Result<bool, Failed> {
    let writes = writes(changes, audit);
    let error = match batched(conn, expected, now, &writes).await {
        Ok(()) => return Ok(true),
        Err(e) => e,
    };
    // The transaction is open unless `BEGIN` itself failed; either way nothing was committed.
    let rolled_back = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    let poisoned = match &rolled_back {
        Ok(_) => false,
        // No transaction to roll back: `BEGIN` itself failed (the database stayed locked past
        // the busy timeout), and the connection is as it was.
        Err(e) => !e.to_string().contains("no transaction is active"),
    };
    if !poisoned && is_lost_race(&error) {
        return Ok(false);
    }
    Err(Failed {
        error: error.into(),
        poisoned,
    })
}

/// A failed SQLite commit.
#[derive(Debug)]
pub(super) struct Failed {
    pub(super) error: StoreError,
    /// The connection could not be rolled back and must be closed.
    pub(super) poisoned: bool,
}

/// Whether the query stopped at [`SQLITE_BUMP`] finding another revision.
fn is_lost_race(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|e| {
        e.kind() == sqlx::error::ErrorKind::NotNullViolation
            && e.message().contains("store_state.revision")
    })
}

async fn batched(
    conn: &mut AnyConnection,
    expected: i64,
    now: i64,
    writes: &[Write<'_>],
) -> Result<(), sqlx::Error> {
    let revision = expected + 1;
    // An empty change set still bumps the revision: one batch, the bump alone.
    let mut chunks: Vec<&[Write<'_>]> = writes.chunks(BATCH).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        // $1 expected revision, $2 new revision, $3 time; then each write's own.
        let mut p = Params::from(2);
        let mut sql = String::with_capacity(400 * (chunk.len() + 1) + 100);
        if i == 0 {
            sql.push_str("BEGIN IMMEDIATE;\n");
            sql.push_str(SQLITE_BUMP);
        }
        for write in chunk {
            if !sql.is_empty() {
                sql.push_str(";\n");
            }
            write.push_sql(&mut sql, &mut p);
        }
        if i == last {
            sql.push_str(";\nCOMMIT");
        }
        let mut query = sqlx::query(&sql)
            .persistent(chunk.len() + usize::from(i == 0) <= CACHED_UP_TO)
            .bind(expected)
            .bind(revision)
            .bind(now);
        for write in chunk {
            query = write.bind(query);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn one_by_one(
    tx: &mut sqlx::Transaction<'_, Any>,
    expected: i64,
    now: i64,
    writes: &[Write<'_>],
) -> Result<bool, StoreError> {
    let bumped = sqlx::query(BUMP).bind(expected).execute(&mut **tx).await?;
    if bumped.rows_affected() != 1 {
        return Ok(false);
    }
    let revision = expected + 1;
    for write in writes {
        let mut sql = String::new();
        write.push_sql(&mut sql, &mut Params::from(1));
        let query = write.bind(sqlx::query(&sql).bind(revision).bind(now));
        query.execute(&mut **tx).await?;
    }
    Ok(true)
}

/// Inserts one audit record at `revision` (writes outside [`write`]: tokens).
pub(super) async fn insert_audit(
    tx: &mut sqlx::Transaction<'_, Any>,
    revision: i64,
    at: i64,
    record: &AuditRecord,
) -> Result<(), StoreError> {
    let mut sql = String::new();
    push_audit(&mut sql, &mut Params::from(1));
    bind_audit(sqlx::query(&sql).bind(revision).bind(at), record)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_write_takes_its_own_numbered_parameters_after_the_shared_ones() {
        let mut sql = String::new();
        let mut p = Params::from(2);
        push_document(&mut sql, &mut p);
        sql.push_str(";\n");
        push_audit(&mut sql, &mut p);
        assert_eq!(p.next, 14);
        assert!(sql.contains("VALUES ($4, $5, $6, $2, $7, $3, $3)"), "{sql}");
        assert!(
            sql.contains("VALUES ($2, $3, $8, $9, $10, $11, $12, $13)"),
            "{sql}"
        );
    }
}
