//! The admin REST API under `/api/v1`: one module per resource, each registering its handlers
//! (annotated with `#[utoipa::path]`) on an [`OpenApiRouter`], so the routes and the OpenAPI
//! document come from the same code. Every write goes through [`Control::write`]: prepared on
//! a copy of the state, validated like a configuration file, committed all or nothing, and
//! audited with the caller's token name as the actor.

mod admin_tokens;
mod apis;
mod audit;
mod auth;
mod certificates;
mod config;
mod consumers;
mod credentials;
mod debug;
mod environments;
mod error;
mod extract;
mod lifecycle;
mod openapi;
mod openapi_docs;
mod page;
mod policies;
mod releases;
mod resources;
mod respond;
mod services;
mod settings;
mod status;
mod versions;

use std::sync::Arc;

use axum::Router;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use crate::control::Control;
use crate::tokens::TokenSource;

/// The largest JSON body of an object write.
pub(crate) const BODY_LIMIT: usize = 2 * 1024 * 1024;
/// The largest configuration upload (`/config/diff`, `/config/apply`).
pub(crate) const CONFIG_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// What the API handlers share.
#[derive(Clone)]
pub(crate) struct ApiState {
    /// The configuration state and its one write path.
    pub control: Arc<Control>,
    /// The store holding admin tokens (token management; `None` in file mode).
    pub token_store: Option<tollgate_store::Store>,
    /// Where tokens are checked (`None`: every call is refused).
    pub tokens: Option<Arc<dyn TokenSource>>,
    /// The OpenAPI document, serialized once.
    pub openapi: Arc<str>,
    /// Every metric of the process (`/metrics`, for any valid token).
    pub registry: Arc<prometheus_client::registry::Registry>,
}

/// The routes and their OpenAPI description, before state is attached.
fn parts() -> (Router<ApiState>, utoipa::openapi::OpenApi) {
    let v1 = OpenApiRouter::new()
        .merge(services::routes())
        .merge(policies::routes())
        .merge(environments::routes())
        .merge(consumers::routes())
        .merge(credentials::routes())
        .merge(certificates::routes())
        .merge(settings::routes())
        .merge(apis::routes())
        .merge(versions::routes())
        .merge(openapi_docs::routes())
        .merge(lifecycle::routes())
        .merge(debug::routes())
        .merge(releases::routes())
        .merge(audit::routes())
        .merge(admin_tokens::routes())
        .merge(config::routes())
        .merge(status::routes())
        .merge(openapi::routes())
        .fallback(|| async { error::ApiError::NotFound("no such admin API endpoint".into()) });
    let (routes, doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest("/api/v1", v1)
        .split_for_parts();
    let routes = routes
        .method_not_allowed_fallback(|| async { error::ApiError::MethodNotAllowed })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT));
    (routes, doc)
}

/// The `/api/v1` routes over `control`, and `/metrics` behind the same tokens.
pub(crate) fn router(
    control: Arc<Control>,
    token_store: Option<tollgate_store::Store>,
    tokens: Option<Arc<dyn TokenSource>>,
    registry: Arc<prometheus_client::registry::Registry>,
) -> Router {
    let (routes, doc) = parts();
    routes
        .route("/metrics", axum::routing::get(metrics))
        .with_state(ApiState {
            control,
            token_store,
            tokens,
            openapi: openapi::render(&doc).into(),
            registry,
        })
}

/// `/metrics` on the admin listener: any valid token. A token-less scraper uses a status
/// listener (`--status-listen`, `listen.status`), which the 401 says.
async fn metrics(
    auth: Result<auth::Viewer, error::ApiError>,
    axum::extract::State(state): axum::extract::State<ApiState>,
) -> Result<axum::response::Response, error::ApiError> {
    match auth {
        Ok(_) => Ok(crate::encode_metrics(&state.registry)),
        Err(error::ApiError::Unauthorized(message)) => Err(error::ApiError::Unauthorized(format!(
            "{message}; /metrics on the admin listener needs a token of any role (scrape a \
             status listener, `--status-listen` or `listen.status`, to go without one)"
        ))),
        Err(other) => Err(other),
    }
}

/// The OpenAPI document as served.
pub(crate) fn openapi_json() -> String {
    openapi::render(&parts().1)
}
