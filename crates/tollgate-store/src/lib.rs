//! The Tollgate configuration store.
//!
//! - [`Store`]: revisioned JSON documents in SQLite (embedded default, WAL mode) or
//!   PostgreSQL, committed with compare-and-swap on one store-wide revision, an append-only
//!   audit log, admin tokens kept as hashes, and a change feed (documents newer than a
//!   revision; PostgreSQL also notifies [`NOTIFY_CHANNEL`] on every commit).
//! - [`secrets`]: hashing and encryption of secrets at rest.
//!
//! The store is one type over sqlx's `Any` driver rather than a trait with one implementation
//! per engine: the two engines share every query, so a trait would only duplicate them.

mod db;
mod doc;
mod error;
mod feed;
pub mod secrets;
pub mod state;

pub use db::{Backend, Loaded, NOTIFY_CHANNEL, Store, redact};
pub use doc::{AuditEntry, AuditQuery, AuditRecord, Change, Doc, Role, TokenRecord};
pub use error::StoreError;
pub use feed::Feed;
pub use state::{
    ApiVersion, Collection, Deployment, Entry, Prepared, Projection, Release, ReleaseAction, State,
    WriteError, Writer,
};
pub use state::{ApiVersions, Consumers, Deployments, Environments, Policies, Releases, Services};
