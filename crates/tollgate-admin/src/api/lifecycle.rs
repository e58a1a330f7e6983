//! The lifecycle of an API in an environment (role `operator`): publish a version, roll back
//! to an earlier release, unpublish, deprecate, undeprecate. Each call records a release
//! (`201`, `Location: /api/v1/releases/{id}`) and is validated like any write: publishing a
//! version whose routes conflict with what is live there is refused with the field paths.
//! `If-Match` takes the API's revision (the `ETag` of `GET /api/v1/apis/{name}`).

use axum::extract::State as Shared;
use serde::Deserialize;
use tollgate_model::Timestamp;
use tollgate_store::{Release, WriteError, Writer};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::apis::api_revision;
use super::auth::Operator;
use super::error::ApiError;
use super::extract::{IfMatch, JsonBody, Segments};
use super::openapi::{IfMatchHeader, WriteErrors};
use super::respond::Tagged;
use crate::schema;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(publish))
        .routes(routes!(rollback))
        .routes(routes!(unpublish))
        .routes(routes!(deprecate))
        .routes(routes!(undeprecate))
}

/// Publish a version to an environment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublishRequest {
    /// The environment (`prod` when none are defined).
    environment: String,
    /// Free text recorded with the release.
    #[serde(default)]
    note: Option<String>,
}

/// Make the version of an earlier release live again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RollbackRequest {
    /// The environment.
    environment: String,
    /// The release to go back to; default: the latest one whose version differs from the
    /// live one.
    #[serde(default)]
    release: Option<i64>,
    /// Free text recorded with the release.
    #[serde(default)]
    note: Option<String>,
}

/// Remove the API from an environment, or remove its deprecation there.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnvironmentRequest {
    /// The environment.
    environment: String,
    /// Free text recorded with the release.
    #[serde(default)]
    note: Option<String>,
}

/// Deprecate the version live in an environment: it keeps serving, with `Deprecation` and
/// (when `sunset` is set) `Sunset` headers.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeprecateRequest {
    /// The environment.
    environment: String,
    /// When it is (or was) deprecated; default: now.
    #[serde(default)]
    #[schema(value_type = Option<schema::Timestamp>)]
    at: Option<Timestamp>,
    /// When it stops answering.
    #[serde(default)]
    #[schema(value_type = Option<schema::Timestamp>)]
    sunset: Option<Timestamp>,
    /// A page explaining the deprecation and the migration.
    #[serde(default)]
    link: Option<String>,
    /// Free text recorded with the release.
    #[serde(default)]
    note: Option<String>,
}

/// 412 unless the API is still at `if_match`.
fn check_api(w: &Writer, api: &str, if_match: Option<i64>) -> Result<(), WriteError> {
    if let Some(expected) = if_match {
        let current = api_revision(w.state(), api).unwrap_or(0);
        if current != expected {
            return Err(WriteError::PreconditionFailed {
                what: format!("API {api:?}"),
                expected,
                current,
            });
        }
    }
    Ok(())
}

/// Runs one lifecycle operation and answers with its release.
async fn release(
    state: &ApiState,
    actor: &str,
    api: &str,
    if_match: Option<i64>,
    operation: impl Fn(&mut Writer) -> Result<Release, WriteError>,
) -> Result<Tagged<Release>, ApiError> {
    let written = state
        .control
        .write(actor, |w| {
            check_api(w, api, if_match)?;
            operation(w)
        })
        .await
        .map_err(|e| ApiError::write(e, None))?;
    let location = format!("/api/v1/releases/{}", written.value.id);
    Ok(Tagged::created(written.revision, location, written.value))
}

/// Publish a version of an API to an environment.
#[utoipa::path(
    post,
    path = "/apis/{name}/versions/{version}/publish",
    tag = "lifecycle",
    operation_id = "publish",
    params(
        ("name" = String, Path, description = "The API's name."),
        ("version" = String, Path, description = "The version to make live."),
        IfMatchHeader,
    ),
    request_body = PublishRequest,
    responses(
        (status = 201, description = "The release that made the version live.", body = schema::Release,
            headers(("ETag" = String, description = "The API's new revision."), ("Location" = String, description = "The release's URL.")),
            links(("Get" = (operation_id = "get_release", parameters(("id" = "$response.body#/id")))))),
        WriteErrors,
    )
)]
async fn publish(
    Operator(caller): Operator,
    Shared(state): Shared<ApiState>,
    Segments((api, version)): Segments<(String, String)>,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<PublishRequest>,
) -> Result<Tagged<Release>, ApiError> {
    release(&state, caller.actor(), &api, if_match, |w| {
        w.publish(&api, &version, &body.environment, body.note.clone())
    })
    .await
}

