//! APIs and their routes.

use serde::{Deserialize, Serialize};

use crate::PolicySpec;

/// An API: a named group of routes with shared hosts, base path and policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// Unique name.
    pub name: String,
    /// Host names the API answers on: exact (`api.example.com`) or wildcard (`*.example.com`).
    /// Empty: any host.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Path prefix in front of every route path (e.g. `/v1`).
    #[serde(default)]
    pub base_path: Option<String>,
    /// Policies for every route of this API.
    #[serde(default)]
    pub policies: Vec<PolicySpec>,
    /// Routes.
    pub routes: Vec<Route>,
}

/// One operation: request matchers, the service to forward to, rewrites and policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Name, unique within the API.
    pub name: String,
    /// Path patterns. `/a` matches `/a` and below; `= /a` only `/a`; `/users/{id}` a template
    /// (`{*rest}` catches the remainder); `~ ^/v[0-9]+/` a regular expression.
    pub paths: Vec<String>,
    /// Methods; empty: any.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Host names for this route; when set they replace the API's hosts; empty: the API's.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Header conditions, all of which must hold.
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
    /// Query parameter conditions, all of which must hold.
    #[serde(default)]
    pub query: Vec<QueryMatch>,
    /// Among regex routes only: higher is tried first. Ignored for other patterns.
    #[serde(default)]
    pub priority: i32,
    /// Service to forward to.
    pub service: String,
    /// Path rewrite before forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<Rewrite>,
    /// Host header sent upstream.
    #[serde(default)]
    pub host_header: HostPolicy,
    /// Policies for this route.
    #[serde(default)]
    pub policies: Vec<PolicySpec>,
}

/// A header condition: exactly one of `value`, `regex`, `present`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    /// Header name (case-insensitive).
    pub name: String,
    /// Exact value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Regular expression the whole value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// `true`: must be present (any value); `false`: must be absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
}

/// A query parameter condition: exactly one of `value`, `regex`, `present`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryMatch {
    /// Parameter name (case-sensitive, after percent-decoding).
    pub name: String,
    /// Exact value (after percent-decoding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Regular expression the whole value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// `true`: must be present; `false`: must be absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
}

/// Path rewrite: exactly one of the fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rewrite {
    /// Remove the matched prefix (the static part of the pattern, with the API base path).
    #[serde(default)]
    pub strip_prefix: bool,
    /// Replace the matched prefix with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_prefix: Option<String>,
    /// Build the whole path from a template using captured parameters: `/v2/users/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// Which `Host` header the upstream receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostPolicy {
    /// The client's `Host`.
    #[default]
    Pass,
    /// The target's host and port.
    Upstream,
}
