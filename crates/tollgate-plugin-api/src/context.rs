//! Per-request state shared by the proxy and the policies of one request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::HeaderValue;

/// Names of what a request was routed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// API name.
    pub api: Arc<str>,
    /// Route name.
    pub route: Arc<str>,
    /// Service name.
    pub service: Arc<str>,
}

/// Path parameters captured by the route pattern, in pattern order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(Arc<str>, String)>);

impl Params {
    /// The value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// State of one request, created by the proxy when the request head arrives and dropped after
/// the log phase.
#[derive(Debug)]
pub struct RequestCtx {
    /// The request id (generated or accepted from the client).
    pub request_id: HeaderValue,
    /// The connection's peer address (not the forwarded one).
    pub peer_addr: SocketAddr,
    /// The client address: the peer, or the forwarded client when the peer is a trusted proxy.
    pub client_addr: std::net::IpAddr,
    /// True when the request arrived over TLS.
    pub tls: bool,
    /// When the request head was received.
    pub started: Instant,
    /// The name of the environment serving the request, once selected (before routing).
    pub environment: Option<Arc<str>>,
    /// What the request was routed to, once routed.
    pub route: Option<Arc<RouteInfo>>,
    /// Captured path parameters.
    pub params: Params,
    /// A limit on the request body, set by policies; the proxy enforces the smallest.
    pub body_limit: Option<u64>,
    /// Typed data policies share with their own later hooks (e.g. access → response).
    pub extensions: http::Extensions,
}

impl RequestCtx {
    /// A context for a request from `peer_addr`.
    pub fn new(request_id: HeaderValue, peer_addr: SocketAddr, tls: bool) -> Self {
        Self {
            request_id,
            peer_addr,
            client_addr: peer_addr.ip(),
            tls,
            started: Instant::now(),
            environment: None,
            route: None,
            params: Params::default(),
            body_limit: None,
            extensions: http::Extensions::new(),
        }
    }

    /// Lowers the request body limit to `limit` (a policy can only tighten it).
    pub fn limit_body(&mut self, limit: u64) {
        self.body_limit = Some(self.body_limit.map_or(limit, |l| l.min(limit)));
    }
}
