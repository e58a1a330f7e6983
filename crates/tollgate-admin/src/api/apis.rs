//! `/api/v1/apis`: APIs as a whole — their versions and where each is live — and creating a
//! new draft version. An API exists while it has at least one version.
//!
//! An API's revision (the `ETag` of `GET /apis/{name}`, checked by `If-Match` on lifecycle
//! calls) is that of its latest change: a version written, or a release.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::State as Shared;
use serde::Serialize;
use tollgate_model::{Api, Deprecation, FieldPath, Timestamp};
use tollgate_store::State;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::{Admin, Viewer};
use super::error::ApiError;
use super::extract::{JsonBody, Params, Segments};
use super::openapi::{ListErrors, ReadErrors, WriteErrors};
use super::page::{self, Page, TaggedQuery, name_matches, paginate};
use super::respond::{Tagged, segment};
use crate::schema;

/// One page of APIs, for the OpenAPI document.
type ApiPage = Page<ApiSummary>;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get))
}

/// An API: its versions and where it is live.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApiSummary {
    /// The API's name.
    pub name: String,
    /// Every tag of any of its versions.
    pub tags: Vec<String>,
    /// Its versions, in version order.
    pub versions: Vec<VersionSummary>,
    /// Where it is live, by environment.
    pub deployments: Vec<DeploymentInfo>,
    /// The revision of its latest change (`If-Match` of lifecycle calls).
    pub revision: i64,
}

/// One version of an API.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionSummary {
    /// Version label.
    pub version: String,
    /// Free text for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// API group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Labels.
    pub tags: Vec<String>,
    /// Whether it was ever published (published versions are immutable).
    pub published: bool,
    /// Environments it is live in.
    pub live_in: Vec<String>,
    /// Revision of its last write (its `ETag`).
    pub revision: i64,
    /// When it was created.
    #[schema(value_type = schema::Timestamp)]
    pub created_at: Timestamp,
    /// When it was last written.
    #[schema(value_type = schema::Timestamp)]
    pub updated_at: Timestamp,
}

/// The version of an API live in one environment.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeploymentInfo {
    /// Environment.
    pub environment: String,
    /// Live version.
    pub version: String,
    /// The release that made it live.
    pub release: i64,
    /// Set while the API is deprecated there.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<schema::Deprecation>)]
    pub deprecation: Option<Deprecation>,
}

/// The revision of an API's latest change; `None` when it has no versions.
pub(crate) fn api_revision(state: &State, name: &str) -> Option<i64> {
    let versions = state.versions_of(name).map(|v| v.revision).max()?;
    let deployments = state.deployments_of(name).map(|d| d.revision).max();
    let releases = state.releases_of(name, None).map(|r| r.revision).max();
    Some(
        versions
            .max(deployments.unwrap_or(0))
            .max(releases.unwrap_or(0)),
    )
}

/// Versions of `name` by version label, with the environments each is live in.
pub(crate) fn version_summaries(state: &State, name: &str) -> BTreeMap<String, VersionSummary> {
    state
        .versions_of(name)
        .map(|entry| {
            let def = &entry.value.definition;
            let live_in = state
                .deployments_of(name)
                .filter(|d| d.value.version == def.version)
                .map(|d| d.value.environment.clone())
                .collect();
            let summary = VersionSummary {
                version: def.version.clone(),
                description: def.description.clone(),
                group: def.group.clone(),
                tags: def.tags.clone(),
                published: entry.value.published,
                live_in,
                revision: entry.revision,
                created_at: Timestamp::from_unix(entry.created_at),
                updated_at: Timestamp::from_unix(entry.updated_at),
            };
            (def.version.clone(), summary)
        })
        .collect()
}

/// The summary of one API; `None` when it has no versions.
pub(crate) fn summary(state: &State, name: &str) -> Option<ApiSummary> {
    let revision = api_revision(state, name)?;
    let versions: Vec<VersionSummary> = version_summaries(state, name).into_values().collect();
    let tags: BTreeSet<String> = versions.iter().flat_map(|v| v.tags.clone()).collect();
    let deployments = state
        .deployments_of(name)
        .map(|d| DeploymentInfo {
            environment: d.value.environment.clone(),
            version: d.value.version.clone(),
            release: d.value.release,
            deprecation: d.value.deprecation.clone(),
        })
        .collect();
    Some(ApiSummary {
        name: name.to_owned(),
        tags: tags.into_iter().collect(),
        versions,
        deployments,
        revision,
    })
}

