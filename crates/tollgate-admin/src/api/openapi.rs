//! The OpenAPI 3.1 document: its header (info, security scheme, tags), the error responses
//! operations share, and `GET /api/v1/openapi.json`, which needs no token: the document
//! describes the API and holds no data, and tools (SDK generators, `schemathesis`) fetch it
//! before they have a token.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::error::{ErrorBody, ErrorDetail, ErrorObject};

/// The document's fixed parts; paths are added by the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tollgate admin API",
        version = "1",
        description = "Manage a Tollgate gateway: services, APIs and their versions, releases, \
                       policies, environments, consumers, certificates, settings, tokens, the audit log and \
                       declarative configuration. Every call needs `Authorization: Bearer \
                       <token>` (this document excepted). See docs/admin-api.md.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(ErrorBody, ErrorObject, ErrorDetail)),
    tags(
        (name = "services", description = "Backends: where traffic goes."),
        (name = "apis", description = "APIs, their versions (drafts are editable, published ones immutable)."),
        (name = "lifecycle", description = "Publishing versions to environments: releases, rollback, unpublish, deprecation (role operator)."),
        (name = "policies", description = "Global policies, keyed by plugin name."),
        (name = "environments", description = "Deployment targets."),
        (name = "consumers", description = "Callers and their credentials (secrets never returned in clear)."),
        (name = "certificates", description = "Downstream TLS certificates chosen by SNI (private keys encrypted at rest, never returned)."),
        (name = "settings", description = "Server settings shared by every node."),
        (name = "config", description = "The whole configuration: export, diff, apply."),
        (name = "audit", description = "The append-only audit log."),
        (name = "tokens", description = "Admin API tokens (role admin)."),
        (name = "meta", description = "Status and this document."),
    )
)]
pub(crate) struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description = Some(
            "An admin token (`tollgate admin token create`, or `POST /api/v1/tokens`).".into(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

/// The document as JSON text (pretty, stable: maps are sorted, so the same code always gives
/// the same bytes).
pub(crate) fn render(doc: &utoipa::openapi::OpenApi) -> String {
    let mut value = serde_json::to_value(doc).unwrap_or_default();
    fix_links(&mut value);
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// utoipa 5 writes Link objects' fixed fields in snake case (`operation_id`); OpenAPI spells
/// them `operationId`, `operationRef`, `requestBody` (fixed in utoipa 6).
fn fix_links(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(links)) = map.get_mut("links") {
                for link in links.values_mut() {
                    if let serde_json::Value::Object(fields) = link {
                        for (from, to) in [
                            ("operation_id", "operationId"),
                            ("operation_ref", "operationRef"),
                            ("request_body", "requestBody"),
                        ] {
                            if let Some(v) = fields.remove(from) {
                                fields.insert(to.to_owned(), v);
                            }
                        }
                    }
                }
            }
            map.values_mut().for_each(fix_links);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(fix_links),
        _ => {}
    }
}

fn error(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

fn errors(statuses: &[u16]) -> BTreeMap<String, RefOr<Response>> {
    statuses
        .iter()
        .map(|status| {
            let description = match status {
                400 => "Bad input: invalid JSON, unknown field, wrong type, invalid configuration, malformed header or query; `field` and `details` say where.",
                401 => "Missing or unknown token (`WWW-Authenticate: Bearer`).",
                403 => "The token's role does not allow this call.",
                404 => "No such object.",
                409 => "The object exists, the change conflicts with the state (e.g. a published version changed, a live version deleted), or the gateway is read-only (file mode, code `read_only`).",
                412 => "`If-Match` names a revision the object is no longer at.",
                413 => "The body is too large.",
                415 => "The body's media type is not accepted.",
                _ => "The store is unavailable, or other writers kept committing first; retry.",
            };
            (status.to_string(), error(description))
        })
        .collect()
}

/// Error responses of list endpoints.
pub(crate) struct ListErrors;
impl IntoResponses for ListErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[400, 401, 403, 503])
    }
}

/// Error responses of single-object reads.
pub(crate) struct ReadErrors;
impl IntoResponses for ReadErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[400, 401, 403, 404, 503])
    }
}

/// Error responses of writes.
pub(crate) struct WriteErrors;
impl IntoResponses for WriteErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[400, 401, 403, 404, 409, 412, 413, 415, 503])
    }
}

/// The `If-Match` request header, for the OpenAPI document (the extractor is
/// [`super::extract::IfMatch`]).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code, reason = "describes a header; never built")]
pub(crate) struct IfMatchHeader {
    /// Only if the object is still at this revision: its `ETag`, quotes included (`"12"`),
    /// or `*`.
    #[param(
        rename = "If-Match",
        required = false,
        pattern = r#"^(\*|"[0-9]{1,18}")$"#
    )]
    if_match: String,
}

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(document))
}

/// This document (no token needed).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json", body = Object))
)]
async fn document(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.to_string(),
    )
}
