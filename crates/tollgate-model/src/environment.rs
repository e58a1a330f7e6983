//! Environments: named deployment targets (`prod`, `test`, ...) that APIs are published to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The environment every API is live in when a configuration defines none.
pub const DEFAULT_ENVIRONMENT: &str = "prod";

/// A deployment target. A request is served by the environment its `Host` is bound to (or,
/// where allowed, the one its environment header names); an environment without hosts takes
/// every request no other environment claims.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Unique name, e.g. `prod` or `test`.
    pub name: String,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Host names bound to this environment: exact (`api.example.com`) or wildcard
    /// (`*.test.example.com`). Empty: every host no other environment is bound to.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Whether a request may select this environment with the environment header
    /// (`server.environment_header`, `X-Tollgate-Env` by default). Off by default, so that a
    /// production environment cannot be reached through another environment's hosts or the
    /// other way round unless asked for.
    #[serde(default)]
    pub header_selection: bool,
    /// Variables referenced from API and service definitions as `${vars.NAME}`, e.g. a backend
    /// URL that differs between `test` and `prod`.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

impl Environment {
    /// The implicit environment of a configuration that defines none: named `prod`, no hosts.
    pub fn implicit() -> Self {
        Self {
            name: DEFAULT_ENVIRONMENT.to_owned(),
            ..Self::default()
        }
    }
}
