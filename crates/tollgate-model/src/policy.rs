//! A policy attachment: a plugin name and its (untyped here) configuration.

use serde::{Deserialize, Serialize};

/// A configured plugin instance, attached globally, to an API or to a route.
/// Its `config` is typed and validated by the plugin registry when the configuration is compiled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Plugin name, e.g. `cors`.
    pub name: String,
    /// Plugin configuration; its shape is the plugin's.
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
    /// Set to false to keep the policy in the file but not run it.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

fn yes() -> bool {
    true
}
