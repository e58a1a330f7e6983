//! Mirrors of `tollgate_model::consumer`.

use utoipa::ToSchema;

use super::PolicySpec;

/// A caller identity. Secrets are accepted in clear on input (`key`, `password`, `secret`)
/// and stored and returned only hashed (`key_sha256`, `password_hash`) or encrypted
/// (`secret_encrypted`).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Consumer {
    /// Unique name (1-128 of letters, digits, `-`, `_`, `.`).
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    name: String,
    /// Free text for people.
    #[serde(default)]
    description: Option<String>,
    /// Labels for filtering.
    #[serde(default)]
    tags: Vec<String>,
    /// Groups the consumer belongs to (referenced by ACL policies).
    #[serde(default)]
    groups: Vec<String>,
    /// Ways the consumer proves who it is.
    #[serde(default)]
    credentials: Vec<Credential>,
    /// Policies applied to this consumer's requests.
    #[serde(default)]
    policies: Vec<PolicySpec>,
    /// APIs the consumer is authorized for.
    #[serde(default)]
    grants: Vec<Grant>,
}

/// Authorization of a consumer for one API.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Grant {
    /// API name.
    api: String,
    /// Environments the grant holds in; empty: all.
    #[serde(default)]
    environments: Vec<String>,
}

/// One credential of a consumer; `id` is unique within the consumer.
#[derive(ToSchema)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum Credential {
    /// An API key: exactly one of `key` (clear, input only) or `key_sha256`.
    KeyAuth {
        /// Identifier within the consumer.
        id: String,
        /// The key in clear (input only; stored as its SHA-256).
        #[serde(default)]
        key: Option<String>,
        /// Lowercase hex SHA-256 of the key.
        #[serde(default)]
        key_sha256: Option<String>,
    },
    /// A user name and password: exactly one of `password` (clear, input only) or
    /// `password_hash` (Argon2id PHC string).
    BasicAuth {
        /// Identifier within the consumer.
        id: String,
        /// User name, unique across consumers.
        username: String,
        /// The password in clear (input only; stored as an Argon2id hash).
        #[serde(default)]
        password: Option<String>,
        /// PHC string of the password's Argon2id hash.
        #[serde(default)]
        password_hash: Option<String>,
    },
    /// A shared secret for signed requests (HMAC): exactly one of `secret` (clear, input only)
    /// or `secret_encrypted`.
    Hmac {
        /// Identifier within the consumer, and the signature's `keyid`.
        id: String,
        /// The secret in clear (input only; stored encrypted).
        #[serde(default)]
        secret: Option<String>,
        /// The secret encrypted with the store's key.
        #[serde(default)]
        secret_encrypted: Option<String>,
    },
    /// JSON Web Tokens from one issuer: a PEM public key, or a shared secret for HS*.
    Jwt {
        /// Identifier within the consumer.
        id: String,
        /// The `iss` claim this credential accepts.
        issuer: String,
        /// Signature algorithm, e.g. `RS256`, `ES256`, `HS256`.
        algorithm: String,
        /// PEM public key for asymmetric algorithms.
        #[serde(default)]
        public_key: Option<String>,
        /// Shared secret in clear for HS* (input only; stored encrypted).
        #[serde(default)]
        secret: Option<String>,
        /// Shared secret encrypted with the store's key.
        #[serde(default)]
        secret_encrypted: Option<String>,
    },
}
