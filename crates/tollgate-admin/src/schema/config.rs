//! Mirrors of `tollgate_model::Config` and the parts only whole configurations have.

use std::collections::BTreeMap;

use utoipa::ToSchema;

use super::{Certificate, ConfigApi, Consumer, PolicySpec, ServerConfig, Service};

/// A whole configuration, as a file holds it and `GET /api/v1/config` exports it.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Listener addresses (node-local: ignored by `config/apply`).
    #[serde(default)]
    listen: Listen,
    /// HTTP server settings.
    #[serde(default)]
    server: ServerConfig,
    /// Downstream TLS (node-local: certificate files).
    #[serde(default)]
    tls: TlsConfig,
    /// Backends.
    #[serde(default)]
    services: Vec<Service>,
    /// APIs and their routes.
    #[serde(default)]
    apis: Vec<ConfigApi>,
    /// Policies applied to every route.
    #[serde(default)]
    policies: Vec<PolicySpec>,
    /// Deployment targets; none: one implicit `prod`.
    #[serde(default)]
    environments: Vec<Environment>,
    /// Callers and their credentials.
    #[serde(default)]
    consumers: Vec<Consumer>,
    /// Named downstream TLS certificates (inline PEM; keys only encrypted in exports).
    #[serde(default)]
    certificates: Vec<Certificate>,
}

/// Listener addresses.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Listen {
    /// Plain-text proxy listener (default `0.0.0.0:8080`).
    #[serde(default)]
    proxy: String,
    /// TLS proxy listener (default `0.0.0.0:8443`).
    #[serde(default)]
    proxy_tls: String,
    /// Admin listener (default `127.0.0.1:8081`): the admin API, and `/metrics` for any
    /// token.
    #[serde(default)]
    admin: String,
    /// Status listener: health and `/metrics` without a token (default: none).
    #[serde(default)]
    status: Option<String>,
}

/// TLS termination settings.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsConfig {
    /// Certificate files chosen by SNI; the first is the default.
    #[serde(default)]
    certificates: Vec<CertificateFile>,
    /// Oldest protocol version accepted.
    #[serde(default)]
    min_version: TlsVersion,
}

/// A certificate chain and its private key, both PEM files.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CertificateFile {
    /// PEM file with the certificate chain, leaf first.
    cert: String,
    /// PEM file with the private key.
    key: String,
    /// Server names this certificate answers for; default: the names in the certificate.
    #[serde(default)]
    hosts: Vec<String>,
}

/// A TLS protocol version.
#[derive(ToSchema)]
pub(crate) enum TlsVersion {
    /// TLS 1.2 and 1.3 (default).
    #[serde(rename = "1.2")]
    V1_2,
    /// TLS 1.3 only.
    #[serde(rename = "1.3")]
    V1_3,
}

/// A deployment target APIs are published to.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Environment {
    /// Unique name, e.g. `prod` or `test`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    name: String,
    /// Free text for people.
    #[serde(default)]
    description: Option<String>,
    /// Host names bound to this environment; empty: every host no other environment has.
    #[serde(default)]
    hosts: Vec<String>,
    /// Whether requests may select this environment with the environment header.
    #[serde(default)]
    header_selection: bool,
    /// Variables referenced from API and service definitions as `${vars.NAME}`.
    #[serde(default)]
    variables: BTreeMap<String, String>,
}
