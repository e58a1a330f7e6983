//! Downstream TLS settings of a node: certificate *files* chosen by SNI and the oldest protocol
//! version. Certificates managed as named objects (inline PEM, stored by the control plane)
//! are [`crate::Certificate`]s, listed at the top level of a configuration.

use serde::{Deserialize, Serialize};

/// TLS termination settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Certificate files; the one whose names match the client's SNI is used, the first is the
    /// default.
    pub certificates: Vec<CertificateFile>,
    /// Oldest protocol version accepted (`"1.2"` or `"1.3"`).
    pub min_version: TlsVersion,
}

/// A certificate chain and its private key, both PEM files, re-read on every reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFile {
    /// PEM file with the certificate chain, leaf first.
    pub cert: String,
    /// PEM file with the private key.
    pub key: String,
    /// Server names this certificate answers for; default: the names in the certificate.
    #[serde(default)]
    pub hosts: Vec<String>,
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2 (and 1.3).
    #[default]
    #[serde(rename = "1.2")]
    V1_2,
    /// TLS 1.3 only.
    #[serde(rename = "1.3")]
    V1_3,
}