/// Roll an API back to an earlier release in an environment.
#[utoipa::path(
    post,
    path = "/apis/{name}/rollback",
    tag = "lifecycle",
    operation_id = "rollback",
    params(
        ("name" = String, Path, description = "The API's name."),
        IfMatchHeader,
    ),
    request_body = RollbackRequest,
    responses(
        (status = 201, description = "The rollback's release.", body = schema::Release,
            headers(("ETag" = String, description = "The API's new revision."), ("Location" = String, description = "The release's URL.")),
            links(("Get" = (operation_id = "get_release", parameters(("id" = "$response.body#/id")))))),
        WriteErrors,
    )
)]
async fn rollback(
    Operator(caller): Operator,
    Shared(state): Shared<ApiState>,
    Segments(api): Segments<String>,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<RollbackRequest>,
) -> Result<Tagged<Release>, ApiError> {
    release(&state, caller.actor(), &api, if_match, |w| {
        w.rollback(&api, &body.environment, body.release, body.note.clone())
    })
    .await
}

/// Remove an API from an environment (its routes answer 404 there).
#[utoipa::path(
    post,
    path = "/apis/{name}/unpublish",
    tag = "lifecycle",
    operation_id = "unpublish",
    params(
        ("name" = String, Path, description = "The API's name."),
        IfMatchHeader,
    ),
    request_body = EnvironmentRequest,
    responses(
        (status = 201, description = "The unpublish release.", body = schema::Release,
            headers(("ETag" = String, description = "The API's new revision."), ("Location" = String, description = "The release's URL.")),
            links(("Get" = (operation_id = "get_release", parameters(("id" = "$response.body#/id")))))),
        WriteErrors,
    )
)]
async fn unpublish(
    Operator(caller): Operator,
    Shared(state): Shared<ApiState>,
    Segments(api): Segments<String>,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<EnvironmentRequest>,
) -> Result<Tagged<Release>, ApiError> {
    release(&state, caller.actor(), &api, if_match, |w| {
        w.unpublish(&api, &body.environment, body.note.clone())
    })
    .await
}

/// Deprecate the version of an API live in an environment.
#[utoipa::path(
    post,
    path = "/apis/{name}/deprecate",
    tag = "lifecycle",
    operation_id = "deprecate",
    params(
        ("name" = String, Path, description = "The API's name."),
        IfMatchHeader,
    ),
    request_body = DeprecateRequest,
    responses(
        (status = 201, description = "The deprecation's release.", body = schema::Release,
            headers(("ETag" = String, description = "The API's new revision."), ("Location" = String, description = "The release's URL.")),
            links(("Get" = (operation_id = "get_release", parameters(("id" = "$response.body#/id")))))),
        WriteErrors,
    )
)]
async fn deprecate(
    Operator(caller): Operator,
    Shared(state): Shared<ApiState>,
    Segments(api): Segments<String>,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<DeprecateRequest>,
) -> Result<Tagged<Release>, ApiError> {
    release(&state, caller.actor(), &api, if_match, |w| {
        w.deprecate(
            &api,
            &body.environment,
            body.at,
            body.sunset,
            body.link.clone(),
            body.note.clone(),
        )
    })
    .await
}

/// Remove the deprecation of an API in an environment.
#[utoipa::path(
    post,
    path = "/apis/{name}/undeprecate",
    tag = "lifecycle",
    operation_id = "undeprecate",
    params(
        ("name" = String, Path, description = "The API's name."),
        IfMatchHeader,
    ),
    request_body = EnvironmentRequest,
    responses(
        (status = 201, description = "The undeprecation's release.", body = schema::Release,
            headers(("ETag" = String, description = "The API's new revision."), ("Location" = String, description = "The release's URL.")),
            links(("Get" = (operation_id = "get_release", parameters(("id" = "$response.body#/id")))))),
        WriteErrors,
    )
)]
async fn undeprecate(
    Operator(caller): Operator,
    Shared(state): Shared<ApiState>,
    Segments(api): Segments<String>,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<EnvironmentRequest>,
) -> Result<Tagged<Release>, ApiError> {
    release(&state, caller.actor(), &api, if_match, |w| {
        w.undeprecate(&api, &body.environment, body.note.clone())
    })
    .await
}
