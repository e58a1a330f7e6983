//! Validation helpers the policies' `build` functions share: field paths, header names and
//! values, and the headers only the proxy may manage. Nothing here runs on the request path.

use http::{HeaderName, HeaderValue};
use tollgate_model::FieldPath;
use tollgate_plugin_api::PolicyConfigError;

/// The path of a top-level field of a policy's `config`.
pub(crate) fn field(key: &str) -> FieldPath {
    FieldPath::root().key(key)
}

/// Parses a header name written in configuration (any case; stored lowercase).
pub(crate) fn header_name(path: &FieldPath, raw: &str) -> Result<HeaderName, PolicyConfigError> {
    HeaderName::from_bytes(raw.as_bytes()).map_err(|_| {
        PolicyConfigError::new(
            path.clone(),
            format!("{raw:?} is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)"),
        )
    })
}

/// Parses a header value written in configuration (visible ASCII, spaces and tabs).
pub(crate) fn header_value(path: &FieldPath, raw: &str) -> Result<HeaderValue, PolicyConfigError> {
    HeaderValue::from_str(raw).map_err(|_| {
        PolicyConfigError::new(
            path.clone(),
            format!("{raw:?} is not a valid header value (no control characters or non-ASCII)"),
        )
    })
}

/// Refuses headers that describe the connection or the message framing: the proxy sets them
/// from what it actually sends, and a policy changing them would desynchronize the two ends
/// (request smuggling, truncated bodies). `host` is not among them: rewriting it is legitimate.
pub(crate) fn refuse_managed(path: &FieldPath, name: &HeaderName) -> Result<(), PolicyConfigError> {
    const HOP_BY_HOP: &[&str] = &[
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ];
    let why = if HOP_BY_HOP.contains(&name.as_str()) {
        "is a hop-by-hop header that the proxy manages per connection"
    } else if name == http::header::CONTENT_LENGTH {
        "describes the body framing and is set by the proxy from the body it sends"
    } else {
        return Ok(());
    };
    Err(PolicyConfigError::new(
        path.clone(),
        format!("{name:?} {why}; a policy cannot change it"),
    ))
}
