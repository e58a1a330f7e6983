//! Mirrors of `tollgate_model::service`.

use std::collections::BTreeMap;

use utoipa::ToSchema;

use super::Duration;

/// A backend: a weighted pool of targets, or a built-in `mock` backend.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Service {
    /// Unique name, referenced by routes (1-128 of letters, digits, `-`, `_`, `.`).
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    name: String,
    /// Upstream targets; required unless `mock` is set.
    #[serde(default)]
    targets: Vec<Target>,
    /// Protocol spoken to the targets.
    #[serde(default)]
    protocol: Protocol,
    /// Upstream timeouts.
    #[serde(default)]
    timeouts: UpstreamTimeouts,
    /// Upstream connection pool.
    #[serde(default)]
    pool: Pool,
    /// TLS to `https://` targets.
    #[serde(default)]
    tls: UpstreamTls,
    /// Answer from the gateway itself instead of forwarding.
    #[serde(default)]
    mock: Option<MockBackend>,
}

/// One upstream target.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Target {
    /// `http://host:port` or `https://host:port`, optionally with a base path.
    #[schema(pattern = "^https?://")]
    url: String,
    /// Relative share of requests; 0 disables the target.
    #[serde(default)]
    #[schema(default = 1)]
    weight: u32,
}

/// Protocol used towards upstream targets.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Protocol {
    /// HTTP/1.1 (default).
    Http1,
    /// HTTP/2 (prior knowledge on `http://`, ALPN on `https://`).
    Http2,
}

/// Upstream timeouts.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpstreamTimeouts {
    /// TCP (and TLS) connect (default 5s).
    #[serde(default)]
    connect: Duration,
    /// From the request being sent until the response head arrives (default 60s).
    #[serde(default)]
    response: Duration,
}

/// Upstream connection pool.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pool {
    /// Idle connections kept per target and worker (default 128).
    #[serde(default)]
    max_idle_per_target: usize,
    /// How long an idle upstream connection is kept (default 90s).
    #[serde(default)]
    idle_timeout: Duration,
}

/// TLS towards the upstream; verification is on unless switched off.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpstreamTls {
    /// PEM file of CA certificates to trust instead of the built-in web roots.
    #[serde(default)]
    ca: Option<String>,
    /// Server name to send and verify; default: the target's host.
    #[serde(default)]
    sni: Option<String>,
    /// Accept any certificate (tests and lab setups only).
    #[serde(default)]
    insecure_skip_verify: bool,
}

/// A backend that answers from the gateway itself.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MockBackend {
    /// Status code (200-599, default 200).
    #[serde(default)]
    status: u16,
    /// Response headers.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Response body (text).
    #[serde(default)]
    body: String,
    /// Answer with the received request as JSON instead of `body`.
    #[serde(default)]
    echo: bool,
}
