//! Mirrors of `tollgate_model::api` and `tollgate_model::policy`.

use std::collections::BTreeMap;

use utoipa::ToSchema;

use super::Timestamp;

/// One version of an API as the admin API reads and writes it: the configuration file's API
/// without `publish` and `deprecation`, which the lifecycle endpoints set.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Api {
    /// Name, shared by all versions of the API (1-128 of letters, digits, `-`, `_`, `.`).
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    name: String,
    /// Version label, e.g. `1`, `2`, `2024-06-01` (default `1`).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    version: String,
    /// Free text for people.
    #[serde(default)]
    description: Option<String>,
    /// API group, e.g. a product or team.
    #[serde(default)]
    group: Option<String>,
    /// Labels for filtering.
    #[serde(default)]
    tags: Vec<String>,
    /// Host names the API answers on (exact or `*.example.com`); empty: any host.
    #[serde(default)]
    hosts: Vec<String>,
    /// Path prefix in front of every route path (e.g. `/v1`).
    #[serde(default)]
    base_path: Option<String>,
    /// Policies for every route of this API.
    #[serde(default)]
    policies: Vec<PolicySpec>,
    /// Routes.
    routes: Vec<Route>,
    /// The document-level parts of the OpenAPI document the API was imported from (`info`,
    /// `externalDocs`, `tags`, `components.securitySchemes`, `security`), kept for export.
    #[serde(default)]
    openapi: Option<serde_json::Value>,
}

/// One version of an API as configuration files (and `GET /api/v1/config`) write it.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigApi {
    /// Name, shared by all versions of the API (1-128 of letters, digits, `-`, `_`, `.`).
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    name: String,
    /// Version label (default `1`).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    version: String,
    /// Free text for people.
    #[serde(default)]
    description: Option<String>,
    /// API group.
    #[serde(default)]
    group: Option<String>,
    /// Labels for filtering.
    #[serde(default)]
    tags: Vec<String>,
    /// Environments this version is live in. Absent: every environment; `[]`: none.
    #[serde(default)]
    publish: Option<Vec<String>>,
    /// Deprecation per environment name.
    #[serde(default)]
    deprecation: BTreeMap<String, Deprecation>,
    /// Host names the API answers on.
    #[serde(default)]
    hosts: Vec<String>,
    /// Path prefix in front of every route path.
    #[serde(default)]
    base_path: Option<String>,
    /// Policies for every route of this API.
    #[serde(default)]
    policies: Vec<PolicySpec>,
    /// Routes.
    routes: Vec<Route>,
    /// The document-level parts of the OpenAPI document the API was imported from (`info`,
    /// `externalDocs`, `tags`, `components.securitySchemes`, `security`), kept for export.
    #[serde(default)]
    openapi: Option<serde_json::Value>,
}

/// One operation: request matchers, the service to forward to, rewrites and policies.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Route {
    /// Name, unique within the API.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    name: String,
    /// Path patterns: `/a` (prefix), `= /a` (exact), `/users/{id}`, `/files/{*rest}`,
    /// `~ ^/v[0-9]+/` (regular expression).
    paths: Vec<String>,
    /// Methods; empty: any.
    #[serde(default)]
    methods: Vec<String>,
    /// Host names for this route; empty: the API's.
    #[serde(default)]
    hosts: Vec<String>,
    /// Header conditions, all of which must hold.
    #[serde(default)]
    headers: Vec<HeaderMatch>,
    /// Query parameter conditions, all of which must hold.
    #[serde(default)]
    query: Vec<QueryMatch>,
    /// Among regex routes only: higher is tried first.
    #[serde(default)]
    priority: i32,
    /// Service to forward to.
    service: String,
    /// Path rewrite before forwarding.
    #[serde(default)]
    rewrite: Option<Rewrite>,
    /// Host header sent upstream.
    #[serde(default)]
    host_header: HostPolicy,
    /// Policies for this route.
    #[serde(default)]
    policies: Vec<PolicySpec>,
    /// The OpenAPI operation object this route was imported from.
    #[serde(default)]
    operation: Option<serde_json::Value>,
}

/// A header condition: exactly one of `value`, `regex`, `present`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeaderMatch {
    /// Header name (case-insensitive).
    name: String,
    /// Exact value.
    #[serde(default)]
    value: Option<String>,
    /// Regular expression the whole value must match.
    #[serde(default)]
    regex: Option<String>,
    /// `true`: must be present; `false`: must be absent.
    #[serde(default)]
    present: Option<bool>,
}

/// A query parameter condition: exactly one of `value`, `regex`, `present`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueryMatch {
    /// Parameter name (case-sensitive, after percent-decoding).
    name: String,
    /// Exact value.
    #[serde(default)]
    value: Option<String>,
    /// Regular expression the whole value must match.
    #[serde(default)]
    regex: Option<String>,
    /// `true`: must be present; `false`: must be absent.
    #[serde(default)]
    present: Option<bool>,
}

/// Path rewrite: exactly one of the fields.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rewrite {
    /// Remove the matched prefix.
    #[serde(default)]
    strip_prefix: bool,
    /// Replace the matched prefix with this.
    #[serde(default)]
    replace_prefix: Option<String>,
    /// Build the whole path from a template using captured parameters.
    #[serde(default)]
    template: Option<String>,
}

/// Which `Host` header the upstream receives.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum HostPolicy {
    /// The client's `Host` (default).
    Pass,
    /// The target's host and port.
    Upstream,
}

/// When and how an API version is deprecated in one environment.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Deprecation {
    /// When it was (or will be) deprecated: the `Deprecation` header's date.
    at: Timestamp,
    /// When it stops answering: the `Sunset` header.
    #[serde(default)]
    sunset: Option<Timestamp>,
    /// A page explaining the deprecation (`Link: <...>; rel="deprecation"`).
    #[serde(default)]
    link: Option<String>,
}

/// A configured plugin instance (global policies are keyed by plugin name).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicySpec {
    /// Plugin name, e.g. `cors`.
    name: String,
    /// Plugin configuration: for every built-in plugin an object whose shape is the plugin's
    /// (see docs/policies.md), checked when the configuration is validated (default `{}`).
    /// Any JSON value is stored as given.
    #[serde(default)]
    config: serde_json::Value,
    /// Set to false to keep the policy but not run it (default true).
    #[serde(default)]
    #[schema(default = true)]
    enabled: bool,
}
