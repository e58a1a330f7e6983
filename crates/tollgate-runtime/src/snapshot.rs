//! The compiled, immutable configuration a request runs against.

use std::sync::Arc;

use http::HeaderName;
use ipnet::IpNet;
use tollgate_model::{AccessLog, HostPolicy, Limits, PathNormalization, Timeouts};
use tollgate_plugin_api::RouteInfo;
use tollgate_upstream::UpstreamPool;

use crate::{
    Chain, CompiledRewrite, DeprecationHeaders, Environments, MockResponse, RouteSlot, Routes,
    TlsSettings,
};

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

/// A compiled route, in one environment: a route of an API version live in several
/// environments is compiled once per environment (its service may resolve differently there,
/// and it may be deprecated in one and not another); its policy chain is shared.
#[derive(Debug, Clone)]
pub struct CompiledRoute {
    /// Names for logs, metrics and policies.
    pub info: Arc<RouteInfo>,
    /// The API's version.
    pub api_version: Arc<str>,
    /// Index into [`Snapshot::environments`].
    pub environment: usize,
    /// Index into [`Snapshot::services`].
    pub service: usize,
    /// Headers announcing the API version's deprecation in this environment.
    pub deprecation: Option<Arc<DeprecationHeaders>>,
    /// Path rewrite.
    pub rewrite: Option<CompiledRewrite>,
    /// Host header policy.
    pub host_header: HostPolicy,
    /// Policies, per phase: index into [`Snapshot::chains`] (see [`Snapshot::chain`]).
    pub chain: usize,
    /// The data plane's state for this route, kept across revisions while it is unchanged.
    pub slot: Arc<RouteSlot>,
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
    /// Environments, each with its router, and the tables that select one per request.
    pub environments: Environments,
    /// Routes of every environment, named by router matches.
    pub routes: Routes,
    /// Policy chains, indexed by routes: routes share their API's chain unless they have
    /// policies of their own.
    pub chains: Vec<Arc<Chain>>,
    /// Services, indexed by routes. A service whose targets use `${vars.NAME}` appears once
    /// per distinct resolution (same name); identical resolutions share one entry and pool.
    pub services: Vec<CompiledService>,
    /// Policies that run when no route matched (global policies).
    pub fallback_chain: Arc<Chain>,
    /// Downstream TLS, when certificates are configured.
    pub tls: Option<TlsSettings>,
    /// A sandbox snapshot for the admin API's debug endpoint: every response carries the
    /// request's [`crate::Trace`] in [`crate::TRACE_HEADER`]. Never set on served snapshots.
    pub debug: bool,
}

impl Snapshot {
    /// The policy chain of `route`, a route of this snapshot (the compiler gives every route
    /// a chain of its snapshot; `None` for a route from elsewhere, which callers must refuse
    /// rather than run without its policies).
    #[inline]
    pub fn chain(&self, route: &CompiledRoute) -> Option<&Chain> {
        self.chains.get(route.chain).map(|c| &**c)
    }
}
