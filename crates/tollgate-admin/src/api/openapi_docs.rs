//! OpenAPI documents of the managed APIs (not of this admin API, which is `openapi.rs`):
//! `POST /apis/import` creates a draft version from an uploaded OpenAPI 3.0/3.1 document, and
//! `GET .../openapi` exports a version, the version live in an environment, or every API of a
//! group live in an environment, as one OpenAPI 3.1 document for SDK generators.
//!
//! The translation itself belongs to `tollgate_openapi`; this module only picks the APIs from
//! the state, the server URL (the `server` parameter, else the environment's first exact host)
//! and the global policies the security schemes are computed from. An import is written like
//! any `POST /apis` (validated, all or nothing, audited); its errors name the place in the
//! uploaded document as a JSON Pointer.

use axum::Json;
use axum::extract::{FromRequest, Request, State as Shared};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tollgate_model::{Api, DEFAULT_ENVIRONMENT, Environment};
use tollgate_openapi::{ExportOptions, ImportError, ImportOptions};
use tollgate_store::State;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::apis::{no_api, summary, version_path};
use super::auth::{Admin, Viewer};
use super::error::ApiError;
use super::extract::{Params, Segments};
use super::openapi::{ReadErrors, WriteErrors};
use super::respond::{Tagged, segment};
use super::{ApiState, CONFIG_BODY_LIMIT};
use crate::schema;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(import))
        // `/apis/import` shadows `GET /apis/{name}` for an API named `import`: answer it here.
        .route("/apis/import", axum::routing::get(get_api_named_import))
        .routes(routes!(version_document))
        .routes(routes!(live_document))
        .routes(routes!(group_document))
        .layer(axum::extract::DefaultBodyLimit::max(CONFIG_BODY_LIMIT))
}

/// How to import a document (query of `POST /apis/import`).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ImportQuery {
    /// The service every route forwards to (it must exist).
    service: String,
    /// API name; default: `info.title` made into a name (`Swagger Petstore` →
    /// `swagger-petstore`).
    name: Option<String>,
    /// API version; default: `info.version`.
    version: Option<String>,
    /// Base path; default: the path of the first server URL.
    base_path: Option<String>,
    /// Turn the document's security requirements into authentication policies (`key-auth`,
    /// `basic-auth`, `jwt`, `hmac-auth`); default `false`: credentials pass through to the
    /// service.
    #[serde(default)]
    auth_policies: bool,
}

/// Which environment a document describes, and where clients reach it.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportQuery {
    /// The environment: its first exact host gives the server URL (`https://HOST` + base
    /// path), and operations of a version deprecated there are marked `deprecated`.
    environment: Option<String>,
    /// The server URL clients use (`https://api.example.com`), instead of the environment's.
    server: Option<String>,
}

/// The environment a document describes (required), and where clients reach it.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct LiveQuery {
    /// The environment whose live version(s) are described; its first exact host gives the
    /// server URL.
    environment: String,
    /// The server URL clients use (`https://api.example.com`), instead of the environment's.
    server: Option<String>,
}

/// A version created from an OpenAPI document.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportedApi {
    /// The version's definition as stored (what `GET /apis/{name}/versions/{version}`
    /// returns).
    #[schema(value_type = schema::Api)]
    api: Api,
    /// What import left out or changed, for review.
    warnings: Vec<ImportWarning>,
}

/// Something import left out or changed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportWarning {
    /// Where in the uploaded document, as a JSON Pointer (`/paths/~1pets/get`).
    pointer: String,
    /// What was left out or changed, and why.
    message: String,
}

/// An uploaded OpenAPI document: JSON or YAML text.
struct DocumentText(String);

impl<S: Send + Sync> FromRequest<S> for DocumentText {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let kind = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("invalid"))
            .map(|t| {
                t.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        match kind.as_deref() {
            None
            | Some(
                "application/json" | "application/yaml" | "application/x-yaml" | "text/yaml"
                | "text/x-yaml",
            ) => {}
            Some(other) => {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "an OpenAPI document is sent as application/yaml or application/json, not {other}"
                )));
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::InvalidBody {
                    field: None,
                    message: format!("cannot read the request body: {}", e.body_text()),
                }
            }
        })?;
        String::from_utf8(bytes.to_vec())
            .map(Self)
            .map_err(|e| ApiError::InvalidBody {
                field: None,
                message: format!("the document is not UTF-8 text: {e}"),
            })
    }
}

