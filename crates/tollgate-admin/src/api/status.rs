//! `GET /api/v1/status`: what this node serves.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use tollgate_store::Backend;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::Viewer;
use super::openapi::ListErrors;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(status))
}

/// Where the configuration comes from.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BackendName {
    /// A configuration file (the admin API is read-only).
    File,
    /// An embedded SQLite store.
    Sqlite,
    /// A PostgreSQL store.
    Postgres,
}

/// The store as this node sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StoreStatus {
    /// The last read of the store succeeded.
    reachable: bool,
    /// Why the last read failed, while the store is unreachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Unix seconds since when the store has been unreachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    unreachable_since: Option<i64>,
    /// The newest store revision this node has read.
    revision: i64,
    /// The node serves the state of its local cache and has not read the store since.
    from_cache: bool,
    /// PostgreSQL: the change-notification connection is up.
    #[serde(skip_serializing_if = "Option::is_none")]
    listening: Option<bool>,
}

/// What this node serves.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Status {
    /// The configuration revision this node serves.
    revision: i64,
    /// The store's condition (store mode only).
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<StoreStatus>,
    /// Whether writes are refused (file mode).
    read_only: bool,
    /// Where the configuration comes from.
    backend: BackendName,
    /// Tollgate's version.
    version: String,
}

/// What this node serves: revision, mode, backend, and the store's condition.
#[utoipa::path(
    get,
    path = "/status",
    tag = "meta",
    operation_id = "status",
    responses((status = 200, description = "This node's status.", body = Status), ListErrors)
)]
async fn status(_: Viewer, State(state): State<ApiState>) -> Json<Status> {
    let backend = match state.control.store().map(tollgate_store::Store::backend) {
        None => BackendName::File,
        Some(Backend::Sqlite) => BackendName::Sqlite,
        Some(Backend::Postgres) => BackendName::Postgres,
    };
    Json(Status {
        revision: state.control.state().revision,
        store: state.control.store_health().map(|h| StoreStatus {
            reachable: h.reachable,
            error: h.error,
            unreachable_since: h.unreachable_since,
            revision: h.revision,
            from_cache: h.from_cache,
            listening: h.listening,
        }),
        read_only: state.control.read_only(),
        backend,
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}
