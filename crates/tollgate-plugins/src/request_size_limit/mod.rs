//! `request-size-limit`: bounds the request body (access phase, priority 1500).
//!
//! ```yaml
//! - name: request-size-limit
//!   config:
//!     max_bytes: 1MiB   # or 1048576; units B, KB, MB, GB (×1000), KiB, MiB, GiB (×1024)
//! ```
//!
//! A request whose `Content-Length` exceeds the limit is refused at once with 413
//! `payload_too_large`, before any byte of the body is read (so a client sending
//! `Expect: 100-continue` never uploads it). Every other request — smaller, chunked, HTTP/2
//! without a length — gets the limit through [`RequestCtx::limit_body`], which the proxy
//! enforces while streaming. Runs after `cors` (so preflights are answered first) and before
//! authentication and the rest.

mod size;

use std::sync::Arc;

use http::{StatusCode, header, request};
use serde::Deserialize;
use tollgate_plugin_api::{
    GatewayError, Hook, Outcome, Phases, Policy, PolicyConfigError, PolicyFactory, RequestCtx,
    parse_policy_config,
};

pub use size::ByteSize;

/// The plugin name in configuration.
pub const NAME: &str = "request-size-limit";
/// Default chain position: after `cors`, before authentication.
pub const PRIORITY: i32 = 1500;

/// The limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Most bytes a request body may have.
    pub max_bytes: ByteSize,
}

/// Builds [`RequestSizeLimit`] policies.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestSizeLimitFactory;

impl PolicyFactory for RequestSizeLimitFactory {
    fn name(&self) -> &'static str {
        NAME
    }

    fn priority(&self) -> i32 {
        PRIORITY
    }

    fn build(&self, config: &serde_json::Value) -> Result<Arc<dyn Policy>, PolicyConfigError> {
        Ok(Arc::new(RequestSizeLimit::new(&parse_policy_config(
            config,
        )?)))
    }
}

/// Refuses or bounds request bodies larger than the limit.
#[derive(Debug, Clone, Copy)]
pub struct RequestSizeLimit {
    max_bytes: u64,
}

impl RequestSizeLimit {
    /// A policy enforcing `config`.
    pub fn new(config: &Config) -> Self {
        Self {
            max_bytes: config.max_bytes.0,
        }
    }

    fn check(&self, cx: &mut RequestCtx, req: &request::Parts) -> Outcome {
        // A malformed or repeated Content-Length is hyper's to refuse; here it only means the
        // streaming limit is what protects us.
        let declared = req
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(length) = declared.filter(|&l| l > self.max_bytes) {
            return Outcome::Reject(GatewayError::downstream(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the request body of {length} bytes exceeds the limit of {} bytes",
                    self.max_bytes
                ),
            ));
        }
        cx.limit_body(self.max_bytes);
        Outcome::Continue
    }
}

impl Policy for RequestSizeLimit {
    fn name(&self) -> &'static str {
        NAME
    }

    fn phases(&self) -> Phases {
        Phases::ACCESS
    }

    fn access<'a>(&'a self, cx: &'a mut RequestCtx, req: &'a mut request::Parts) -> Hook<'a> {
        Hook::Ready(self.check(cx, req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{build_error, ctx, ready, request};

    fn policy(config: serde_json::Value) -> Arc<dyn Policy> {
        RequestSizeLimitFactory.build(&config).unwrap()
    }

    #[test]
    fn declared_length_over_the_limit_is_refused_with_413() {
        let policy = policy(serde_json::json!({"max_bytes": "1KiB"}));
        let mut cx = ctx();
        let mut req = request("POST", "/upload", &[("content-length", "1025")]);
        match ready(policy.access(&mut cx, &mut req)) {
            Outcome::Reject(e) => {
                assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
                assert_eq!(e.code, "payload_too_large");
                assert!(e.message.contains("1024"), "{}", e.message);
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        assert_eq!(cx.body_limit, None);
    }

    #[test]
    fn declared_length_at_the_limit_passes_and_sets_the_streaming_limit() {
        let policy = policy(serde_json::json!({"max_bytes": 1024}));
        let mut cx = ctx();
        let mut req = request("POST", "/upload", &[("content-length", "1024")]);
        assert!(matches!(
            ready(policy.access(&mut cx, &mut req)),
            Outcome::Continue
        ));
        assert_eq!(cx.body_limit, Some(1024));
    }

    #[test]
    fn chunked_bodies_get_the_streaming_limit() {
        let policy = policy(serde_json::json!({"max_bytes": "10KB"}));
        let mut cx = ctx();
        let mut req = request("POST", "/upload", &[("transfer-encoding", "chunked")]);
        assert!(matches!(
            ready(policy.access(&mut cx, &mut req)),
            Outcome::Continue
        ));
        assert_eq!(cx.body_limit, Some(10_000));
    }

    #[test]
    fn never_raises_a_tighter_limit_set_before() {
        let policy = policy(serde_json::json!({"max_bytes": 1000}));
        let mut cx = ctx();
        cx.limit_body(10);
        let mut req = request("POST", "/", &[]);
        ready(policy.access(&mut cx, &mut req));
        assert_eq!(cx.body_limit, Some(10));
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = build_error(
            &RequestSizeLimitFactory,
            serde_json::json!({"max_bytes": "1 parsec"}),
        );
        assert_eq!(err.path.to_string(), "max_bytes");
        assert!(err.message.contains("unknown unit"), "{}", err.message);
        let err = build_error(
            &RequestSizeLimitFactory,
            serde_json::json!({"max_bytes": -1}),
        );
        assert_eq!(err.path.to_string(), "max_bytes");
        let err = build_error(&RequestSizeLimitFactory, serde_json::json!({}));
        assert!(err.message.contains("max_bytes"), "{}", err.message);
    }
}
