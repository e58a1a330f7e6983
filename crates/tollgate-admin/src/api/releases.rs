//! Release history, newest first: `/api/v1/releases` (all APIs, filtered by `api` and
//! `environment`), `/api/v1/apis/{name}/releases`, and one release by id. Releases are never
//! changed or deleted.

use axum::Json;
use axum::extract::State as Shared;
use serde::Deserialize;
use tollgate_store::Release;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::apis::no_api;
use super::auth::Viewer;
use super::error::ApiError;
use super::extract::{Params, Segments};
use super::openapi::{ListErrors, ReadErrors};
use super::page::{self, Page, paginate_rev};
use super::respond::Tagged;
use crate::schema;

/// One page of releases, for the OpenAPI document.
type ReleasePage = Page<schema::Release>;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
        .routes(routes!(of_api))
}

/// Filters of `GET /releases`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReleaseQuery {
    /// Only releases of this API.
    api: Option<String>,
    /// Only releases in this environment.
    environment: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Filters of `GET /apis/{name}/releases`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ApiReleaseQuery {
    /// Only releases in this environment.
    environment: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn page_of(
    state: &ApiState,
    api: Option<&str>,
    environment: Option<&str>,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<Page<Release>, ApiError> {
    let limit = page::limit(limit)?;
    let snapshot = state.control.state();
    paginate_rev(
        &snapshot.releases,
        cursor,
        limit,
        |_, r| {
            api.is_none_or(|a| r.value.api == a)
                && environment.is_none_or(|e| r.value.environment == e)
        },
        |_, r| r.value.clone(),
    )
}

/// List releases of every API, newest first.
#[utoipa::path(
    get,
    path = "/releases",
    tag = "lifecycle",
    operation_id = "list_releases",
    params(ReleaseQuery),
    responses((status = 200, description = "One page, newest first.", body = ReleasePage), ListErrors)
)]
async fn list(
    _: Viewer,
    Shared(state): Shared<ApiState>,
    Params(q): Params<ReleaseQuery>,
) -> Result<Json<Page<Release>>, ApiError> {
    page_of(
        &state,
        q.api.as_deref(),
        q.environment.as_deref(),
        q.limit,
        q.cursor.as_deref(),
    )
    .map(Json)
}

/// List the releases of one API, newest first.
#[utoipa::path(
    get,
    path = "/apis/{name}/releases",
    tag = "lifecycle",
    operation_id = "list_api_releases",
    params(("name" = String, Path, description = "The API's name."), ApiReleaseQuery),
    responses((status = 200, description = "One page, newest first.", body = ReleasePage), ReadErrors)
)]
async fn of_api(
    _: Viewer,
    Shared(state): Shared<ApiState>,
    Segments(name): Segments<String>,
    Params(q): Params<ApiReleaseQuery>,
) -> Result<Json<Page<Release>>, ApiError> {
    let snapshot = state.control.state();
    if snapshot.versions_of(&name).next().is_none()
        && snapshot.releases_of(&name, None).next().is_none()
    {
        return Err(no_api(&name));
    }
    page_of(
        &state,
        Some(&name),
        q.environment.as_deref(),
        q.limit,
        q.cursor.as_deref(),
    )
    .map(Json)
}

/// Get one release.
#[utoipa::path(
    get,
    path = "/releases/{id}",
    tag = "lifecycle",
    operation_id = "get_release",
    params(("id" = i64, Path, description = "The release's id.")),
    responses(
        (status = 200, description = "The release.", body = schema::Release,
            headers(("ETag" = String, description = "The release's revision (releases never change)."))),
        ReadErrors,
    )
)]
async fn get(
    _: Viewer,
    Shared(state): Shared<ApiState>,
    Segments(id): Segments<i64>,
) -> Result<Tagged<Release>, ApiError> {
    let snapshot = state.control.state();
    let entry = snapshot
        .releases
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no release {id}")))?;
    Ok(Tagged::ok(entry.revision, entry.value.clone()))
}
