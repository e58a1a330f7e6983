//! The statements of a commit: bump the revision if it is still the expected one, write the
//! changed documents and the audit records.
//!
//! On PostgreSQL each is its own statement (the extended protocol runs one statement per
//! query). On SQLite, sqlx runs every statement on the connection's worker thread and hands
//! each result back across threads: a commit of one change was five such round trips (BEGIN,
//! UPDATE, two INSERTs, COMMIT), each waking the worker and then the control runtime, on the
//! cores the proxy workers serve requests on. SQLite runs several statements of one query in
//! order, each binding its own `$N` parameters, so the writes go in batches of up to
//! [`BATCH`] statements: the common commit is three round trips (BEGIN, one batch, COMMIT).
//! The revision bump leads the first batch and returns the new revision (`RETURNING`): no
//! row means another writer committed first; the batch's own writes are then rolled back
//! with the transaction.

use sqlx::Any;

use crate::{AuditRecord, Change, StoreError};

use super::Backend;

/// Statements per SQLite batch: at most 8 parameters each, far below SQLite's limit of
/// 32,766 variables per query.
const BATCH: usize = 100;

/// Batches of at most this many statements keep their prepared form in the connection's
/// cache (a single change and its audit record: the common write); larger ones are
/// prepared for one use, so that a big import does not evict the cached statements.
const CACHED_UP_TO: usize = 3;

const BUMP: &str = "UPDATE store_state SET revision = revision + 1 WHERE id = 1 AND revision = $1";

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

/// Runs the commit's statements in `tx`: returns `false` (some of them possibly run, to be
/// rolled back with `tx`) when the store is no longer at `expected`.
pub(super) async fn write(
    tx: &mut sqlx::Transaction<'_, Any>,
    backend: Backend,
    expected: i64,
    now: i64,
    changes: &[Change],
    audit: &[AuditRecord],
) -> Result<bool, StoreError> {
    let writes: Vec<Write<'_>> = changes
        .iter()
        .map(Write::Document)
        .chain(audit.iter().map(Write::Audit))
        .collect();
    match backend {
        Backend::Sqlite => batched(tx, expected, now, &writes).await,
        Backend::Postgres => one_by_one(tx, expected, now, &writes).await,
    }
}

async fn batched(
    tx: &mut sqlx::Transaction<'_, Any>,
    expected: i64,
    now: i64,
    writes: &[Write<'_>],
) -> Result<bool, StoreError> {
    let revision = expected + 1;
    let mut first = true;
    // An empty change set still bumps the revision: one batch, the bump alone.
    let mut chunks: Vec<&[Write<'_>]> = writes.chunks(BATCH).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    for chunk in chunks {
        // $1 expected revision, $2 new revision, $3 time; then each write's own.
        let mut p = Params::from(2);
        let mut sql = String::with_capacity(400 * (chunk.len() + 1));
        if first {
            sql.push_str(BUMP);
            sql.push_str(" RETURNING revision");
        }
        for write in chunk {
            if !sql.is_empty() {
                sql.push_str(";\n");
            }
            write.push_sql(&mut sql, &mut p);
        }
        let mut query = sqlx::query(&sql)
            .persistent(chunk.len() + usize::from(first) <= CACHED_UP_TO)
            .bind(expected)
            .bind(revision)
            .bind(now);
        for write in chunk {
            query = write.bind(query);
        }
        if first {
            // Only the bump returns a row, and only when it bumped.
            if query.fetch_all(&mut **tx).await?.is_empty() {
                return Ok(false);
            }
            first = false;
        } else {
            query.execute(&mut **tx).await?;
        }
    }
    Ok(true)
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
