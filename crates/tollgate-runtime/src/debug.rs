//! What the debug endpoint shows of a request sent through a sandbox snapshot: the
//! environment and route chosen, every policy's decision with its time, the upstream target.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// The response header a debug snapshot puts the trace in (base64url of its JSON); the debug
/// endpoint removes it before showing the response.
pub const TRACE_HEADER: &str = "x-tollgate-debug-trace";

/// The path of one request through the pipeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// Environment selected.
    pub environment: Option<String>,
    /// API of the matched route.
    pub api: Option<String>,
    /// API version of the matched route.
    pub api_version: Option<String>,
    /// Matched route.
    pub route: Option<String>,
    /// Path parameters captured by the route.
    pub params: BTreeMap<String, String>,
    /// Every policy that ran, in order.
    pub steps: Vec<TraceStep>,
    /// The upstream exchange, when the request was forwarded.
    pub upstream: Option<UpstreamTrace>,
    /// Error code of a refused or failed request (`route_not_found`, `upstream_timeout`...).
    pub error: Option<String>,
    /// From the start of the request to its response head, in microseconds.
    pub total_micros: u64,
}

/// One policy's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceStep {
    /// Phase: `access`, `upstream` or `response`.
    pub phase: String,
    /// Policy (plugin) name.
    pub policy: String,
    /// `continue`, `respond` (the policy answered) or `reject` (the policy refused).
    pub decision: String,
    /// Status of the answer or refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Error code of a refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Time the policy took, in microseconds.
    pub micros: u64,
}

/// The upstream exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamTrace {
    /// Service.
    pub service: String,
    /// Target URL (`None` for a mock backend).
    pub target: Option<String>,
    /// From sending the request to the response head, in milliseconds.
    pub millis: Option<f64>,
}

impl Trace {
    /// Records a policy's decision, timed from `started`.
    pub fn step(
        &mut self,
        phase: &str,
        policy: &str,
        decision: &str,
        status: Option<u16>,
        code: Option<&str>,
        started: Instant,
    ) {
        self.steps.push(TraceStep {
            phase: phase.to_owned(),
            policy: policy.to_owned(),
            decision: decision.to_owned(),
            status,
            code: code.map(str::to_owned),
            micros: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        });
    }
}
