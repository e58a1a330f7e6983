//! Where the gateway listens.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Listener addresses. Defaults: proxy `0.0.0.0:8080`, TLS proxy `0.0.0.0:8443` (only used when
/// certificates are configured), admin `127.0.0.1:8081`, no status listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// Plain-text proxy listener (HTTP/1.1 and HTTP/2 with prior knowledge).
    #[serde(default = "default_proxy")]
    pub proxy: SocketAddr,
    /// TLS proxy listener; active only when `tls.certificates` is not empty.
    #[serde(default = "default_proxy_tls")]
    pub proxy_tls: SocketAddr,
    /// Admin listener: the admin API, `/metrics` (both need a token) and health. Binds to
    /// loopback by default.
    #[serde(default = "default_admin")]
    pub admin: SocketAddr,
    /// Status listener: health and `/metrics` without a token, for load balancers and
    /// scrapers (off by default; `--status-listen` overrides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SocketAddr>,
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            proxy: default_proxy(),
            proxy_tls: default_proxy_tls(),
            admin: default_admin(),
            status: None,
        }
    }
}

fn default_proxy() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8080))
}

fn default_proxy_tls() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8443))
}

fn default_admin() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8081))
}
