//! The Tollgate configuration store.
//!
//! - [`Store`]: revisioned JSON documents in SQLite (embedded default, WAL mode) or
//!   PostgreSQL, committed with compare-and-swap on one store-wide revision, an append-only
//!   audit log, admin tokens kept as hashes, and a change feed (documents newer than a
//!   revision; PostgreSQL also notifies [`NOTIFY_CHANNEL`] on every commit).
//! - [`Feed`]: the latest state of a store, kept current by polling and, on PostgreSQL, by
//!   change notifications; [`StoreHealth`] says how the store is doing.
//! - [`cache`]: a node's local copy of the last state it served, to start from while the
//!   store is unreachable.
//! - [`secrets`]: hashing and encryption of secrets at rest.
//!
//! The store is one type over sqlx's `Any` driver rather than a trait with one implementation
//! per engine: the two engines share every query, so a trait would only duplicate them.

pub mod cache;
mod db;
mod doc;
mod error;
mod feed;
mod health;
mod listen;
pub mod secrets;
pub mod state;

pub use db::{Backend, CONNECT_TIMEOUT, Loaded, NOTIFY_CHANNEL, Store, Synchronous, redact};
pub use doc::{AuditEntry, AuditQuery, AuditRecord, Change, Doc, Role, TokenRecord};
pub use error::StoreError;
pub use feed::{Feed, Watcher};
pub use health::StoreHealth;
pub use state::{
    ApiVersion, Collection, Deployment, Entry, Prepared, Projection, Release, ReleaseAction, State,
    WriteError, Writer,
};
pub use state::{
    ApiVersions, Certificates, Consumers, Deployments, Environments, Policies, Releases, Services,
};
