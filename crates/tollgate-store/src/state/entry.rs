//! One stored object with its bookkeeping.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Doc, StoreError};

/// A value with the store revision that last wrote it (its ETag) and its timestamps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry<T> {
    /// The object.
    pub value: T,
    /// Store revision of the last write.
    pub revision: i64,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// Unix seconds of the last write.
    pub updated_at: i64,
}

impl<T: DeserializeOwned> Entry<T> {
    pub(crate) fn decode(doc: &Doc, body: &str) -> Result<Self, StoreError> {
        let value = serde_json::from_str(body).map_err(|e| StoreError::Corrupt {
            kind: doc.kind.clone(),
            key: doc.key.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            value,
            revision: doc.revision,
            created_at: doc.created_at,
            updated_at: doc.updated_at,
        })
    }
}

impl<T> Entry<T> {
    /// A new entry written at `revision` now (what a commit at that revision stores).
    pub fn new_at(value: T, revision: i64, created_at: i64, now: i64) -> Self {
        Self {
            value,
            revision,
            created_at,
            updated_at: now,
        }
    }
}
