//! Debugging an API version before (or after) it is published: the admin API builds a sandbox
//! configuration in which only that version is live, in one environment that takes every
//! host, and hands it with the test request to a [`Debugger`] — provided by the binary, which
//! compiles it and sends the request through a sandbox data plane with tracing on.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use tollgate_model::{Config, DEFAULT_ENVIRONMENT};
use tollgate_store::State;
use utoipa::ToSchema;

/// A test request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DebugRequest {
    /// Method; default `GET`.
    #[serde(default = "get")]
    pub method: String,
    /// Path and query as a client would send them, e.g. `/v1/users/7?verbose=1` (the API's
    /// base path included).
    pub path: String,
    /// Request headers. Without `Host`, the API's first exact host (if it has hosts) is used.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request body (UTF-8 text).
    #[serde(default)]
    pub body: Option<String>,
    /// Whose variables (`${vars.NAME}`) to use: default the first environment the version is
    /// live in, else `prod` or the first environment.
    #[serde(default)]
    pub environment: Option<String>,
}

fn get() -> String {
    "GET".to_owned()
}

/// What came back, and how.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DebugResult {
    /// Response status.
    pub status: u16,
    /// Response headers (a repeated header's values joined with `, `).
    pub headers: BTreeMap<String, String>,
    /// Response body as text (invalid UTF-8 replaced), at most 1 MiB.
    pub body: String,
    /// Whether the body was longer than shown.
    pub truncated: bool,
    /// The request's path through the pipeline: environment, route and parameters, each
    /// policy's decision and time, upstream service, target and latency, error code.
    #[schema(value_type = Object)]
    pub trace: serde_json::Value,
    /// Wall-clock time of the whole exchange, in milliseconds.
    pub total_ms: f64,
    /// The environment whose variables were used.
    pub environment: String,
}

/// Why a debug run failed before a response came back.
#[derive(Debug, thiserror::Error)]
pub enum DebugError {
    /// The request itself is invalid (bad method, header, path).
    #[error("{0}")]
    Invalid(String),
    /// The sandbox configuration does not compile (with field paths).
    #[error("{0}")]
    Config(String),
    /// The sandbox failed.
    #[error("{0}")]
    Failed(String),
}

/// Future returned by [`Debugger::debug`].
pub type DebugFuture = Pin<Box<dyn Future<Output = Result<DebugResult, DebugError>> + Send>>;

/// Runs a request through a sandbox serving `config`.
pub trait Debugger: Send + Sync {
    /// Compiles `config` and sends `request` through it.
    fn debug(&self, config: Config, environment: String, request: DebugRequest) -> DebugFuture;
}

/// The sandbox configuration for `api` `version`: everything of `state`, but only this version
/// live, in `environment` (made to take every host), and the environment it is in. `None` when
/// the version or the environment does not exist.
pub fn sandbox_config(
    state: &State,
    api: &str,
    version: &str,
    environment: Option<&str>,
) -> Option<(Config, String)> {
    let key = (api.to_owned(), version.to_owned());
    state.versions.get(&key)?;
    let environment = match environment {
        Some(e) => {
            if !state.has_environment(e) {
                return None;
            }
            e.to_owned()
        }
        None => state
            .deployments_of(api)
            .find(|d| d.value.version == version)
            .map(|d| d.value.environment.clone())
            .or_else(|| {
                state
                    .has_environment(DEFAULT_ENVIRONMENT)
                    .then(|| DEFAULT_ENVIRONMENT.to_owned())
            })
            .or_else(|| state.environments.keys().next().cloned())?,
    };
    let mut config = state.to_config(Default::default());
    config
        .apis
        .retain(|a| a.name == api && a.version == version);
    for a in &mut config.apis {
        let a = std::sync::Arc::make_mut(a);
        a.publish = Some(vec![environment.clone()]);
        a.deprecation.retain(|env, _| *env == environment);
    }
    for env in &mut config.environments {
        if env.name == environment {
            env.hosts.clear();
        }
    }
    config.environments.retain(|e| e.name == environment);
    for consumer in &mut config.consumers {
        consumer.grants.retain(|g| g.api == api);
    }
    config.server.access_log.enabled = false;
    // The sandbox speaks plain HTTP: no certificates (their keys stay encrypted).
    config.certificates.clear();
    Some((config, environment))
}
