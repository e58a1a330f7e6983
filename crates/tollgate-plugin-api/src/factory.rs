//! Building policies from configuration, and the registry of known plugins.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use tollgate_model::FieldPath;

use crate::Policy;

/// A policy configuration error, with the path inside the policy's `config`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PolicyConfigError {
    /// Path relative to the policy's `config` object.
    pub path: FieldPath,
    /// What is wrong.
    pub message: String,
}

impl PolicyConfigError {
    /// An error about the field at `path`.
    pub fn new(path: FieldPath, message: impl Into<String>) -> Self {
        Self {
            path,
            message: message.into(),
        }
    }
}

/// Deserializes a policy's JSON `config` into its typed struct, reporting the failing field.
pub fn parse_policy_config<T: DeserializeOwned>(
    value: &serde_json::Value,
) -> Result<T, PolicyConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = FieldPath::from_serde(e.path());
        PolicyConfigError::new(path, e.into_inner().to_string())
    })
}

/// Makes policies of one plugin type.
pub trait PolicyFactory: Send + Sync + 'static {
    /// The name used in configuration (`cors`, `request-size-limit`, ...).
    fn name(&self) -> &'static str;

    /// Default order in a chain: higher runs earlier in the access phase (and later in the
    /// response phase, like nested middleware). Documented per plugin.
    fn priority(&self) -> i32;

    /// Validates `config` and builds a policy. Called off the request path, once per snapshot.
    fn build(&self, config: &serde_json::Value) -> Result<Arc<dyn Policy>, PolicyConfigError>;
}

/// The plugins a binary knows, by name. Built from one explicit list; no global registration.
#[derive(Clone, Default)]
pub struct Registry {
    factories: Vec<Arc<dyn PolicyFactory>>,
}

impl Registry {
    /// A registry of these factories.
    pub fn new(factories: Vec<Arc<dyn PolicyFactory>>) -> Self {
        Self { factories }
    }

    /// The factory called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn PolicyFactory>> {
        self.factories.iter().find(|f| f.name() == name)
    }

    /// Names of every known plugin, for error messages.
    pub fn names(&self) -> Vec<&'static str> {
        self.factories.iter().map(|f| f.name()).collect()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}
