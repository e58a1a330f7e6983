//! The admin API's debug endpoint, wired to the data plane: compile the sandbox configuration
//! and send the test request through a sandbox proxy (see `tollgate_proxy::debug`).

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use tollgate_admin::debug::{DebugError, DebugFuture, DebugRequest, DebugResult, Debugger};
use tollgate_model::Config;
use tollgate_plugin_api::Registry;
use tollgate_runtime::{CompileOptions, compile};

/// Compiles sandbox snapshots with the gateway's plugins.
pub(crate) struct SandboxDebugger {
    pub(crate) plugins: Registry,
}

impl Debugger for SandboxDebugger {
    fn debug(&self, config: Config, environment: String, request: DebugRequest) -> DebugFuture {
        let plugins = self.plugins.clone();
        Box::pin(async move {
            let request = convert(&config, request)?;
            let snapshot = compile(
                &config,
                &CompileOptions {
                    registry: &plugins,
                    previous: None,
                    workers: 1,
                    revision: 0,
                },
            )
            .map_err(|items| {
                DebugError::Config(
                    items
                        .iter()
                        .map(|d| format!("{}: {}", d.path, d.message))
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })?;
            let answer = tollgate_proxy::debug::run(snapshot, request)
                .await
                .map_err(DebugError::Failed)?;
            let mut headers = BTreeMap::<String, String>::new();
            for (name, value) in &answer.headers {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                headers
                    .entry(name.as_str().to_owned())
                    .and_modify(|v| {
                        v.push_str(", ");
                        v.push_str(&value);
                    })
                    .or_insert(value);
            }
            Ok(DebugResult {
                status: answer.status,
                headers,
                body: String::from_utf8_lossy(&answer.body).into_owned(),
                truncated: answer.truncated,
                trace: serde_json::to_value(&answer.trace).unwrap_or_default(),
                total_ms: answer.total_ms,
                environment,
            })
        })
    }
}

fn convert(
    config: &Config,
    request: DebugRequest,
) -> Result<tollgate_proxy::debug::DebugRequest, DebugError> {
    let method = Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| DebugError::Invalid(format!("invalid method {:?}", request.method)))?;
    if !request.path.starts_with('/') {
        return Err(DebugError::Invalid(format!(
            "path {:?} must start with '/'",
            request.path
        )));
    }
    let mut headers = HeaderMap::new();
    for (name, value) in &request.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| DebugError::Invalid(format!("invalid header name {name:?}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| DebugError::Invalid(format!("invalid value for header {name}")))?;
        headers.append(name, value);
    }
    if !headers.contains_key(http::header::HOST)
        && let Some(host) = config
            .apis
            .first()
            .and_then(|a| a.hosts.iter().find(|h| !h.starts_with('*')))
        && let Ok(value) = HeaderValue::from_str(host)
    {
        headers.insert(http::header::HOST, value);
    }
    Ok(tollgate_proxy::debug::DebugRequest {
        method,
        path_and_query: request.path,
        headers,
        body: request.body.map(Bytes::from).unwrap_or_default(),
    })
}
