//! `/api/v1/apis/{name}/versions`: the versions of an API. Drafts are edited with `PUT`;
//! a version that was ever published is immutable (409: create a new version); a version
//! live somewhere cannot be deleted (409: unpublish it first).

use axum::Json;
use axum::extract::State as Shared;
use axum::http::StatusCode;
use tollgate_model::Api;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::apis::{VersionSummary, no_api, version_path, version_summaries};
use super::auth::{Admin, Viewer};
use super::error::ApiError;
use super::extract::{IfMatch, JsonBody, Params, Segments};
use super::openapi::{IfMatchHeader, ReadErrors, WriteErrors};
use super::page::{self, Page, PageQuery, paginate};
use super::resources::same_name;
use super::respond::Tagged;
use crate::schema;

/// One page of versions, for the OpenAPI document.
type VersionPage = Page<VersionSummary>;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get, replace, delete))
}

/// List the versions of an API.
#[utoipa::path(
    get,
    path = "/apis/{name}/versions",
    tag = "apis",
    operation_id = "list_api_versions",
    params(("name" = String, Path, description = "The API's name."), PageQuery),
    responses(
        (status = 200, description = "One page, in version order.", body = VersionPage),
        ReadErrors,
    )
)]
async fn list(
    _: Viewer,
    Shared(state): Shared<ApiState>,
    Segments(name): Segments<String>,
    Params(query): Params<PageQuery>,
) -> Result<Json<Page<VersionSummary>>, ApiError> {
    let limit = page::limit(query.limit)?;
    let snapshot = state.control.state();
    let mut versions = version_summaries(&snapshot, &name);
    if versions.is_empty() {
        return Err(no_api(&name));
    }
    let keys = paginate(
        &versions,
        query.cursor.as_deref(),
        limit,
        |_, _| true,
        |k, _| k.clone(),
    )?;
    Ok(Json(Page {
        items: keys
            .items
            .iter()
            .filter_map(|k| versions.remove(k))
            .collect(),
        next_cursor: keys.next_cursor,
    }))
}

fn no_version(name: &str, version: &str) -> ApiError {
    ApiError::NotFound(format!("API {name:?} has no version {version:?}"))
}

/// Get the definition of one version of an API.
#[utoipa::path(
    get,
    path = "/apis/{name}/versions/{version}",
    tag = "apis",
    operation_id = "get_api_version",
    params(
        ("name" = String, Path, description = "The API's name."),
        ("version" = String, Path, description = "The version label."),
    ),
    responses(
        (status = 200, description = "The definition; `ETag` is the version's revision.", body = schema::Api,
            headers(("ETag" = String, description = "The version's revision."))),
        ReadErrors,
    )
)]
async fn get(
    _: Viewer,
    Shared(state): Shared<ApiState>,
    Segments(key): Segments<(String, String)>,
) -> Result<Tagged<Api>, ApiError> {
    let snapshot = state.control.state();
    let entry = snapshot
        .versions
        .get(&key)
        .ok_or_else(|| no_version(&key.0, &key.1))?;
    Ok(Tagged::ok(entry.revision, entry.value.definition.clone()))
}

/// Replace a draft version (published versions are immutable).
#[utoipa::path(
    put,
    path = "/apis/{name}/versions/{version}",
    tag = "apis",
    operation_id = "replace_api_version",
    params(
        ("name" = String, Path, description = "The API's name; must equal the body's."),
        ("version" = String, Path, description = "The version label; must equal the body's."),
        IfMatchHeader,
    ),
    request_body = schema::Api,
    responses(
        (status = 200, description = "Replaced (or unchanged); the definition as stored.", body = schema::Api,
            headers(("ETag" = String, description = "The version's revision."))),
        WriteErrors,
    )
)]
async fn replace(
    Admin(caller): Admin,
    Shared(state): Shared<ApiState>,
    Segments(key): Segments<(String, String)>,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<Api>,
) -> Result<Tagged<Api>, ApiError> {
    same_name("name", &key.0, &body.name)?;
    same_name("version", &key.1, &body.version)?;
    let written = state
        .control
        .write(caller.actor(), |w| {
            w.update_api_version(body.clone(), if_match)
        })
        .await
        .map_err(|e| ApiError::write(e, Some(&version_path(&state.control.state(), &key))))?;
    let entry = written.state.versions.get(&key).ok_or(ApiError::Internal)?;
    Ok(Tagged::ok(entry.revision, entry.value.definition.clone()))
}

/// Delete a version that is live nowhere.
#[utoipa::path(
    delete,
    path = "/apis/{name}/versions/{version}",
    tag = "apis",
    operation_id = "delete_api_version",
    params(
        ("name" = String, Path, description = "The API's name."),
        ("version" = String, Path, description = "The version label."),
        IfMatchHeader,
    ),
    responses((status = 204, description = "Deleted."), WriteErrors)
)]
async fn delete(
    Admin(caller): Admin,
    Shared(state): Shared<ApiState>,
    Segments(key): Segments<(String, String)>,
    IfMatch(if_match): IfMatch,
) -> Result<StatusCode, ApiError> {
    state
        .control
        .write(caller.actor(), |w| {
            w.delete_api_version(&key.0, &key.1, if_match)
        })
        .await
        .map_err(|e| ApiError::write(e, None))?;
    Ok(StatusCode::NO_CONTENT)
}
