//! APIs and their routes.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{PolicySpec, Timestamp};

/// The version an API has when its definition names none.
pub const DEFAULT_API_VERSION: &str = "1";

/// An API: a named group of routes with shared hosts, base path and policies, in one version.
/// A configuration may hold several versions of the same API (`name` + `version` is unique);
/// `publish` says in which environments a version is live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// Name, shared by all versions of the API.
    pub name: String,
    /// Version label, e.g. `1`, `2`, `2024-06-01`.
    #[serde(default = "default_version")]
    pub version: String,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// API group, e.g. a product or team, for listing and OpenAPI export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Labels for filtering.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Environments this version is live in. Absent: every environment; `[]`: none (a draft,
    /// or a version that was unpublished). At most one version of an API is live per
    /// environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<Vec<String>>,
    /// Deprecation per environment (key: environment name): the API keeps serving there and
    /// its responses carry `Deprecation` (RFC 9745) and, when set, `Sunset` (RFC 8594).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deprecation: BTreeMap<String, Deprecation>,
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
    pub routes: Routes,
    /// The document-level parts of the OpenAPI document the API was imported from (`info`,
    /// `externalDocs`, `tags` with their descriptions, `components.securitySchemes` as
    /// written, the top-level `security`), in the document's own shape: kept for OpenAPI
    /// export. Not used for routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openapi: Option<serde_json::Value>,
}

/// An API version's routes, shared by the copies of its definition: the caches that keep a
/// definition to skip the work of an unchanged one (validation, compilation, the store's
/// projection) hold the same list, so telling an unchanged definition from a changed one does
/// not walk its routes. Reads as a slice; [`Routes::make_mut`] gives a list of one's own to
/// change. Serialized as the plain list.
#[derive(Debug, Clone, Default)]
pub struct Routes(Arc<Vec<Route>>);

impl Routes {
    /// The routes, to change (copied first when shared).
    pub fn make_mut(&mut self) -> &mut Vec<Route> {
        Arc::make_mut(&mut self.0)
    }
}

impl PartialEq for Routes {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl std::ops::Deref for Routes {
    type Target = [Route];

    fn deref(&self) -> &[Route] {
        &self.0
    }
}

impl From<Vec<Route>> for Routes {
    fn from(routes: Vec<Route>) -> Self {
        Self(Arc::new(routes))
    }
}

impl FromIterator<Route> for Routes {
    fn from_iter<I: IntoIterator<Item = Route>>(iter: I) -> Self {
        Self(Arc::new(iter.into_iter().collect()))
    }
}

impl<'a> IntoIterator for &'a Routes {
    type Item = &'a Route;
    type IntoIter = std::slice::Iter<'a, Route>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Serialize for Routes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.as_slice().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Routes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Route>::deserialize(deserializer).map(Self::from)
    }
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
    /// The OpenAPI operation object this route was imported from (`$ref`s resolved): kept for
    /// request validation and for OpenAPI export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<serde_json::Value>,
}

/// When and how an API version is deprecated in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deprecation {
    /// When it was (or will be) deprecated: the `Deprecation` header's date.
    pub at: Timestamp,
    /// When it stops answering: the `Sunset` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset: Option<Timestamp>,
    /// A page explaining the deprecation and the migration (sent as `Link: <...>;
    /// rel="deprecation"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

fn default_version() -> String {
    DEFAULT_API_VERSION.to_owned()
}

impl Api {
    /// Whether this version is live in `environment`.
    pub fn is_published_in(&self, environment: &str) -> bool {
        self.publish
            .as_ref()
            .is_none_or(|envs| envs.iter().any(|e| e == environment))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str) -> Route {
        serde_json::from_value(serde_json::json!({"name": name, "paths": ["/x"], "service": "s"}))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn routes_compare_by_content_and_share_until_changed() {
        let a = Routes::from(vec![route("r0"), route("r1")]);
        let copy = a.clone();
        assert!(Arc::ptr_eq(&a.0, &copy.0), "a clone shares the list");
        assert_eq!(a, copy);
        // Equal content in a list of its own is still equal; different content is not.
        assert_eq!(a, Routes::from(vec![route("r0"), route("r1")]));
        assert_ne!(a, Routes::from(vec![route("r0")]));
        // Changing a shared list copies it first: the other copy keeps the old routes.
        let mut changed = copy.clone();
        changed.make_mut()[1].name = "other".into();
        assert_eq!(copy[1].name, "r1");
        assert_ne!(changed, copy);
        // Serialized as the plain list.
        assert_eq!(
            serde_json::to_value(&a).unwrap_or_default(),
            serde_json::to_value(vec![route("r0"), route("r1")]).unwrap_or_default()
        );
    }
}
