//! `request-headers`: edits the request head sent upstream (upstream phase, priority 800).
//!
//! ```yaml
//! - name: request-headers
//!   config:
//!     remove: [x-debug]
//!     set: { x-env: prod, host: users.internal }
//!     add: { x-tags: [a, b] }
//! ```
//!
//! Applied `remove` → `set` (replace) → `add` (append) to the head the proxy forwards, after
//! the access phase, so authentication sees the client's own headers. Names and values are
//! validated and parsed when the policy is built. `host` may be set; hop-by-hop and framing
//! headers are refused (see [`HeaderEdits`]).

use std::sync::Arc;

use http::request;
use tollgate_plugin_api::{
    Outcome, Phases, Policy, PolicyConfigError, PolicyFactory, RequestCtx, parse_policy_config,
};

use crate::header_edit::CompiledEdits;
pub use crate::header_edit::{HeaderEdits, HeaderValues};

/// The plugin name in configuration.
pub const NAME: &str = "request-headers";
/// Default chain position: after authentication and limits, before response edits.
pub const PRIORITY: i32 = 800;

/// Configuration: see [`HeaderEdits`].
pub type Config = HeaderEdits;

/// Builds [`RequestHeaders`] policies.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestHeadersFactory;

impl PolicyFactory for RequestHeadersFactory {
    fn name(&self) -> &'static str {
        NAME
    }

    fn priority(&self) -> i32 {
        PRIORITY
    }

    fn build(&self, config: &serde_json::Value) -> Result<Arc<dyn Policy>, PolicyConfigError> {
        Ok(Arc::new(RequestHeaders::new(&parse_policy_config(
            config,
        )?)?))
    }
}

/// Edits the upstream request head.
#[derive(Debug, Clone)]
pub struct RequestHeaders {
    edits: CompiledEdits,
}

impl RequestHeaders {
    /// Validates `config` and precompiles the edits.
    pub fn new(config: &Config) -> Result<Self, PolicyConfigError> {
        Ok(Self {
            edits: CompiledEdits::compile(config)?,
        })
    }
}

impl Policy for RequestHeaders {
    fn name(&self) -> &'static str {
        NAME
    }

    fn phases(&self) -> Phases {
        if self.edits.is_empty() {
            Phases::NONE
        } else {
            Phases::UPSTREAM
        }
    }

    fn upstream(&self, _cx: &mut RequestCtx, req: &mut request::Parts) -> Outcome {
        self.edits.apply(&mut req.headers);
        Outcome::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{build_error, ctx, request, values};

    #[test]
    fn edits_the_upstream_request_head() {
        let policy = RequestHeadersFactory
            .build(&serde_json::json!({
                "remove": ["x-debug"],
                "set": {"host": "users.internal", "x-env": "prod"},
                "add": {"x-tags": ["a", "b"]},
            }))
            .unwrap();
        assert_eq!(policy.phases(), Phases::UPSTREAM);
        let mut req = request(
            "GET",
            "/users",
            &[
                ("host", "api.example.com"),
                ("x-debug", "1"),
                ("x-env", "dev"),
                ("x-tags", "z"),
            ],
        );
        let outcome = policy.upstream(&mut ctx(), &mut req);
        assert!(matches!(outcome, Outcome::Continue));
        assert!(req.headers.get("x-debug").is_none());
        assert_eq!(values(&req.headers, "host"), ["users.internal"]);
        assert_eq!(values(&req.headers, "x-env"), ["prod"]);
        assert_eq!(values(&req.headers, "x-tags"), ["z", "a", "b"]);
    }

    #[test]
    fn empty_config_takes_no_phase() {
        let policy = RequestHeadersFactory.build(&serde_json::json!({})).unwrap();
        assert_eq!(policy.phases(), Phases::NONE);
    }

    #[test]
    fn refuses_framing_headers_naming_the_field() {
        let err = build_error(
            &RequestHeadersFactory,
            serde_json::json!({"add": {"Transfer-Encoding": "chunked"}}),
        );
        assert_eq!(err.path.to_string(), "add.Transfer-Encoding");
        assert!(err.message.contains("hop-by-hop"), "{}", err.message);
        let err = build_error(
            &RequestHeadersFactory,
            serde_json::json!({"remove": ["x-a", "content-length"]}),
        );
        assert_eq!(err.path.to_string(), "remove[1]");
    }
}
