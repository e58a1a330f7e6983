//! Mirrors of `tollgate_model::server`.

use utoipa::ToSchema;

use super::Duration;

/// Settings that apply to every listener of every node.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerConfig {
    /// Worker threads; `0`: one per core.
    #[serde(default)]
    workers: usize,
    /// Client-side timeouts.
    #[serde(default)]
    timeouts: Timeouts,
    /// Request size bounds.
    #[serde(default)]
    limits: Limits,
    /// Peers whose forwarding headers are trusted (addresses or CIDRs).
    #[serde(default)]
    trusted_proxies: Vec<String>,
    /// How request paths are normalized before routing.
    #[serde(default)]
    path_normalization: PathNormalization,
    /// Request id header handling.
    #[serde(default)]
    request_id: RequestIdConfig,
    /// Access log.
    #[serde(default)]
    access_log: AccessLog,
    /// Request header that selects an environment allowing it (default `x-tollgate-env`).
    #[serde(default)]
    environment_header: String,
}

/// Client-side timeouts.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Timeouts {
    /// Time allowed for a client to send a complete request head (default 10s).
    #[serde(default)]
    client_header: Duration,
    /// How long an idle keep-alive client connection is kept open (default 60s).
    #[serde(default)]
    idle: Duration,
    /// On shutdown, how long in-flight requests may take to finish (default 30s).
    #[serde(default)]
    shutdown_grace: Duration,
}

/// Request size bounds.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Limits {
    /// Maximum size of a request head in bytes (default 32768).
    #[serde(default)]
    max_header_bytes: usize,
    /// Maximum number of request headers (default 100).
    #[serde(default)]
    max_headers: usize,
}

/// Path normalization applied before routing.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PathNormalization {
    /// Remove `.` and `..` segments (default true).
    #[serde(default)]
    remove_dot_segments: bool,
    /// Decode percent-escapes of unreserved characters (default true).
    #[serde(default)]
    decode_unreserved: bool,
    /// Merge repeated slashes (default true).
    #[serde(default)]
    merge_slashes: bool,
    /// What to do with `%2F` / `%5C` in a path (default `keep`).
    #[serde(default)]
    escaped_slashes: EscapedSlashes,
}

/// Handling of escaped slashes.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum EscapedSlashes {
    /// Leave `%2F` as it is.
    Keep,
    /// Answer 400.
    Reject,
    /// Decode to `/` and forward.
    Unescape,
}

/// Request id handling.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestIdConfig {
    /// Header carrying the id (default `x-request-id`).
    #[serde(default)]
    header: String,
    /// Keep a well-formed incoming id (default true).
    #[serde(default)]
    trust_incoming: bool,
}

/// JSON access log, one line per request.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessLog {
    /// Write access log lines at all (default true).
    #[serde(default)]
    enabled: bool,
    /// `stdout`, `stderr`, or a file path (default `stdout`).
    #[serde(default)]
    output: String,
}
