//! Mirror of `tollgate_model::Certificate`.

use utoipa::ToSchema;

/// A named downstream TLS certificate: a PEM chain and its private key. The key is accepted
/// in clear (`key`, input only) and stored encrypted (`key_encrypted`, what exports carry);
/// answers of `/certificates` never contain it in any form.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Certificate {
    /// Unique name (1-128 of letters, digits, `-`, `_`, `.`).
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    name: String,
    /// Free text for people.
    #[serde(default)]
    description: Option<String>,
    /// Labels for filtering.
    #[serde(default)]
    tags: Vec<String>,
    /// The certificate chain as PEM text, leaf first.
    cert: String,
    /// The private key as PEM text, in clear (input only; stored encrypted). On replace,
    /// without `key` and `key_encrypted` the stored key is kept.
    #[serde(default)]
    key: Option<String>,
    /// The private key encrypted with the store's key (as exported).
    #[serde(default)]
    key_encrypted: Option<String>,
    /// Server names (SNI) this certificate answers for; empty: the DNS names of the
    /// certificate's subject alternative names (or its common name).
    #[serde(default)]
    hosts: Vec<String>,
}
