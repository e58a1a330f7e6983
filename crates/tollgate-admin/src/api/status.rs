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

/// What this node serves.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Status {
    /// The configuration revision this node serves.
    revision: i64,
    /// Whether writes are refused (file mode).
    read_only: bool,
    /// Where the configuration comes from.
    backend: BackendName,
    /// Tollgate's version.
    version: String,
}

/// What this node serves: revision, mode, backend.
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
        read_only: state.control.read_only(),
        backend,
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}
