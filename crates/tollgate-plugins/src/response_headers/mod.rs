//! `response-headers`: edits the response head sent to the client (response phase,
//! priority 700).
//!
//! ```yaml
//! - name: response-headers
//!   config:
//!     remove: [server, x-powered-by]
//!     set: { strict-transport-security: "max-age=63072000" }
//!     add: { set-cookie: ["a=1; Secure", "b=2; Secure"] }
//! ```
//!
//! Applied `remove` → `set` (replace) → `add` (append) to every response: from the upstream,
//! from a policy (mock, CORS preflight) or from an error. Names and values are validated and
//! parsed when the policy is built; hop-by-hop and framing headers are refused (see
//! [`HeaderEdits`]). Policies with a higher priority (such as `cors`) run their response hook
//! later, so they see — and win over — these edits.

use std::sync::Arc;

use http::response;
use tollgate_plugin_api::{
    Phases, Policy, PolicyConfigError, PolicyFactory, RequestCtx, parse_policy_config,
};

use crate::header_edit::CompiledEdits;
pub use crate::header_edit::{HeaderEdits, HeaderValues};

/// The plugin name in configuration.
pub const NAME: &str = "response-headers";
/// Default chain position: just below `request-headers`.
pub const PRIORITY: i32 = 700;

/// Configuration: see [`HeaderEdits`].
pub type Config = HeaderEdits;

/// Builds [`ResponseHeaders`] policies.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseHeadersFactory;

impl PolicyFactory for ResponseHeadersFactory {
    fn name(&self) -> &'static str {
        NAME
    }

    fn priority(&self) -> i32 {
        PRIORITY
    }

    fn build(&self, config: &serde_json::Value) -> Result<Arc<dyn Policy>, PolicyConfigError> {
        Ok(Arc::new(ResponseHeaders::new(&parse_policy_config(
            config,
        )?)?))
    }
}

/// Edits the response head.
#[derive(Debug, Clone)]
pub struct ResponseHeaders {
    edits: CompiledEdits,
}

impl ResponseHeaders {
    /// Validates `config` and precompiles the edits.
    pub fn new(config: &Config) -> Result<Self, PolicyConfigError> {
        Ok(Self {
            edits: CompiledEdits::compile(config)?,
        })
    }
}

impl Policy for ResponseHeaders {
    fn name(&self) -> &'static str {
        NAME
    }

    fn phases(&self) -> Phases {
        if self.edits.is_empty() {
            Phases::NONE
        } else {
            Phases::RESPONSE
        }
    }

    fn response(&self, _cx: &mut RequestCtx, res: &mut response::Parts) {
        self.edits.apply(&mut res.headers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{build_error, ctx, response, values};

    #[test]
    fn edits_the_response_head() {
        let policy = ResponseHeadersFactory
            .build(&serde_json::json!({
                "remove": ["Server"],
                "set": {"cache-control": "no-store"},
                "add": {"set-cookie": ["a=1", "b=2"]},
            }))
            .unwrap();
        assert_eq!(policy.phases(), Phases::RESPONSE);
        let mut res = response(
            200,
            &[
                ("server", "backend/1.0"),
                ("cache-control", "max-age=60"),
                ("set-cookie", "s=0"),
            ],
        );
        policy.response(&mut ctx(), &mut res);
        assert!(res.headers.get("server").is_none());
        assert_eq!(values(&res.headers, "cache-control"), ["no-store"]);
        assert_eq!(values(&res.headers, "set-cookie"), ["s=0", "a=1", "b=2"]);
    }

    #[test]
    fn refuses_hop_by_hop_headers_naming_the_field() {
        let err = build_error(
            &ResponseHeadersFactory,
            serde_json::json!({"set": {"connection": "close"}}),
        );
        assert_eq!(err.path.to_string(), "set.connection");
        assert!(err.message.contains("cannot change"), "{}", err.message);
    }
}
