//! Tollgate's built-in policies: one module per plugin, each with its typed `Config` (strict
//! serde, validated when built, errors naming the field), its factory, its policy and hooks, and
//! its tests — and [`registry`], the one explicit list of them the binary is built with. This
//! crate depends on `tollgate-plugin-api` only, never on the proxy: a policy sees the request
//! head, the response head and the [`RequestCtx`](tollgate_plugin_api::RequestCtx), nothing else.
//!
//! | plugin | phases | priority | what it does |
//! |---|---|---:|---|
//! | [`cors`] | access, response | 2000 | answers preflights, adds CORS headers to responses |
//! | [`request_size_limit`] | access | 1500 | 413 on a declared oversize body, else a streaming limit |
//! | [`request_headers`] | upstream | 800 | remove / set / add headers sent upstream |
//! | [`response_headers`] | response | 700 | remove / set / add headers sent to the client |
//! | [`mock`] | access | 100 | answers with a fixed response |
//!
//! A higher priority runs earlier in the access phase and later in the response phase (like
//! nested middleware): `cors` comes before everything so a preflight, which browsers send
//! without credentials, is answered before authentication, and its response hook runs last so
//! it has the final say on CORS headers. Priorities between these leave room for
//! authentication and rate limiting (above 800) and for transformations.

mod config;
mod header_edit;
#[cfg(test)]
mod testing;

pub mod cors;
pub mod mock;
pub mod request_headers;
pub mod request_size_limit;
pub mod response_headers;

use std::sync::Arc;

use tollgate_plugin_api::Registry;

/// Every built-in plugin. Adding a plugin means adding its module and one line here.
pub fn registry() -> Registry {
    Registry::new(vec![
        Arc::new(cors::CorsFactory),
        Arc::new(request_size_limit::RequestSizeLimitFactory),
        Arc::new(request_headers::RequestHeadersFactory),
        Arc::new(response_headers::ResponseHeadersFactory),
        Arc::new(mock::MockFactory),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_lists_every_builtin_with_its_documented_priority() {
        let registry = registry();
        let expected = [
            (cors::NAME, 2000),
            (request_size_limit::NAME, 1500),
            (request_headers::NAME, 800),
            (response_headers::NAME, 700),
            (mock::NAME, 100),
        ];
        assert_eq!(
            registry.names(),
            expected.iter().map(|(n, _)| *n).collect::<Vec<_>>()
        );
        for (name, priority) in expected {
            let factory = registry.get(name).unwrap();
            assert_eq!(factory.priority(), priority, "{name}");
        }
    }

    #[test]
    fn every_policy_reports_its_plugin_name() {
        let registry = registry();
        let configs = [
            (cors::NAME, serde_json::json!({"allow_origins": ["*"]})),
            (
                request_size_limit::NAME,
                serde_json::json!({"max_bytes": 10}),
            ),
            (request_headers::NAME, serde_json::json!({})),
            (response_headers::NAME, serde_json::json!({})),
            (mock::NAME, serde_json::json!({})),
        ];
        for (name, config) in configs {
            let policy = registry.get(name).unwrap().build(&config).unwrap();
            assert_eq!(policy.name(), name);
        }
    }
}
