//! Errors of the admin API and the one place they become responses: a status, a stable
//! `code`, a message for people, and, for bad input, the field it is about (`field`, a path
//! in the request body such as `routes[0].service`) and every problem found (`details`).
//!
//! Field paths point into the request body when the problem is inside it; problems elsewhere
//! in the configuration a write would produce (e.g. a route still naming a deleted service)
//! carry their path in the whole configuration, as `GET /api/v1/config` shows it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tollgate_model::{Diagnostic, FieldPath};
use tollgate_store::{StoreError, WriteError};
use utoipa::ToSchema;

use crate::control::ControlError;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// The error.
    pub error: ErrorObject,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorObject {
    /// Stable, machine-readable code (`invalid_body`, `not_found`, `precondition_failed`, ...).
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// The field the error is about, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every problem found, for validation errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
}

/// One problem of an invalid request or configuration.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// Field path (`routes[0].service`).
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// Line in the uploaded text (configuration uploads), 1-based.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// Column in the uploaded text, 1-based.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl ErrorDetail {
    fn of(d: &Diagnostic, base: Option<&FieldPath>) -> Self {
        let path = match base {
            Some(base) if d.path.0.starts_with(&base.0) => {
                FieldPath(d.path.0[base.0.len()..].to_vec())
            }
            _ => d.path.clone(),
        };
        Self {
            path: path.to_string(),
            message: d.message.clone(),
            line: d.location.map(|l| l.line),
            column: d.location.map(|l| l.column),
        }
    }
}

/// Why an admin API call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// No token, a malformed `Authorization` header, or an unknown token.
    #[error("{0}")]
    Unauthorized(String),
    /// The token's role does not allow the call.
    #[error("{0}")]
    Forbidden(String),
    /// The body is not JSON (or not YAML for configuration uploads).
    #[error("{message}")]
    InvalidJson {
        /// The parser's message.
        message: String,
        /// Where, 1-based.
        line: usize,
        /// Where, 1-based.
        column: usize,
    },
    /// The body is JSON of the wrong shape: unknown field, wrong type, missing field.
    #[error("{message}")]
    InvalidBody {
        /// The field.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A query parameter is wrong.
    #[error("{message}")]
    InvalidQuery {
        /// The parameter.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A path parameter is wrong.
    #[error("{0}")]
    InvalidPath(String),
    /// A request header is malformed.
    #[error("{message}")]
    InvalidHeader {
        /// The header.
        header: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The body names another object than the path.
    #[error("{message}")]
    NameMismatch {
        /// The body field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The resulting configuration would be invalid.
    #[error("{}", summary(.0))]
    Invalid(Vec<ErrorDetail>),
    /// The body's media type is not accepted.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body is larger than allowed.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// No such object or route.
    #[error("{0}")]
    NotFound(String),
    /// The method is not defined for the path.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The object exists, or the change conflicts with the state.
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` is stale.
    #[error("{0}")]
    PreconditionFailed(String),
    /// File mode: writes are refused.
    #[error("{0}")]
    ReadOnly(String),
    /// Other writers kept committing first, or the store is unreachable.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or a corrupt store; details are logged, not sent.
    #[error("internal error")]
    Internal,
}

fn summary(details: &[ErrorDetail]) -> String {
    let shown: Vec<String> = details
        .iter()
        .take(5)
        .map(|d| format!("{}: {}", d.path, d.message))
        .collect();
    let more = details.len().saturating_sub(5);
    let tail = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    format!("invalid configuration: {}{tail}", shown.join("; "))
}

impl ApiError {
    /// A refused write; validation problems inside the written object (at `body_at` in the
    /// whole configuration) are reported relative to the request body.
    pub(crate) fn write(error: ControlError, body_at: Option<&FieldPath>) -> Self {
        match error {
            ControlError::ReadOnly => Self::ReadOnly(ControlError::ReadOnly.to_string()),
            ControlError::Busy => Self::Unavailable(ControlError::Busy.to_string()),
            ControlError::Write(e) => Self::from_write(e, body_at),
        }
    }

    fn from_write(error: WriteError, body_at: Option<&FieldPath>) -> Self {
        match error {
            WriteError::NotFound(m) => Self::NotFound(m),
            WriteError::Conflict(m) => Self::Conflict(m),
            e @ WriteError::PreconditionFailed { .. } => Self::PreconditionFailed(e.to_string()),
            WriteError::Invalid(items) => {
                Self::Invalid(items.iter().map(|d| ErrorDetail::of(d, body_at)).collect())
            }
            WriteError::Store(e) => e.into(),
        }
    }

    /// Problems of an uploaded configuration (with line and column).
    pub(crate) fn diagnostics(items: &[Diagnostic]) -> Self {
        Self::Invalid(items.iter().map(|d| ErrorDetail::of(d, None)).collect())
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::InvalidJson { .. }
            | Self::InvalidBody { .. }
            | Self::InvalidQuery { .. }
            | Self::InvalidPath(_)
            | Self::InvalidHeader { .. }
            | Self::NameMismatch { .. }
            | Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) | Self::ReadOnly(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::InvalidJson { .. } => "invalid_json",
            Self::InvalidBody { .. } => "invalid_body",
            Self::InvalidQuery { .. } => "invalid_query",
            Self::InvalidPath(_) => "invalid_path",
            Self::InvalidHeader { .. } => "invalid_header",
            Self::NameMismatch { .. } => "name_mismatch",
            Self::Invalid(_) => "invalid_config",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::PreconditionFailed(_) => "precondition_failed",
            Self::ReadOnly(_) => "read_only",
            Self::Unavailable(_) => "unavailable",
            Self::Internal => "internal",
        }
    }

    fn body(&self) -> ErrorBody {
        let (field, details) = match self {
            Self::InvalidBody { field, .. } | Self::InvalidQuery { field, .. } => {
                (field.clone(), Vec::new())
            }
            Self::InvalidJson { line, column, .. } => (
                None,
                vec![ErrorDetail {
                    path: FieldPath::root().to_string(),
                    message: self.to_string(),
                    line: Some(*line),
                    column: Some(*column),
                }],
            ),
            Self::InvalidHeader { header, .. } => (Some((*header).to_owned()), Vec::new()),
            Self::NameMismatch { field, .. } => (Some((*field).to_owned()), Vec::new()),
            Self::Invalid(details) => (details.first().map(|d| d.path.clone()), details.clone()),
            _ => (None, Vec::new()),
        };
        ErrorBody {
            error: ErrorObject {
                code: self.code().to_owned(),
                message: self.to_string(),
                field,
                details,
            },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Timeout(_) | StoreError::Connect { .. } | StoreError::Database(_) => {
                tracing::warn!(error = %e, "admin API: the store is unavailable");
                Self::Unavailable("the store is unavailable; retry later".into())
            }
            other => {
                tracing::error!(error = %other, "admin API: store failure");
                Self::Internal
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        match status {
            StatusCode::UNAUTHORIZED => {
                let value = if matches!(&self, Self::Unauthorized(m) if m.starts_with("unknown")) {
                    r#"Bearer realm="tollgate-admin", error="invalid_token""#
                } else {
                    r#"Bearer realm="tollgate-admin""#
                };
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}
