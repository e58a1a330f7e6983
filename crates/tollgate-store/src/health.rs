//! How a node's connection to its store is doing, for logs, metrics and health endpoints.

use serde::Serialize;

/// The store as one node sees it. Counters only grow for the life of the process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoreHealth {
    /// The last read of the store succeeded.
    pub reachable: bool,
    /// Why the last read failed, while the store is unreachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Unix seconds since when the store has been unreachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreachable_since: Option<i64>,
    /// The newest store revision this node has read (it serves this one or is compiling it).
    pub revision: i64,
    /// The state came from the node's local cache and the store has not been read since.
    pub from_cache: bool,
    /// PostgreSQL only: the connection that receives change notifications is up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listening: Option<bool>,
    /// Failed reads of the store.
    pub errors: u64,
    /// Change notifications received.
    pub notifications: u64,
    /// Reads of what changed since the state's revision (after a notification, a poll that
    /// found a newer revision, or a commit through this node that it had not published).
    pub reads: u64,
    /// Full re-reads of the store (after every (re)connection of the notification listener).
    pub resyncs: u64,
}
