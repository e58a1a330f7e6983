//! Model → snapshot.
//!
//! Policies, conditions and path patterns are built once per route, in a [`plan`] per API
//! version. Then, for each environment, the routes of the API versions live in it are
//! compiled against the services as that environment resolves them ([`services`]) and
//! inserted into the environment's router. A route live in several environments therefore has
//! one [`crate::CompiledRoute`] per environment, sharing its policy chain.
//!
//! A [`Compiler`] keeps the plans, the global policies and the routers of its last compile
//! and reuses what the next configuration did not change; [`compile`] is a compiler with
//! nothing to reuse, so both take the same path.

mod compiler;
mod plan;
mod policies;
mod services;

use http::{HeaderName, Method};
use tollgate_model::{Config, Diagnostic, FieldPath};
use tollgate_plugin_api::Registry;

pub use self::compiler::Compiler;
use crate::router::{Conditions, ValueTest};
use crate::{ServerSettings, Snapshot};

/// What compiling needs besides the configuration.
#[derive(Debug, Clone)]
pub struct CompileOptions<'a> {
    /// Known plugins.
    pub registry: &'a Registry,
    /// The snapshot being replaced, whose unchanged upstream pools are reused.
    pub previous: Option<&'a Snapshot>,
    /// Number of proxy workers (one upstream client per worker and service).
    pub workers: usize,
    /// Revision number of the new snapshot.
    pub revision: u64,
}

/// Compiles a validated configuration from scratch. Reads certificate and CA files. Every
/// problem is reported with its field path; nothing is published on error.
pub fn compile(config: &Config, opts: &CompileOptions<'_>) -> Result<Snapshot, Vec<Diagnostic>> {
    Compiler::default().compile(config, opts)
}

fn server_settings(config: &Config, errors: &mut Vec<Diagnostic>) -> ServerSettings {
    let s = &config.server;
    let request_id_header =
        HeaderName::from_bytes(s.request_id.header.as_bytes()).unwrap_or_else(|_| {
            errors.push(Diagnostic::new(
                FieldPath::root()
                    .key("server")
                    .key("request_id")
                    .key("header"),
                format!("{:?} is not a valid header name", s.request_id.header),
            ));
            HeaderName::from_static("x-request-id")
        });
    ServerSettings {
        timeouts: s.timeouts.clone(),
        limits: s.limits.clone(),
        trusted_proxies: s.trusted_proxies.clone(),
        path_normalization: s.path_normalization.clone(),
        request_id_header,
        trust_request_id: s.request_id.trust_incoming,
        access_log: s.access_log.clone(),
    }
}

fn environment_header(config: &Config, errors: &mut Vec<Diagnostic>) -> HeaderName {
    let name = &config.server.environment_header.0;
    HeaderName::from_bytes(name.as_bytes()).unwrap_or_else(|_| {
        errors.push(Diagnostic::new(
            FieldPath::root().key("server").key("environment_header"),
            format!("{name:?} is not a valid header name"),
        ));
        HeaderName::from_static("x-tollgate-env")
    })
}

fn conditions(
    route: &tollgate_model::Route,
    at: &FieldPath,
    errors: &mut Vec<Diagnostic>,
) -> Conditions {
    let mut c = Conditions::default();
    for m in &route.methods {
        match Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
            Ok(m) => c.methods.push(m),
            Err(_) => errors.push(Diagnostic::new(
                at.key("methods"),
                format!("{m:?} is not a method"),
            )),
        }
    }
    let test = |value: &Option<String>, regex: &Option<String>, present: Option<bool>| {
        if let Some(v) = value {
            Some(ValueTest::Equals(v.clone()))
        } else if let Some(r) = regex {
            regex::Regex::new(&format!("^(?:{r})$"))
                .ok()
                .map(ValueTest::Regex)
        } else {
            present.map(ValueTest::Present)
        }
    };
    for (i, h) in route.headers.iter().enumerate() {
        match (
            HeaderName::from_bytes(h.name.as_bytes()),
            test(&h.value, &h.regex, h.present),
        ) {
            (Ok(name), Some(t)) => c.headers.push((name, t)),
            _ => errors.push(Diagnostic::new(
                at.key("headers").index(i),
                "invalid header condition",
            )),
        }
    }
    for (i, q) in route.query.iter().enumerate() {
        match test(&q.value, &q.regex, q.present) {
            Some(t) => c.query.push((q.name.clone(), t)),
            None => errors.push(Diagnostic::new(
                at.key("query").index(i),
                "invalid query condition",
            )),
        }
    }
    c
}

#[cfg(test)]
mod reuse_tests;
#[cfg(test)]
mod tests;
