//! Certificates as named objects: a chain and its private key given inline as PEM text,
//! the downstream TLS certificates a store-mode gateway manages through its admin API (and
//! that files may list too, next to the node-local certificate *files* of `tls`).
//!
//! Like consumer secrets, the private key has two forms: `key` in clear where a person writes
//! it (a file, an admin API call), `key_encrypted` where a store keeps it (encrypted with the
//! store's key). Exports carry only `key_encrypted`, and apply accepts it back unchanged.
//! [`Certificate`]'s `Debug` never shows either form.

use serde::{Deserialize, Serialize};

/// A named certificate: a PEM chain (leaf first) and its private key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// Unique name.
    pub name: String,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Labels for filtering.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The certificate chain as PEM text, leaf first (public: shown by reads and exports).
    pub cert: String,
    /// The private key as PEM text, in clear (input only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The private key encrypted with the store's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_encrypted: Option<String>,
    /// Server names (SNI) this certificate answers for; empty: the DNS names of the leaf's
    /// subject alternative names (or its common name when it has none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |present: bool| if present { "Some(..)" } else { "None" };
        f.debug_struct("Certificate")
            .field("name", &self.name)
            .field("description", &self.description)
            .field("tags", &self.tags)
            .field("cert", &format_args!("{} bytes of PEM", self.cert.len()))
            .field("key", &format_args!("{}", redacted(self.key.is_some())))
            .field(
                "key_encrypted",
                &format_args!("{}", redacted(self.key_encrypted.is_some())),
            )
            .field("hosts", &self.hosts)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let c = Certificate {
            name: "c".into(),
            description: None,
            tags: vec![],
            cert: "-----BEGIN CERTIFICATE-----".into(),
            key: Some("-----BEGIN PRIVATE KEY-----SECRET".into()),
            key_encrypted: Some("v1:CIPHER".into()),
            hosts: vec![],
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("SECRET") && !shown.contains("CIPHER"),
            "{shown}"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_str::<Certificate>(r#"{"name": "c", "cert": "x", "snis": []}"#)
            .unwrap_err();
        assert!(e.to_string().contains("snis"), "{e}");
    }
}
