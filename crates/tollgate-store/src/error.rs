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
    #[error("the store did not answer within {0:?} (it is down, unreachable or overloaded)")]
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

impl StoreError {
    /// True when the store could not be reached or did not answer (as opposed to refusing
    /// us: wrong credentials, unknown database, newer schema, invalid URL). A node may keep
    /// serving a cached state through the former, never through the latter.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Self::Connect { source, .. } | Self::Database(source) => unreachable(source),
            Self::Timeout(_) => true,
            _ => false,
        }
    }
}

/// Whether a driver error means the database is down or not answering.
pub(crate) fn unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        // 57P01..57P03: the server is shutting down or starting up.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| code.starts_with("57P")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_is_about_the_network_not_about_refusal() {
        let io = StoreError::Connect {
            url: "postgres://x".into(),
            source: sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        };
        assert!(io.is_unreachable());
        assert!(StoreError::Timeout(std::time::Duration::from_secs(1)).is_unreachable());
        assert!(StoreError::Database(sqlx::Error::PoolTimedOut).is_unreachable());
        assert!(
            !StoreError::NewerSchema {
                detail: String::new()
            }
            .is_unreachable()
        );
        assert!(
            !StoreError::Connect {
                url: "postgres://x".into(),
                source: sqlx::Error::Configuration("bad".into()),
            }
            .is_unreachable()
        );
    }
}
