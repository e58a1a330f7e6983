//! `POST /apis/{name}/versions/{version}/debug` (role `operator`: it sends a real request to
//! the version's backends): a test request through one API version, published or not, in a
//! sandbox data plane; the answer is the response and the request's trace.

use axum::Json;
use axum::extract::State as Shared;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::Operator;
use super::error::ApiError;
use super::extract::{JsonBody, Segments};
use super::openapi::WriteErrors;
use crate::debug::{DebugError, DebugRequest, DebugResult, sandbox_config};

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(debug))
}

/// Send a test request through an API version in a sandbox.
///
/// Only this version is live in the sandbox, in one environment (whose variables resolve the
/// backends) that takes every host. The request really reaches the version's backends.
#[utoipa::path(
    post,
    path = "/apis/{name}/versions/{version}/debug",
    tag = "lifecycle",
    operation_id = "debug_version",
    params(
        ("name" = String, Path, description = "The API's name."),
        ("version" = String, Path, description = "The version to try."),
    ),
    request_body = DebugRequest,
    responses(
        (status = 200, description = "The response and the request's trace.", body = DebugResult),
        WriteErrors,
    )
)]
async fn debug(
    Operator(_caller): Operator,
    Shared(state): Shared<ApiState>,
    Segments((api, version)): Segments<(String, String)>,
    JsonBody(body): JsonBody<DebugRequest>,
) -> Result<Json<DebugResult>, ApiError> {
    let Some(debugger) = state.control.debugger() else {
        return Err(ApiError::Unavailable(
            "this gateway has no debug sandbox".into(),
        ));
    };
    let current = state.control.state();
    let Some((config, environment)) =
        sandbox_config(&current, &api, &version, body.environment.as_deref())
    else {
        return Err(ApiError::NotFound(match &body.environment {
            Some(env) if !current.has_environment(env) => format!("no environment {env:?}"),
            _ => format!("API {api:?} has no version {version:?}"),
        }));
    };
    debugger
        .debug(config, environment, body)
        .await
        .map(Json)
        .map_err(|e| match e {
            DebugError::Invalid(message) => ApiError::InvalidBody {
                field: None,
                message,
            },
            DebugError::Config(message) => ApiError::Conflict(format!(
                "the version cannot be compiled in the sandbox: {message}"
            )),
            DebugError::Failed(message) => ApiError::Unavailable(message),
        })
}
