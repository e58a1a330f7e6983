//! The admin listener.
//!
//! Serves `/metrics` (Prometheus text format), `/health/live`, `/health/ready` and, when the
//! binary hands it a [`control::Control`], the admin REST API under `/api/v1` (bearer tokens,
//! roles, OpenAPI 3.1 document at `/api/v1/openapi.json`; see `docs/admin-api.md`). With the
//! API, `/metrics` needs a token too (any role); the health endpoints never do (load
//! balancers probe them without credentials). It never sees the proxy: the binary hands it
//! the metrics registry, a readiness flag, a [`HealthProbe`] for what the node serves, the
//! control core and where admin tokens come from. [`router`] without an API is what a status
//! listener serves: health and metrics without a token, for scrapers on a network the
//! operator chose.

mod api;
pub mod control;
pub mod debug;
mod schema;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

use crate::control::Control;
use crate::tokens::{StoreTokens, TokenSource};

/// What the admin endpoints read. Built with [`AdminState::new`], then
/// [`AdminState::with_api`] (and, for file mode, [`AdminState::with_token_source`]).
#[derive(Clone)]
pub struct AdminState {
    /// Every metric of the process.
    pub registry: Arc<Registry>,
    /// True once a configuration snapshot is serving.
    pub ready: Arc<AtomicBool>,
    control: Option<Arc<Control>>,
    token_store: Option<tollgate_store::Store>,
    token_source: Option<Arc<dyn TokenSource>>,
    token_copy_dir: Option<std::path::PathBuf>,
    probe: Option<Arc<dyn HealthProbe>>,
}

/// What a node reports on `/health/ready`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeHealth {
    /// The configuration revision the data plane serves (the store revision in store mode).
    pub revision: u64,
    /// What the node runs: `all`, `data-plane` or `control-plane`.
    pub role: &'static str,
    /// The store as this node sees it (store mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<tollgate_store::StoreHealth>,
}

/// Where the health endpoints learn what the node serves.
pub trait HealthProbe: Send + Sync {
    /// The node's health now.
    fn health(&self) -> NodeHealth;
}

impl AdminState {
    /// Metrics and health only; the admin API is not served until [`AdminState::with_api`].
    pub fn new(registry: Arc<Registry>, ready: Arc<AtomicBool>) -> Self {
        Self {
            registry,
            ready,
            control: None,
            token_store: None,
            token_source: None,
            token_copy_dir: None,
            probe: None,
        }
    }

    /// Reports what `probe` says on `/health/ready`, besides the readiness flag.
    pub fn with_probe(mut self, probe: Arc<dyn HealthProbe>) -> Self {
        self.probe = Some(probe);
        self
    }

    /// Serves the admin REST API over `control` (`None`: no API). Tokens are looked up in
    /// `tokens` (by SHA-256, cached for a few seconds) and managed through `/api/v1/tokens`;
    /// without a store and without [`AdminState::with_token_source`], every API call is
    /// refused with 401.
    pub fn with_api(
        mut self,
        control: Option<Arc<Control>>,
        tokens: Option<tollgate_store::Store>,
    ) -> Self {
        self.control = control;
        self.token_store = tokens;
        self
    }

    /// Keeps the copy of the store's token table in `data_dir`, so that a node restarted
    /// while its store is unreachable still accepts its tokens (see [`StoreTokens`]).
    pub fn with_token_copy_in(mut self, data_dir: std::path::PathBuf) -> Self {
        self.token_copy_dir = Some(data_dir);
        self
    }

    /// Where tokens are checked, instead of the store given to [`AdminState::with_api`]
    /// (e.g. [`tokens::StaticTokens`] read from a token file in file mode). Token management
    /// through the API still needs a store.
    pub fn with_token_source(mut self, source: Arc<dyn TokenSource>) -> Self {
        self.token_source = Some(source);
        self
    }
}

/// The admin routes: with an API, `/metrics` needs a token; without one (a status
/// listener), it does not.
pub fn router(state: AdminState) -> Router {
    let health = Router::new()
        .route("/health/live", get(|| async { "ok\n" }))
        .route("/health/ready", get(ready));
    let Some(control) = state.control.clone() else {
        return health.route("/metrics", get(metrics)).with_state(state);
    };
    let tokens = state.token_source.clone().or_else(|| {
        state.token_store.clone().map(|store| {
            let mut source = StoreTokens::new(store);
            if let Some(dir) = &state.token_copy_dir {
                source = source.persisted_in(dir);
            }
            let source = Arc::new(source);
            source.refresh_in_background();
            source as Arc<dyn TokenSource>
        })
    });
    let registry = state.registry.clone();
    let token_store = state.token_store.clone();
    health
        .with_state(state)
        .merge(api::router(control, token_store, tokens, registry))
}

/// The admin API's OpenAPI 3.1 document, as served at `/api/v1/openapi.json` and checked in
/// as `docs/admin-openapi.json`.
pub fn openapi_json() -> String {
    api::openapi_json()
}

/// Serves the admin routes on an already bound listener until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Binds the admin listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

async fn metrics(State(state): State<AdminState>) -> axum::response::Response {
    encode_metrics(&state.registry)
}

/// Every metric of `registry` in the OpenMetrics text format.
pub(crate) fn encode_metrics(registry: &Registry) -> axum::response::Response {
    let mut body = String::with_capacity(16 * 1024);
    match prometheus_client::encoding::text::encode(&mut body, registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// 200 once a configuration snapshot serves (a node serving its last good snapshot while the
/// store is unreachable stays ready: the body says so), 503 before that and while shutting
/// down. The body is JSON: `status`, and with a probe the revision served, the role and the
/// store's condition.
async fn ready(State(state): State<AdminState>) -> impl IntoResponse {
    let ready = state.ready.load(Ordering::Acquire);
    let mut body = serde_json::json!({ "status": if ready { "ready" } else { "not_ready" } });
    if let Some(probe) = &state.probe
        && let (Some(map), Ok(serde_json::Value::Object(health))) =
            (body.as_object_mut(), serde_json::to_value(probe.health()))
    {
        map.extend(health);
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body))
}