/// 404 unless the API has a version.
pub(crate) fn no_api(name: &str) -> ApiError {
    ApiError::NotFound(format!("no API {name:?}"))
}

/// List APIs with their versions and where each is live.
#[utoipa::path(
    get,
    path = "/apis",
    tag = "apis",
    operation_id = "list_apis",
    params(TaggedQuery),
    responses(
        (status = 200, description = "One page, in name order.", body = ApiPage),
        ListErrors,
    )
)]
async fn list(
    _: Viewer,
    Shared(state): Shared<ApiState>,
    Params(query): Params<TaggedQuery>,
) -> Result<Json<Page<ApiSummary>>, ApiError> {
    let limit = page::limit(query.limit)?;
    let snapshot = state.control.state();
    let names: BTreeMap<String, ()> = snapshot
        .api_names()
        .into_iter()
        .map(|n| (n.to_owned(), ()))
        .collect();
    let page = paginate(
        &names,
        query.cursor.as_deref(),
        limit,
        |name, _| {
            name_matches(query.name.as_deref(), name)
                && query.tag.as_deref().is_none_or(|tag| {
                    snapshot
                        .versions_of(name)
                        .any(|v| v.value.definition.tags.iter().any(|t| t == tag))
                })
        },
        |name, _| summary(&snapshot, name),
    )?;
    Ok(Json(Page {
        items: page.items.into_iter().flatten().collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Get an API: its versions and where each is live.
#[utoipa::path(
    get,
    path = "/apis/{name}",
    tag = "apis",
    operation_id = "get_api",
    params(("name" = String, Path, description = "The API's name.")),
    responses(
        (status = 200, description = "The API; `ETag` is the revision of its latest change.", body = ApiSummary,
            headers(("ETag" = String, description = "For If-Match on lifecycle calls."))),
        ReadErrors,
    )
)]
async fn get(
    _: Viewer,
    Shared(state): Shared<ApiState>,
    Segments(name): Segments<String>,
) -> Result<Tagged<ApiSummary>, ApiError> {
    let found = summary(&state.control.state(), &name).ok_or_else(|| no_api(&name))?;
    Ok(Tagged::ok(found.revision, found))
}

/// Create a draft version of an API (the API is created with its first version).
#[utoipa::path(
    post,
    path = "/apis",
    tag = "apis",
    operation_id = "create_api_version",
    request_body = schema::Api,
    responses(
        (status = 201, description = "Created; the version's definition.", body = schema::Api,
            headers(("ETag" = String, description = "The version's revision."), ("Location" = String, description = "The version's URL.")),
            links(
                ("GetApi" = (operation_id = "get_api", parameters(("name" = "$response.body#/name")))),
                ("GetVersion" = (operation_id = "get_api_version", parameters(("name" = "$response.body#/name"), ("version" = "$response.body#/version")))),
                ("ReplaceVersion" = (operation_id = "replace_api_version", parameters(("name" = "$response.body#/name"), ("version" = "$response.body#/version")))),
                ("Publish" = (operation_id = "publish", parameters(("name" = "$response.body#/name"), ("version" = "$response.body#/version")))),
                ("DeleteVersion" = (operation_id = "delete_api_version", parameters(("name" = "$response.body#/name"), ("version" = "$response.body#/version")))),
            )),
        WriteErrors,
    )
)]
async fn create(
    Admin(caller): Admin,
    Shared(state): Shared<ApiState>,
    JsonBody(body): JsonBody<Api>,
) -> Result<Tagged<Api>, ApiError> {
    let key = (body.name.clone(), body.version.clone());
    let written = state
        .control
        .write(caller.actor(), |w| w.create_api_version(body.clone()))
        .await
        .map_err(|e| ApiError::write(e, Some(&version_path(&state.control.state(), &key))))?;
    let entry = written.state.versions.get(&key).ok_or(ApiError::Internal)?;
    Ok(Tagged::created(
        entry.revision,
        format!(
            "/api/v1/apis/{}/versions/{}",
            segment(&key.0),
            segment(&key.1)
        ),
        entry.value.definition.clone(),
    ))
}

/// Where an API version is (or would be) in the whole configuration.
pub(crate) fn version_path(state: &State, key: &(String, String)) -> FieldPath {
    let index = state.versions.range(..key.clone()).count();
    FieldPath::root().key("apis").index(index)
}
