//! `/api/v1/consumers/{name}/credentials`: one consumer's credentials. Adding one protects
//! its secret (hash or encryption) before the consumer is written; responses carry only the
//! stored forms. `If-Match` and `ETag` are the consumer's revision.

use axum::extract::State;
use axum::http::StatusCode;
use tollgate_model::Credential;
use tollgate_store::state::protect_consumer;
use tollgate_store::{Consumers, WriteError};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::{Admin, Viewer};
use super::error::ApiError;
use super::extract::{IfMatch, JsonBody, Segments};
use super::openapi::{IfMatchHeader, ReadErrors, WriteErrors};
use super::page::Page;
use super::resources::config_path;
use super::respond::{Tagged, segment};
use crate::schema;

/// One page of credentials, for the OpenAPI document.
type CredentialPage = Page<schema::Credential>;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(remove))
}

fn no_consumer(name: &str) -> WriteError {
    WriteError::NotFound(format!("no consumer {name:?}"))
}

/// List a consumer's credentials (secrets only in stored form).
#[utoipa::path(
    get,
    path = "/consumers/{name}/credentials",
    tag = "consumers",
    operation_id = "list_credentials",
    params(("name" = String, Path, description = "The consumer.")),
    responses(
        (status = 200, description = "Every credential of the consumer.", body = CredentialPage,
            headers(("ETag" = String, description = "The consumer's revision."))),
        ReadErrors,
    )
)]
async fn list(
    _: Viewer,
    State(state): State<ApiState>,
    Segments(name): Segments<String>,
) -> Result<Tagged<Page<Credential>>, ApiError> {
    let snapshot = state.control.state();
    let consumer = snapshot
        .consumers
        .get(&name)
        .ok_or_else(|| ApiError::NotFound(format!("no consumer {name:?}")))?;
    Ok(Tagged::ok(
        consumer.revision,
        Page::all(consumer.value.credentials.clone()),
    ))
}

/// Add a credential to a consumer (409 if its id is taken).
#[utoipa::path(
    post,
    path = "/consumers/{name}/credentials",
    tag = "consumers",
    operation_id = "add_credential",
    params(
        ("name" = String, Path, description = "The consumer."),
        IfMatchHeader,
    ),
    request_body = schema::Credential,
    responses(
        (status = 201, description = "Added; the credential as stored (secret hashed or encrypted).", body = schema::Credential,
            headers(("ETag" = String, description = "The consumer's revision."), ("Location" = String, description = "The credential's URL.")),
            links(("Delete" = (operation_id = "delete_credential", parameters(("name" = "$request.path.name"), ("id" = "$response.body#/id"))))),
        ),
        WriteErrors,
    )
)]
async fn add(
    Admin(caller): Admin,
    State(state): State<ApiState>,
    Segments(name): Segments<String>,
    IfMatch(if_match): IfMatch,
    JsonBody(credential): JsonBody<Credential>,
) -> Result<Tagged<Credential>, ApiError> {
    let key = state.control.secret_key();
    let id = credential.id().to_owned();
    let written = state
        .control
        .write(caller.actor(), |w| {
            let current = w
                .state()
                .consumers
                .get(&name)
                .cloned()
                .ok_or_else(|| no_consumer(&name))?;
            if current
                .value
                .credentials
                .iter()
                .any(|c| c.id() == credential.id())
            {
                return Err(WriteError::Conflict(format!(
                    "consumer {name:?} already has a credential with id {:?}",
                    credential.id()
                )));
            }
            let mut next = current.value.clone();
            next.credentials.push(credential.clone());
            let next = protect_consumer(&next, Some(&current.value), key)?;
            w.replace::<Consumers>(name.clone(), next, if_match)
        })
        .await
        .map_err(|e| {
            let snapshot = state.control.state();
            let index = snapshot
                .consumers
                .get(&name)
                .map_or(0, |c| c.value.credentials.len());
            let at = config_path::<Consumers>(&snapshot, &name)
                .key("credentials")
                .index(index);
            ApiError::write(e, Some(&at))
        })?;
    let consumer = written
        .state
        .consumers
        .get(&name)
        .ok_or_else(|| ApiError::NotFound(format!("no consumer {name:?}")))?;
    let stored = consumer
        .value
        .credentials
        .iter()
        .find(|c| c.id() == id)
        .cloned()
        .ok_or(ApiError::Internal)?;
    Ok(Tagged::created(
        consumer.revision,
        format!(
            "/api/v1/consumers/{}/credentials/{}",
            segment(&name),
            segment(&id)
        ),
        stored,
    ))
}

/// Remove a credential from a consumer.
#[utoipa::path(
    delete,
    path = "/consumers/{name}/credentials/{id}",
    tag = "consumers",
    operation_id = "delete_credential",
    params(
        ("name" = String, Path, description = "The consumer."),
        ("id" = String, Path, description = "The credential's id."),
        IfMatchHeader,
    ),
    responses((status = 204, description = "Removed."), WriteErrors)
)]
async fn remove(
    Admin(caller): Admin,
    State(state): State<ApiState>,
    Segments((name, id)): Segments<(String, String)>,
    IfMatch(if_match): IfMatch,
) -> Result<StatusCode, ApiError> {
    state
        .control
        .write(caller.actor(), |w| {
            let current = w
                .state()
                .consumers
                .get(&name)
                .cloned()
                .ok_or_else(|| no_consumer(&name))?;
            let mut next = current.value.clone();
            next.credentials.retain(|c| c.id() != id);
            if next.credentials.len() == current.value.credentials.len() {
                return Err(WriteError::NotFound(format!(
                    "consumer {name:?} has no credential with id {id:?}"
                )));
            }
            w.replace::<Consumers>(name.clone(), next, if_match)
        })
        .await
        .map_err(|e| ApiError::write(e, None))?;
    Ok(StatusCode::NO_CONTENT)
}
