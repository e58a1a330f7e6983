//! What the store persists: documents, change sets, audit entries and admin tokens.

use serde::{Deserialize, Serialize};

/// One stored object: a JSON body under a kind and a key (`service` / `billing`).
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// Object kind (`service`, `api_version`, ...).
    pub kind: String,
    /// Key within the kind.
    pub key: String,
    /// JSON body; `None` for a deletion (tombstone).
    pub body: Option<String>,
    /// Store revision that last wrote the object.
    pub revision: i64,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// Unix seconds of the last write.
    pub updated_at: i64,
}

/// One write of a change set.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Create or replace an object with a JSON body.
    Put {
        /// Kind.
        kind: String,
        /// Key.
        key: String,
        /// JSON body.
        body: String,
    },
    /// Delete an object (kept as a tombstone).
    Delete {
        /// Kind.
        kind: String,
        /// Key.
        key: String,
    },
}

impl Change {
    /// The object written.
    pub fn target(&self) -> (&str, &str) {
        match self {
            Self::Put { kind, key, .. } | Self::Delete { kind, key } => (kind, key),
        }
    }
}

/// What a committed change set is recorded as in the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Who: the token's name (or `cli:<user>` for local commands).
    pub actor: String,
    /// What, as `kind.verb` (`service.update`, `api.publish`).
    pub action: String,
    /// Object kind.
    pub kind: String,
    /// Object key.
    pub key: String,
    /// JSON before the change (secrets only in their stored, protected form).
    pub before: Option<serde_json::Value>,
    /// JSON after the change.
    pub after: Option<serde_json::Value>,
}

/// An audit log entry as read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// Store revision the change produced.
    pub revision: i64,
    /// Unix seconds.
    pub at: i64,
    /// The record.
    #[serde(flatten)]
    pub record: AuditRecord,
}

/// Filters for reading the audit log, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only entries with an id below this (the previous page's last id).
    pub before_id: Option<i64>,
    /// Only this object kind.
    pub kind: Option<String>,
    /// Only this object key.
    pub key: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Page size.
    pub limit: u32,
}

/// Role of an admin token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Reads, publishes, rolls back, unpublishes, deprecates.
    Operator,
    /// Everything.
    Admin,
}

impl Role {
    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    /// Parses `viewer`, `operator` or `admin`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "viewer" => Some(Self::Viewer),
            "operator" => Some(Self::Operator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// An admin token as stored (its secret only as a hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Public identifier (shown in lists and the audit log).
    pub id: String,
    /// Name given at creation.
    pub name: String,
    /// What the token may do.
    pub role: Role,
    /// Lowercase hex SHA-256 of the token.
    #[serde(skip_serializing)]
    pub hash: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
}
