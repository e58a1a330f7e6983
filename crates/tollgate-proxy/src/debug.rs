//! Debugging a request through an API before it is published: a sandbox data plane (one
//! worker on an ephemeral loopback port) serves a snapshot compiled for the occasion, with
//! tracing on; the request goes through it over a real socket, exactly as a client's would,
//! and the trace comes back in a response header that is removed before the answer is shown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tollgate_plugin_api::{Outcome, RequestCtx};
use tollgate_runtime::{Backend, Snapshot, SnapshotHandle, TRACE_HEADER, Trace, UpstreamTrace};

use crate::response_body::LogState;
use crate::{AccessLogSink, Proxy, ProxyConfig, ProxyMetrics};

/// Response bodies longer than this are cut in the debug answer.
pub const MAX_BODY: usize = 1 << 20;

/// A request to send through the sandbox.
#[derive(Debug, Clone)]
pub struct DebugRequest {
    /// Method.
    pub method: http::Method,
    /// Path and query, e.g. `/users/7?x=1`.
    pub path_and_query: String,
    /// Headers (a `Host` selects the environment and the API's hosts).
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// What came back.
#[derive(Debug, Clone)]
pub struct DebugResponse {
    /// Status.
    pub status: u16,
    /// Headers (without the trace header).
    pub headers: HeaderMap,
    /// Body, at most [`MAX_BODY`] bytes.
    pub body: Bytes,
    /// Whether the body was cut.
    pub truncated: bool,
    /// The request's path through the pipeline.
    pub trace: Trace,
    /// Wall-clock time of the exchange with the sandbox, in milliseconds.
    pub total_ms: f64,
}

/// Sends `request` through a sandbox serving `snapshot` (tracing forced on).
pub async fn run(mut snapshot: Snapshot, request: DebugRequest) -> Result<DebugResponse, String> {
    snapshot.debug = true;
    let mut registry = prometheus_client::registry::Registry::default();
    let proxy = Proxy::start(
        &ProxyConfig {
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            https: None,
            workers: 1,
            worker_slice: None,
        },
        SnapshotHandle::new(snapshot),
        ProxyMetrics::new(&mut registry),
        AccessLogSink::disabled(),
    )
    .map_err(|e| format!("cannot start the debug sandbox: {e}"))?;
    let result = exchange(proxy.http_addr(), request).await;
    // Joining the worker thread blocks: not on this runtime's thread.
    let _ = tokio::task::spawn_blocking(move || proxy.shutdown(Duration::ZERO)).await;
    result
}

async fn exchange(
    addr: Option<SocketAddr>,
    request: DebugRequest,
) -> Result<DebugResponse, String> {
    let addr = addr.ok_or("the debug sandbox has no address")?;
    let mut builder = http::Request::builder()
        .method(request.method)
        .uri(format!("http://{addr}{}", request.path_and_query));
    if let Some(headers) = builder.headers_mut() {
        *headers = request.headers;
    }
    let req = builder
        .body(Full::new(request.body))
        .map_err(|e| format!("invalid debug request: {e}"))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let started = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(120), client.request(req))
        .await
        .map_err(|_| "the debug request took longer than 120 s".to_owned())?
        .map_err(|e| format!("the debug request failed: {e}"))?;
    let (mut parts, body) = response.into_parts();
    let (body, truncated) = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => (b.to_bytes(), false),
        Err(_) => (
            Bytes::from_static(b"(body longer than 1 MiB, not shown)"),
            true,
        ),
    };
    let total_ms = started.elapsed().as_secs_f64() * 1000.0;
    let trace = parts
        .headers
        .remove(TRACE_HEADER)
        .and_then(|v| URL_SAFE_NO_PAD.decode(v.as_bytes()).ok())
        .and_then(|json| serde_json::from_slice(&json).ok())
        .unwrap_or_default();
    Ok(DebugResponse {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
        truncated,
        trace,
        total_ms,
    })
}

/// Records an access or upstream policy's decision.
pub(crate) fn record(
    trace: &mut Trace,
    phase: &str,
    policy: &str,
    outcome: &Outcome,
    started: Instant,
) {
    let (decision, status, code) = match outcome {
        Outcome::Continue => ("continue", None, None),
        Outcome::Respond(r) => ("respond", Some(r.status().as_u16()), None),
        Outcome::Reject(e) => ("reject", Some(e.status.as_u16()), Some(e.code)),
    };
    trace.step(phase, policy, decision, status, code, started);
}

/// Completes the trace from what the request did and puts it in the response headers.
pub(crate) fn finish_trace(
    snapshot: &Arc<Snapshot>,
    cx: &RequestCtx,
    log: &mut LogState,
    headers: &mut HeaderMap,
) {
    let Some(mut trace) = log.trace.take() else {
        return;
    };
    trace.environment = log
        .environment
        .and_then(|e| snapshot.environments.get(e))
        .map(|e| e.name.to_string());
    if let Some(route) = log.route.and_then(|r| snapshot.routes.get(r)) {
        trace.api = Some(route.info.api.to_string());
        trace.api_version = Some(route.api_version.to_string());
        trace.route = Some(route.info.route.to_string());
        let service = snapshot.services.get(route.service);
        if let Some(service) = service {
            let target = log.target.and_then(|(_, t)| match &service.backend {
                Backend::Pool(p) => p.targets().get(t).map(|t| t.url.clone()),
                Backend::Mock(_) => None,
            });
            if target.is_some() || matches!(service.backend, Backend::Mock(_)) {
                trace.upstream = Some(UpstreamTrace {
                    service: service.name.to_string(),
                    target,
                    millis: log.upstream_ms,
                });
            }
        }
    }
    trace.params = cx
        .params
        .0
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    trace.error = log.error.map(str::to_owned);
    trace.total_micros = u64::try_from(log.started.elapsed().as_micros()).unwrap_or(u64::MAX);
    if let Ok(json) = serde_json::to_vec(&*trace)
        && let Ok(value) = HeaderValue::from_str(&URL_SAFE_NO_PAD.encode(json))
    {
        headers.insert(HeaderName::from_static(TRACE_HEADER), value);
    }
}
