//! A connection held out of the pool for one kind of work: a node's commits, or its reads of
//! the change feed.
//!
//! A pooled PostgreSQL connection costs two round trips besides the work: sqlx pings it when
//! it is taken (`test_before_acquire`, to find connections the server closed) and again when
//! it goes back (to flush whatever a cancelled caller left). Each round trip wakes the node's
//! control runtime on a core its proxy workers serve requests on, and a change reaches every
//! node of a cluster as one commit and one read per node: four of its round trips per node
//! were pings. A held connection skips both and finds out it is dead the way the ping would
//! have, from its first statement; the work is then run once more on a new connection when
//! the failure left nothing done ([`Lease::renew`]).
//!
//! The connection is taken out of its slot while work runs and put back only when the work
//! finished cleanly, so a caller cancelled midway (or timed out) drops it, which closes it and
//! rolls back whatever it left open. It is also replaced after [`MAX_AGE`], as the pool
//! retires its own, so that the server can free what a long session accumulates.

use std::time::{Duration, Instant};

use sqlx::{AnyConnection, AnyPool};
use tokio::sync::{Mutex, MutexGuard};

use crate::StoreError;
use crate::error::unreachable;

/// How long a held connection is used before it is replaced (sqlx's pool default lifetime).
const MAX_AGE: Duration = Duration::from_secs(30 * 60);

/// One connection taken from a pool and kept for one kind of work (see the module docs).
#[derive(Debug)]
pub(super) struct Held {
    slot: Mutex<Option<(AnyConnection, Instant)>>,
    /// Run on each new connection before its first work (SQLite's `synchronous` setting).
    prepare: Option<&'static str>,
}

impl Held {
    pub(super) fn new(prepare: Option<&'static str>) -> Self {
        Self {
            slot: Mutex::new(None),
            prepare,
        }
    }

    /// The held connection for one piece of work (callers are served one at a time), or a
    /// new one when there is none or it is older than [`MAX_AGE`].
    pub(super) async fn lease(&self, pool: &AnyPool) -> Result<Lease<'_>, StoreError> {
        let mut slot = self.slot.lock().await;
        let (conn, opened, reused) = match slot.take() {
            Some((conn, opened)) if opened.elapsed() < MAX_AGE => (conn, opened, true),
            _ => {
                let (conn, opened) = self.open(pool).await?;
                (conn, opened, false)
            }
        };
        Ok(Lease {
            held: self,
            slot,
            conn,
            opened,
            reused,
        })
    }

    /// A connection of `pool`, detached from it (the pool may open another in its place).
    async fn open(&self, pool: &AnyPool) -> Result<(AnyConnection, Instant), StoreError> {
        let mut conn = pool.acquire().await?.detach();
        if let Some(statement) = self.prepare {
            use sqlx::Executor;
            conn.execute(statement).await?;
        }
        Ok((conn, Instant::now()))
    }

    /// Closes the held connection, if any.
    pub(super) async fn close(&self) {
        if let Some((conn, _)) = self.slot.lock().await.take() {
            use sqlx::Connection;
            let _ = conn.close().await;
        }
    }
}

/// The held connection, lent to one piece of work. Dropped without [`Lease::keep`] (the work
/// failed, or its caller went away midway), it closes the connection.
pub(super) struct Lease<'a> {
    held: &'a Held,
    slot: MutexGuard<'a, Option<(AnyConnection, Instant)>>,
    conn: AnyConnection,
    opened: Instant,
    reused: bool,
}

impl Lease<'_> {
    pub(super) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }

    /// After the work's first statement failed with `error`: a new connection in place of
    /// this one when the error says the connection was lost and it had been used before (what
    /// the pool's ping would have found), so that the work can start again; else the error.
    pub(super) async fn renew(
        &mut self,
        pool: &AnyPool,
        error: sqlx::Error,
    ) -> Result<(), StoreError> {
        if !self.reused || !unreachable(&error) {
            return Err(error.into());
        }
        tracing::debug!(%error, "a held store connection was closed; opening another");
        (self.conn, self.opened) = self.held.open(pool).await?;
        self.reused = false;
        Ok(())
    }

    /// The work is done and left the connection as it found it: it is held for the next.
    pub(super) fn keep(mut self) {
        *self.slot = Some((self.conn, self.opened));
    }
}
