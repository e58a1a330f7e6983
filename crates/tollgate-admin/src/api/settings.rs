//! `/api/v1/settings`: the server settings every node shares (the `server` section of a
//! configuration file). Never set: the defaults, at revision 0.

use axum::extract::State as Shared;
use tollgate_model::{FieldPath, ServerConfig};
use tollgate_store::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::{Admin, Viewer};
use super::error::ApiError;
use super::extract::{IfMatch, JsonBody};
use super::openapi::{IfMatchHeader, ReadErrors, WriteErrors};
use super::respond::Tagged;
use crate::schema;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(get, put))
}

fn current(state: &State) -> (i64, ServerConfig) {
    state
        .settings
        .as_ref()
        .map_or((0, ServerConfig::default()), |s| {
            (s.revision, s.value.clone())
        })
}

/// Get the server settings.
#[utoipa::path(
    get,
    path = "/settings",
    tag = "settings",
    operation_id = "get_settings",
    responses(
        (status = 200, description = "The settings; `ETag` is their revision (\"0\" while never set).", body = schema::ServerConfig,
            headers(("ETag" = String, description = "The settings' revision."))),
        ReadErrors,
    )
)]
async fn get(_: Viewer, Shared(state): Shared<ApiState>) -> Tagged<ServerConfig> {
    let (revision, settings) = current(&state.control.state());
    Tagged::ok(revision, settings)
}

/// Replace the server settings.
#[utoipa::path(
    put,
    path = "/settings",
    tag = "settings",
    operation_id = "put_settings",
    params(IfMatchHeader),
    request_body = schema::ServerConfig,
    responses(
        (status = 200, description = "The settings as stored.", body = schema::ServerConfig,
            headers(("ETag" = String, description = "The settings' revision."))),
        WriteErrors,
    )
)]
async fn put(
    Admin(caller): Admin,
    Shared(state): Shared<ApiState>,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<ServerConfig>,
) -> Result<Tagged<ServerConfig>, ApiError> {
    let written = state
        .control
        .write(caller.actor(), |w| w.put_settings(body.clone(), if_match))
        .await
        .map_err(|e| ApiError::write(e, Some(&FieldPath::root().key("server"))))?;
    let (revision, settings) = current(&written.state);
    Ok(Tagged::ok(revision, settings))
}