/// An import error as a 400: options are query errors, the rest name their JSON Pointer.
fn import_error(error: ImportError) -> ApiError {
    let message = error.to_string();
    match error {
        ImportError::Option { option, .. } => ApiError::InvalidQuery {
            field: Some(option.to_owned()),
            message,
        },
        ImportError::Syntax { .. } => ApiError::InvalidBody {
            field: None,
            message,
        },
        ImportError::Invalid { pointer, .. }
        | ImportError::RefNotFound { pointer, .. }
        | ImportError::ExternalRef { pointer, .. }
        | ImportError::RefCycle { pointer, .. }
        | ImportError::TooLarge { pointer, .. } => ApiError::InvalidBody {
            field: Some(pointer.to_string()),
            message,
        },
    }
}

/// Create a draft API version from an OpenAPI 3.0/3.1 document (YAML or JSON).
#[utoipa::path(
    post,
    path = "/apis/import",
    tag = "apis",
    operation_id = "import_openapi",
    params(ImportQuery),
    request_body(description = "An OpenAPI 3.0.x or 3.1.x document, YAML or JSON; local `$ref`s only.",
        content((Object = "application/yaml"), (Object = "application/json"))),
    responses(
        (status = 201, description = "Created: the draft version and the import's warnings. Errors in the document are 400 with the JSON Pointer of the place in `field` and `message`; validation errors of the resulting version name the field in the version (`routes[0].service`).",
            body = ImportedApi,
            headers(("ETag" = String, description = "The version's revision."), ("Location" = String, description = "The version's URL.")),
            links(
                ("GetVersion" = (operation_id = "get_api_version", parameters(("name" = "$response.body#/api/name"), ("version" = "$response.body#/api/version")))),
                ("Publish" = (operation_id = "publish", parameters(("name" = "$response.body#/api/name"), ("version" = "$response.body#/api/version")))),
            )),
        WriteErrors,
    )
)]
async fn import(
    Admin(caller): Admin,
    Shared(state): Shared<ApiState>,
    Params(query): Params<ImportQuery>,
    DocumentText(text): DocumentText,
) -> Result<Tagged<ImportedApi>, ApiError> {
    let options = ImportOptions {
        name: query.name,
        version: query.version,
        base_path: query.base_path,
        auth_policies: query.auth_policies,
        ..ImportOptions::new(query.service)
    };
    let imported = tollgate_openapi::import(&text, &options).map_err(import_error)?;
    let api = imported.api;
    let key = (api.name.clone(), api.version.clone());
    let written = state
        .control
        .write(caller.actor(), |w| w.create_api_version(api.clone()))
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
        ImportedApi {
            api: entry.value.definition.clone(),
            warnings: imported
                .warnings
                .into_iter()
                .map(|w| ImportWarning {
                    pointer: w.pointer.to_string(),
                    message: w.message,
                })
                .collect(),
        },
    ))
}

/// `GET /apis/import`: the API named `import` (not in the OpenAPI document: it is
/// `GET /apis/{name}`).
async fn get_api_named_import(
    _: Viewer,
    Shared(state): Shared<ApiState>,
) -> Result<impl IntoResponse, ApiError> {
    let found = summary(&state.control.state(), "import").ok_or_else(|| no_api("import"))?;
    Ok(Tagged::ok(found.revision, found))
}

/// The environment named `name`: a defined one, or the implicit `prod` when none is defined.
fn environment(state: &State, name: &str) -> Result<Environment, ApiError> {
    match state.environments.get(name) {
        Some(entry) => Ok(entry.value.clone()),
        None if state.environments.is_empty() && name == DEFAULT_ENVIRONMENT => {
            Ok(Environment::implicit())
        }
        None => Err(ApiError::NotFound(format!("no environment {name:?}"))),
    }
}

/// Export options: the server URL, the environment (for deprecations), the global policies.
fn options(
    state: &State,
    environment_name: Option<&str>,
    server: Option<String>,
) -> Result<ExportOptions, ApiError> {
    if let Some(url) = &server {
        let host = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        let valid = host.is_some_and(|h| !h.is_empty() && !h.starts_with('/'))
            && !url.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid {
            return Err(ApiError::InvalidQuery {
                field: Some("server".into()),
                message: format!(
                    "invalid query: server must be an absolute http(s) URL such as https://api.example.com, not {url:?}"
                ),
            });
        }
    }
    let environment = environment_name
        .map(|n| environment(state, n))
        .transpose()?;
    let servers = match (server, &environment) {
        (Some(url), _) => vec![url],
        (None, Some(env)) => env
            .hosts
            .iter()
            .find(|h| !h.starts_with('*'))
            .map(|h| vec![format!("https://{h}")])
            .unwrap_or_default(),
        (None, None) => Vec::new(),
    };
    Ok(ExportOptions {
        servers,
        environment: environment.map(|e| e.name),
        policies: state.policies.values().map(|p| p.value.clone()).collect(),
        ..ExportOptions::default()
    })
}

