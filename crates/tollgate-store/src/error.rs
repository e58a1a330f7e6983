//! Store errors.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store URL is not one we can use.
    #[error("invalid store {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given (credentials removed).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database could not be reached or refused us.
    #[error("cannot connect to the store at {url}: {source}")]
    Connect {
        /// The URL (credentials removed).
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The database holds a schema this binary does not know (written by a newer release).
    #[error(
        "the store's schema is newer than this binary understands ({detail}); upgrade Tollgate or use a store of this version"
    )]
    NewerSchema {
        /// What the migrator reported.
        detail: String,
    },
    /// Applying migrations failed.
    #[error("cannot migrate the store's schema: {0}")]
    Migrate(String),
    /// Another writer committed first: the change was prepared against `expected`, the store
    /// is at `current`. Nothing was written.
    #[error("the store changed concurrently (expected revision {expected}, found {current})")]
    Conflict {
        /// The revision the change was based on.
        expected: i64,
        /// The store's revision.
        current: i64,
    },
    /// A stored document could not be read back (corrupt or hand-edited row).
    #[error("stored {kind} {key:?} is unreadable: {reason}")]
    Corrupt {
        /// Document kind.
        kind: String,
        /// Document key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The database did not answer in time.
    #[error("the store did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// Any other database error.
    #[error("store error: {0}")]
    Database(#[from] sqlx::Error),
    /// A secret could not be protected or recovered.
    #[error("{0}")]
    Secret(String),
    /// File system error (data directory, key file).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}
