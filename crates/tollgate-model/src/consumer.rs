//! Consumers (apps): caller identities with credentials, groups, policies and API grants.
//!
//! Secrets appear in two forms. Where a person writes them (a file, an admin API call) they
//! are given in clear (`key`, `password`, `secret`); a store keeps only a hash (`key_sha256`,
//! `password_hash`) or, for secrets the gateway must use itself to verify a signature, a
//! ciphertext (`secret_encrypted`). Exports carry those forms, never the clear text, and apply
//! accepts them back unchanged.

use serde::{Deserialize, Serialize};

use crate::PolicySpec;

/// A caller identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consumer {
    /// Unique name.
    pub name: String,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Labels for filtering.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Groups the consumer belongs to (referenced by ACL policies).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Ways the consumer proves who it is.
    #[serde(default)]
    pub credentials: Vec<Credential>,
    /// Policies applied to this consumer's requests (narrowest scope: they override route,
    /// API and global ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicySpec>,
    /// APIs the consumer is authorized for; enforced by authorization policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<Grant>,
}

/// Authorization of a consumer for one API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// API name.
    pub api: String,
    /// Environments the grant holds in; empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<String>,
}

/// One credential of a consumer; `id` is unique within the consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Credential {
    /// An API key (`key-auth`): exactly one of `key` (clear) or `key_sha256` (hex digest).
    KeyAuth {
        /// Identifier within the consumer.
        id: String,
        /// The key in clear (input only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// Lowercase hex SHA-256 of the key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_sha256: Option<String>,
    },
    /// A user name and password (`basic-auth`): exactly one of `password` (clear) or
    /// `password_hash` (PHC string, Argon2id).
    BasicAuth {
        /// Identifier within the consumer.
        id: String,
        /// User name, unique across consumers.
        username: String,
        /// The password in clear (input only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        /// PHC string of the password's Argon2id hash.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password_hash: Option<String>,
    },
    /// A shared secret for signed requests (HTTP Message Signatures with HMAC): `id` is the
    /// `keyid`; exactly one of `secret` (clear) or `secret_encrypted`.
    Hmac {
        /// Identifier within the consumer, and the signature's `keyid`.
        id: String,
        /// The secret in clear (input only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
        /// The secret encrypted with the store's key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_encrypted: Option<String>,
    },
    /// JSON Web Tokens from one issuer: a PEM public key (RS*/ES*/EdDSA) or a shared secret
    /// (HS*, as `secret` or `secret_encrypted`).
    Jwt {
        /// Identifier within the consumer.
        id: String,
        /// The `iss` claim this credential accepts.
        issuer: String,
        /// Signature algorithm, e.g. `RS256`, `ES256`, `HS256`.
        algorithm: String,
        /// PEM public key for asymmetric algorithms.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        public_key: Option<String>,
        /// Shared secret in clear for HS* (input only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
        /// Shared secret encrypted with the store's key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_encrypted: Option<String>,
    },
}

impl Credential {
    /// The credential's identifier within its consumer.
    pub fn id(&self) -> &str {
        match self {
            Self::KeyAuth { id, .. }
            | Self::BasicAuth { id, .. }
            | Self::Hmac { id, .. }
            | Self::Jwt { id, .. } => id,
        }
    }

    /// The `type` tag as written in files.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::KeyAuth { .. } => "key-auth",
            Self::BasicAuth { .. } => "basic-auth",
            Self::Hmac { .. } => "hmac",
            Self::Jwt { .. } => "jwt",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_tagged_and_strict() {
        let c: Credential =
            serde_json::from_str(r#"{"type": "key-auth", "id": "k1", "key": "s3cret"}"#).unwrap();
        assert_eq!(c.kind(), "key-auth");
        assert_eq!(c.id(), "k1");
        let e = serde_json::from_str::<Credential>(r#"{"type": "key-auth", "id": "k", "kye": 1}"#)
            .unwrap_err();
        assert!(e.to_string().contains("kye"), "{e}");
        let e = serde_json::from_str::<Credential>(r#"{"type": "oauth", "id": "k"}"#).unwrap_err();
        assert!(e.to_string().contains("oauth"), "{e}");
    }
}