/// The definition of a version as served in `environment`: its deprecation there (kept on the
/// deployment, not the definition) copied in, so export marks its operations.
fn as_served(state: &State, definition: &Api, environment: Option<&str>) -> Api {
    let mut api = definition.clone();
    if let Some(env) = environment
        && let Some(deployment) = state
            .deployments
            .get(&(env.to_owned(), definition.name.clone()))
        && deployment.value.version == definition.version
        && let Some(deprecation) = &deployment.value.deprecation
    {
        api.deprecation.insert(env.to_owned(), deprecation.clone());
    }
    api
}

fn document(apis: &[Api], options: &ExportOptions) -> impl IntoResponse + use<> {
    let refs: Vec<&Api> = apis.iter().collect();
    let doc: Value = tollgate_openapi::export(&refs, options);
    Json(doc)
}

/// Export one version of an API as an OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/apis/{name}/versions/{version}/openapi",
    tag = "apis",
    operation_id = "export_api_version_openapi",
    params(
        ("name" = String, Path, description = "The API's name."),
        ("version" = String, Path, description = "The version label."),
        ExportQuery,
    ),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document: servers from `server` or the environment's first exact host, security schemes from the authentication policies in force (global ones included) and those kept from the imported document.",
            content_type = "application/json", body = Object),
        ReadErrors,
    )
)]
async fn version_document(
    _: Viewer,
    Shared(state): Shared<ApiState>,
    Segments(key): Segments<(String, String)>,
    Params(query): Params<ExportQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let snapshot = state.control.state();
    let entry = snapshot
        .versions
        .get(&key)
        .ok_or_else(|| ApiError::NotFound(format!("API {:?} has no version {:?}", key.0, key.1)))?;
    let environment = query.environment.as_deref();
    let options = options(&snapshot, environment, query.server)?;
    let api = as_served(&snapshot, &entry.value.definition, environment);
    Ok(document(&[api], &options))
}

/// Export the version of an API live in an environment as an OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/apis/{name}/openapi",
    tag = "apis",
    operation_id = "export_api_openapi",
    params(("name" = String, Path, description = "The API's name."), LiveQuery),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of the live version (404 when none is live there).",
            content_type = "application/json", body = Object),
        ReadErrors,
    )
)]
async fn live_document(
    _: Viewer,
    Shared(state): Shared<ApiState>,
    Segments(name): Segments<String>,
    Params(query): Params<LiveQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let snapshot = state.control.state();
    let options = options(&snapshot, Some(&query.environment), query.server)?;
    let definition = snapshot
        .deployments
        .get(&(query.environment.clone(), name.clone()))
        .and_then(|d| {
            snapshot
                .versions
                .get(&(name.clone(), d.value.version.clone()))
        })
        .map(|v| &v.value.definition)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "API {name:?} is not live in environment {:?}",
                query.environment
            ))
        })?;
    let api = as_served(&snapshot, definition, Some(&query.environment));
    Ok(document(&[api], &options))
}

/// Export every API of a group live in an environment as one OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/groups/{name}/openapi",
    tag = "apis",
    operation_id = "export_group_openapi",
    params(("name" = String, Path, description = "The group (an API's `group`)."), LiveQuery),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of the group's live versions, titled with the group's name (404 when none is live there).",
            content_type = "application/json", body = Object),
        ReadErrors,
    )
)]
async fn group_document(
    _: Viewer,
    Shared(state): Shared<ApiState>,
    Segments(group): Segments<String>,
    Params(query): Params<LiveQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let snapshot = state.control.state();
    let options = options(&snapshot, Some(&query.environment), query.server)?;
    let apis: Vec<Api> = snapshot
        .deployments
        .iter()
        .filter(|((env, _), _)| *env == query.environment)
        .filter_map(|((_, api), d)| {
            snapshot
                .versions
                .get(&(api.clone(), d.value.version.clone()))
        })
        .map(|v| &v.value.definition)
        .filter(|def| def.group.as_deref() == Some(group.as_str()))
        .map(|def| as_served(&snapshot, def, Some(&query.environment)))
        .collect();
    if apis.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no API of group {group:?} is live in environment {:?}",
            query.environment
        )));
    }
    Ok(document(&apis, &options))
}
