//! Services: where traffic goes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Duration;

/// A backend: a weighted pool of targets, or a built-in `mock` backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Unique name, referenced by routes.
    pub name: String,
    /// Upstream targets; required unless `mock` is set.
    #[serde(default)]
    pub targets: Vec<Target>,
    /// Protocol spoken to the targets.
    #[serde(default)]
    pub protocol: Protocol,
    /// Upstream timeouts.
    #[serde(default)]
    pub timeouts: UpstreamTimeouts,
    /// Upstream connection pool.
    #[serde(default)]
    pub pool: Pool,
    /// TLS to `https://` targets.
    #[serde(default)]
    pub tls: UpstreamTls,
    /// Answer from the gateway itself instead of forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock: Option<MockBackend>,
}

/// One upstream target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// `http://host:port` or `https://host:port`, optionally with a base path prefixed to
    /// every forwarded path.
    pub url: String,
    /// Relative share of requests (smooth weighted round robin); 0 disables the target.
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

/// Protocol used towards upstream targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// HTTP/1.1.
    #[default]
    Http1,
    /// HTTP/2: prior knowledge (h2c) on `http://`, ALPN `h2` on `https://`.
    Http2,
}

/// Upstream timeouts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamTimeouts {
    /// TCP (and TLS) connect.
    pub connect: Duration,
    /// From the request being sent until the response head arrives.
    pub response: Duration,
}

impl Default for UpstreamTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            response: Duration::from_secs(60),
        }
    }
}

/// Upstream connection pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pool {
    /// Idle connections kept per target and worker.
    pub max_idle_per_target: usize,
    /// How long an idle upstream connection is kept.
    pub idle_timeout: Duration,
}

impl Default for Pool {
    fn default() -> Self {
        Self {
            max_idle_per_target: 128,
            idle_timeout: Duration::from_secs(90),
        }
    }
}

/// TLS towards the upstream. Verification is on unless explicitly switched off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamTls {
    /// PEM file of CA certificates to trust instead of the built-in web roots.
    pub ca: Option<String>,
    /// Server name to send and verify; default: the target's host.
    pub sni: Option<String>,
    /// Accept any certificate. Dangerous: for tests and self-signed lab setups only.
    pub insecure_skip_verify: bool,
}

/// A backend that answers from the gateway itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockBackend {
    /// Status code.
    #[serde(default = "default_status")]
    pub status: u16,
    /// Response headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Response body (text).
    #[serde(default)]
    pub body: String,
    /// Answer with the received request as JSON (method, path, query, headers, body) instead
    /// of `body`.
    #[serde(default)]
    pub echo: bool,
}

fn default_status() -> u16 {
    200
}
