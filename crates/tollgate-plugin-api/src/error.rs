//! Errors the gateway answers with, whoever raised them.

use std::borrow::Cow;

use http::StatusCode;

/// Where an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The client sent something we refuse.
    Downstream,
    /// The upstream failed or misbehaved.
    Upstream,
    /// Tollgate itself.
    Internal,
}

/// An error that becomes a response with the stable JSON body
/// `{"error": {"code": "...", "message": "...", "request_id": "..."}}`.
/// The proxy turns it into a response in one place, adding the request id.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct GatewayError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `route_not_found`.
    pub code: &'static str,
    /// Human-readable explanation. Never contains secrets.
    pub message: Cow<'static, str>,
    /// Where it came from.
    pub origin: ErrorSource,
    /// Whether the request may be retried on another target without side effects.
    pub retry_safe: bool,
}

impl GatewayError {
    /// An error raised because of the client's request.
    pub fn downstream(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            origin: ErrorSource::Downstream,
            retry_safe: false,
        }
    }

    /// An error caused by the upstream.
    pub fn upstream(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
        retry_safe: bool,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            origin: ErrorSource::Upstream,
            retry_safe,
        }
    }

    /// An internal failure.
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal_error",
            message: message.into(),
            origin: ErrorSource::Internal,
            retry_safe: false,
        }
    }
}
