//! Process-wide HTTP server settings: workers, timeouts, limits, forwarding headers, path
//! normalization, request ids and the access log.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::Duration;

/// Settings that apply to every listener.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Worker threads, each with its own single-threaded runtime and listening socket.
    /// `0` means one per available core.
    pub workers: usize,
    /// Client-side timeouts.
    pub timeouts: Timeouts,
    /// Request size bounds.
    pub limits: Limits,
    /// Peers whose `X-Forwarded-*` and `Forwarded` headers are trusted (CIDRs or addresses).
    #[serde(deserialize_with = "nets_or_addresses")]
    pub trusted_proxies: Vec<IpNet>,
    /// How request paths are normalized before routing.
    pub path_normalization: PathNormalization,
    /// Request id header handling.
    pub request_id: RequestIdConfig,
    /// Access log.
    pub access_log: AccessLog,
    /// Request header that selects an environment allowing it (`header_selection: true`).
    pub environment_header: EnvironmentHeader,
}

/// The name of the environment-selecting request header (`X-Tollgate-Env` by default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EnvironmentHeader(pub String);

impl Default for EnvironmentHeader {
    fn default() -> Self {
        Self("x-tollgate-env".to_owned())
    }
}

/// Client-side timeouts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// Time allowed for a client to send a complete request head.
    pub client_header: Duration,
    /// How long an idle keep-alive client connection is kept open.
    pub idle: Duration,
    /// On shutdown, how long in-flight requests may take to finish.
    pub shutdown_grace: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            client_header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Request size bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Maximum size of a request head (request line and headers), in bytes. Larger: 431.
    pub max_header_bytes: usize,
    /// Maximum number of request headers. More: 431.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 32 * 1024,
            max_headers: 100,
        }
    }
}

/// Path normalization applied before routing, modelled on Envoy's options. The upstream receives
/// the normalized path, so a backend never sees a spelling that routing did not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathNormalization {
    /// Remove `.` and `..` segments (RFC 3986 section 5.2.4), including percent-encoded ones.
    pub remove_dot_segments: bool,
    /// Decode percent-escapes of unreserved characters (`%41` → `A`) and upper-case the rest.
    pub decode_unreserved: bool,
    /// Merge repeated slashes (`//a///b` → `/a/b`).
    pub merge_slashes: bool,
    /// What to do with `%2F` / `%5C` (escaped slash and backslash) in a path.
    pub escaped_slashes: EscapedSlashes,
}

impl Default for PathNormalization {
    fn default() -> Self {
        Self {
            remove_dot_segments: true,
            decode_unreserved: true,
            merge_slashes: true,
            escaped_slashes: EscapedSlashes::Keep,
        }
    }
}

/// Handling of escaped slashes, as Envoy's `path_with_escaped_slashes_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscapedSlashes {
    /// Leave `%2F` as it is (it is not a path separator for routing).
    Keep,
    /// Answer 400.
    Reject,
    /// Decode to `/` (then normalize again) and forward.
    Unescape,
}

/// Request id handling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestIdConfig {
    /// Header carrying the id, to the upstream and back to the client.
    pub header: String,
    /// Keep an incoming id (when well-formed) instead of generating one.
    pub trust_incoming: bool,
}

impl Default for RequestIdConfig {
    fn default() -> Self {
        Self {
            header: "x-request-id".to_owned(),
            trust_incoming: true,
        }
    }
}

/// JSON access log, one line per request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessLog {
    /// Write access log lines at all.
    pub enabled: bool,
    /// `stdout`, `stderr`, or a file path (appended to).
    pub output: String,
}

impl Default for AccessLog {
    fn default() -> Self {
        Self {
            enabled: true,
            output: "stdout".to_owned(),
        }
    }
}

/// Reads a list of networks where a bare address means that one host (`10.0.0.1` → `/32`).
fn nets_or_addresses<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    let items: Vec<String> = Vec::deserialize(d)?;
    items
        .iter()
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{item:?} is neither an address nor a network (CIDR such as 10.0.0.0/8)"
                    ))
                })
        })
        .collect()
}
