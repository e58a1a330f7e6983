//! The compiled, immutable configuration a request runs against.

use std::sync::Arc;

use http::HeaderName;
use ipnet::IpNet;
use tollgate_model::{AccessLog, HostPolicy, Limits, PathNormalization, Timeouts};
use tollgate_plugin_api::RouteInfo;
use tollgate_upstream::UpstreamPool;

use crate::{Chain, CompiledRewrite, MockResponse, Router, TlsSettings};

/// Where a service's traffic goes.
#[derive(Debug, Clone)]
pub enum Backend {
    /// Upstream targets.
    Pool(Arc<UpstreamPool>),
    /// The gateway answers itself.
    Mock(Arc<MockResponse>),
}

/// A compiled service.
#[derive(Debug, Clone)]
pub struct CompiledService {
    /// Name.
    pub name: Arc<str>,
    /// Backend.
    pub backend: Backend,
    /// Upstream response timeout.
    pub response_timeout: std::time::Duration,
}

/// A compiled route.
#[derive(Debug, Clone)]
pub struct CompiledRoute {
    /// Names for logs, metrics and policies.
    pub info: Arc<RouteInfo>,
    /// Index into [`Snapshot::services`].
    pub service: usize,
    /// Path rewrite.
    pub rewrite: Option<CompiledRewrite>,
    /// Host header policy.
    pub host_header: HostPolicy,
    /// Policies, per phase.
    pub chain: Arc<Chain>,
}

/// Server settings that may change on reload.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Client timeouts (header and idle apply to new connections).
    pub timeouts: Timeouts,
    /// Request head bounds.
    pub limits: Limits,
    /// Peers whose forwarding headers are trusted.
    pub trusted_proxies: Vec<IpNet>,
    /// Path normalization.
    pub path_normalization: PathNormalization,
    /// Request id header.
    pub request_id_header: HeaderName,
    /// Accept incoming request ids.
    pub trust_request_id: bool,
    /// Access log.
    pub access_log: AccessLog,
}

/// Everything a request needs, compiled and immutable.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases with every published snapshot.
    pub revision: u64,
    /// Server settings.
    pub server: ServerSettings,
    /// The router.
    pub router: Router,
    /// Routes, indexed by router matches.
    pub routes: Vec<CompiledRoute>,
    /// Services, indexed by routes.
    pub services: Vec<CompiledService>,
    /// Policies that run when no route matched (global policies).
    pub fallback_chain: Arc<Chain>,
    /// Downstream TLS, when certificates are configured.
    pub tls: Option<TlsSettings>,
}
