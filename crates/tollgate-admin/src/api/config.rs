//! `/api/v1/config`: the whole configuration in the file schema. `GET` exports it (YAML, or
//! JSON with `Accept: application/json`; secrets only hashed or encrypted); `POST /diff`
//! shows what applying a file would change; `POST /apply` makes the store match it in one
//! change set (all or nothing; applying the same file twice changes nothing).
//!
//! Uploads are parsed and validated by `tollgate_model::parse_config`, so errors carry the
//! field path, line and column. `${VAR}` references are *not* substituted from the gateway's
//! process environment (that would let an upload read the server's variables). `listen` and
//! `tls` are node-local: `listen` is ignored (exports include the node's own), and `tls` must
//! be empty (certificate files are configured on each node; named `certificates` are stored,
//! and refused when new or changed and outside their validity period).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tollgate_model::{Config, FieldPath, TlsConfig, parse_config};
use tollgate_store::AuditRecord;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Admin, Viewer};
use super::error::ApiError;
use super::extract::ConfigText;
use super::openapi::{ListErrors, WriteErrors};
use super::{ApiState, CONFIG_BODY_LIMIT};
use crate::schema;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(export))
        .routes(routes!(diff))
        .routes(routes!(apply))
        .layer(axum::extract::DefaultBodyLimit::max(CONFIG_BODY_LIMIT))
}

/// One change a configuration makes (or made).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChangeItem {
    /// What, as `kind.verb` (`service.create`, `api_version.update`, `release.create`).
    action: String,
    /// Object kind.
    kind: String,
    /// Object key.
    key: String,
    /// The object before (absent for a creation).
    before: Option<serde_json::Value>,
    /// The object after (absent for a deletion).
    after: Option<serde_json::Value>,
}

impl From<AuditRecord> for ChangeItem {
    fn from(r: AuditRecord) -> Self {
        Self {
            action: r.action,
            kind: r.kind,
            key: r.key,
            before: r.before,
            after: r.after,
        }
    }
}

/// What a configuration changes.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConfigChanges {
    /// The store revision: for a diff, the one compared against; after an apply, the new one
    /// (unchanged when nothing changed).
    revision: i64,
    /// Whether anything changes (changed).
    changed: bool,
    /// The changes, as the audit log records them.
    changes: Vec<ChangeItem>,
}

impl ConfigChanges {
    fn new(revision: i64, records: Vec<AuditRecord>) -> Self {
        Self {
            revision,
            changed: !records.is_empty(),
            changes: records.into_iter().map(ChangeItem::from).collect(),
        }
    }
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            let json = accept.find("application/json");
            let yaml = ["application/yaml", "application/x-yaml", "text/yaml"]
                .iter()
                .filter_map(|t| accept.find(t))
                .min();
            match (json, yaml) {
                (Some(j), Some(y)) => j < y,
                (Some(_), None) => true,
                _ => false,
            }
        })
}

/// Export the whole configuration (YAML, or JSON with `Accept: application/json`).
#[utoipa::path(
    get,
    path = "/config",
    tag = "config",
    operation_id = "export_config",
    responses(
        (status = 200, description = "The configuration in the file schema; secrets only in stored form.",
            content((schema::Config = "application/yaml"), (schema::Config = "application/json"))),
        ListErrors,
    )
)]
async fn export(
    _: Viewer,
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let config = state.control.export();
    if wants_json(&headers) {
        return Ok(axum::Json(config).into_response());
    }
    let text = serde_yaml_ng::to_string(&config).map_err(|e| {
        tracing::error!(error = %e, "cannot write the configuration as YAML");
        ApiError::Internal
    })?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/yaml")],
        text,
    )
        .into_response())
}

fn parse(upload: &ConfigText) -> Result<Config, ApiError> {
    let config = parse_config(&upload.text, upload.format, "request body")
        .map_err(|d| ApiError::diagnostics(&d.items))?;
    if config.tls != TlsConfig::default() {
        return Err(ApiError::Invalid(vec![super::error::ErrorDetail {
            path: FieldPath::root().key("tls").to_string(),
            message: "TLS certificates are configured on each node, not through the store; remove `tls` from the upload".into(),
            line: None,
            column: None,
        }]));
    }
    Ok(config)
}

/// Show what applying a configuration would change (nothing is written).
#[utoipa::path(
    post,
    path = "/config/diff",
    tag = "config",
    operation_id = "diff_config",
    request_body(description = "A configuration file (YAML or JSON).",
        content((schema::Config = "application/yaml"), (schema::Config = "application/json"))),
    responses(
        (status = 200, description = "The changes apply would make.", body = ConfigChanges),
        WriteErrors,
    )
)]
async fn diff(
    Admin(caller): Admin,
    State(state): State<ApiState>,
    upload: ConfigText,
) -> Result<axum::Json<ConfigChanges>, ApiError> {
    let config = parse(&upload)?;
    let revision = state.control.state().revision;
    let key = state.control.secret_key();
    let now = tollgate_model::Timestamp::now();
    let ((), records) = state
        .control
        .dry_run(caller.actor(), |w| {
            w.state().check_certificates_written(&config, now)?;
            w.apply_config(&config, key)
        })
        .map_err(|e| ApiError::write(e, None))?;
    Ok(axum::Json(ConfigChanges::new(revision, records)))
}

/// Make the whole configuration match a file, in one change set.
#[utoipa::path(
    post,
    path = "/config/apply",
    tag = "config",
    operation_id = "apply_config",
    request_body(description = "A configuration file (YAML or JSON).",
        content((schema::Config = "application/yaml"), (schema::Config = "application/json"))),
    responses(
        (status = 200, description = "Applied (or nothing to change); the changes made.", body = ConfigChanges),
        WriteErrors,
    )
)]
async fn apply(
    Admin(caller): Admin,
    State(state): State<ApiState>,
    upload: ConfigText,
) -> Result<axum::Json<ConfigChanges>, ApiError> {
    let config = parse(&upload)?;
    let key = state.control.secret_key();
    let now = tollgate_model::Timestamp::now();
    let written = state
        .control
        .write(caller.actor(), |w| {
            w.state().check_certificates_written(&config, now)?;
            w.apply_config(&config, key)?;
            Ok(w.audit().to_vec())
        })
        .await
        .map_err(|e| ApiError::write(e, None))?;
    Ok(axum::Json(ConfigChanges::new(
        written.revision,
        written.value,
    )))
}
