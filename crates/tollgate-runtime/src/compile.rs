//! Model → snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderName, Method};
use tollgate_model::{Config, Diagnostic, FieldPath, PathPattern, PolicySpec, Service};
use tollgate_plugin_api::{Policy, Registry, RouteInfo};
use tollgate_upstream::{ClientSettings, Target, UpstreamPool};

use crate::router::{Conditions, Entry, MAX_PARAMS, ValueTest};
use crate::{
    Backend, Chain, CompiledRewrite, CompiledRoute, CompiledService, MockResponse, Router,
    ServerSettings, Snapshot, TlsSettings,
};

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

/// Compiles a validated configuration. Reads certificate and CA files. Every problem is
/// reported with its field path; nothing is published on error.
pub fn compile(config: &Config, opts: &CompileOptions<'_>) -> Result<Snapshot, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let server = server_settings(config, &mut errors);
    let services = compile_services(config, opts, &mut errors);
    let service_index: HashMap<&str, usize> = config
        .services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();

    let mut policies = PolicyBuilder {
        registry: opts.registry,
        errors: Vec::new(),
    };
    let global = policies.build_all(&config.policies, &FieldPath::root().key("policies"));

    let mut router = Router::default();
    let mut routes = Vec::new();
    let mut order = 0usize;
    for (a, api) in config.apis.iter().enumerate() {
        let api_path = FieldPath::root().key("apis").index(a);
        let api_policies = policies.build_all(&api.policies, &api_path.key("policies"));
        let api_name: Arc<str> = api.name.as_str().into();
        for (r, route) in api.routes.iter().enumerate() {
            let at = api_path.key("routes").index(r);
            let route_policies = policies.build_all(&route.policies, &at.key("policies"));
            let chain = merge(&[&global, &api_policies, &route_policies]);
            let Some(&service) = service_index.get(route.service.as_str()) else {
                errors.push(Diagnostic::new(
                    at.key("service"),
                    format!("no service named {:?}", route.service),
                ));
                continue;
            };
            let index = routes.len();
            routes.push(CompiledRoute {
                info: Arc::new(RouteInfo {
                    api: api_name.clone(),
                    route: route.name.as_str().into(),
                    service: route.service.as_str().into(),
                }),
                service,
                rewrite: route.rewrite.as_ref().and_then(CompiledRewrite::new),
                host_header: route.host_header,
                chain: Arc::new(chain),
            });
            let conditions = conditions(route, &at, &mut errors);
            let hosts: Vec<Option<&str>> = if !route.hosts.is_empty() {
                route.hosts.iter().map(|h| Some(h.as_str())).collect()
            } else if !api.hosts.is_empty() {
                api.hosts.iter().map(|h| Some(h.as_str())).collect()
            } else {
                vec![None]
            };
            for (p, text) in route.paths.iter().enumerate() {
                let pattern = match PathPattern::parse(text) {
                    Ok(p) => p,
                    Err(e) => {
                        errors.push(Diagnostic::new(at.key("paths").index(p), e.to_string()));
                        continue;
                    }
                };
                let pattern = match &api.base_path {
                    Some(base) => pattern.with_base(base),
                    None => pattern,
                };
                let params: Vec<Arc<str>> =
                    pattern.param_names().into_iter().map(Into::into).collect();
                if params.len() > MAX_PARAMS {
                    errors.push(Diagnostic::new(
                        at.key("paths").index(p),
                        format!("a path may capture at most {MAX_PARAMS} parameters"),
                    ));
                    continue;
                }
                let static_prefix: Arc<str> = pattern.static_prefix().into();
                for host in &hosts {
                    router.insert(
                        *host,
                        &pattern,
                        Entry {
                            route: index,
                            conditions: conditions.clone(),
                            params: params.clone(),
                            static_prefix: static_prefix.clone(),
                            order,
                            priority: route.priority,
                        },
                    );
                }
                order += 1;
            }
        }
    }
    router.finish();
    errors.extend(policies.errors);

    let tls = match TlsSettings::load(&config.tls) {
        Ok(tls) => tls,
        Err((i, message)) => {
            errors.push(Diagnostic::new(
                FieldPath::root().key("tls").key("certificates").index(i),
                message,
            ));
            None
        }
    };

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Snapshot {
        revision: opts.revision,
        server,
        router,
        routes,
        services,
        fallback_chain: Arc::new(merge(&[&global])),
        tls,
    })
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

fn compile_services(
    config: &Config,
    opts: &CompileOptions<'_>,
    errors: &mut Vec<Diagnostic>,
) -> Vec<CompiledService> {
    let mut out = Vec::with_capacity(config.services.len());
    for (i, service) in config.services.iter().enumerate() {
        let at = FieldPath::root().key("services").index(i);
        let backend = match &service.mock {
            Some(mock) => match MockResponse::new(mock) {
                Ok(m) => Backend::Mock(Arc::new(m)),
                Err(e) => {
                    errors.push(Diagnostic::new(at.key("mock"), e));
                    continue;
                }
            },
            None => match pool(service, &at, opts) {
                Ok(pool) => Backend::Pool(pool),
                Err(d) => {
                    errors.push(d);
                    continue;
                }
            },
        };
        out.push(CompiledService {
            name: service.name.as_str().into(),
            backend,
            response_timeout: service.timeouts.response.get(),
        });
    }
    out
}

fn pool(
    service: &Service,
    at: &FieldPath,
    opts: &CompileOptions<'_>,
) -> Result<Arc<UpstreamPool>, Diagnostic> {
    let mut targets = Vec::with_capacity(service.targets.len());
    for (j, t) in service.targets.iter().enumerate() {
        targets.push(
            Target::new(&t.url, t.weight).map_err(|e| {
                Diagnostic::new(at.key("targets").index(j).key("url"), e.to_string())
            })?,
        );
    }
    let ca_pem = match &service.tls.ca {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            Diagnostic::new(
                at.key("tls").key("ca"),
                format!("cannot read CA file {path:?}: {e}"),
            )
        })?),
        None => None,
    };
    let settings = ClientSettings {
        protocol: service.protocol,
        connect_timeout: service.timeouts.connect.get(),
        max_idle_per_target: service.pool.max_idle_per_target,
        idle_timeout: service.pool.idle_timeout.get(),
        ca_pem,
        sni: service.tls.sni.clone(),
        insecure_skip_verify: service.tls.insecure_skip_verify,
    };
    if let Some(previous) = opts.previous
        && let Some(old) = previous.services.iter().find(|s| *s.name == *service.name)
        && let Backend::Pool(pool) = &old.backend
        && pool.same_shape(&targets, &settings)
    {
        return Ok(pool.clone());
    }
    UpstreamPool::new(targets, settings, opts.workers)
        .map(Arc::new)
        .map_err(|e| Diagnostic::new(at.key("tls"), e.to_string()))
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

/// Builds policies, collecting errors with their full field paths.
struct PolicyBuilder<'a> {
    registry: &'a Registry,
    errors: Vec<Diagnostic>,
}

/// A built policy with what ordering and overriding need. `policy` is `None` for a policy
/// attached with `enabled: false`: it switches the same plugin off for this scope, overriding
/// wider scopes.
#[derive(Clone)]
struct Built {
    name: &'static str,
    priority: i32,
    policy: Option<Arc<dyn Policy>>,
}

impl PolicyBuilder<'_> {
    fn build_all(&mut self, specs: &[PolicySpec], at: &FieldPath) -> Vec<Built> {
        let mut out: Vec<Built> = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let path = at.index(i);
            let Some(factory) = self.registry.get(&spec.name) else {
                self.errors.push(Diagnostic::new(
                    path.key("name"),
                    format!(
                        "unknown policy {:?} (known: {})",
                        spec.name,
                        self.registry.names().join(", ")
                    ),
                ));
                continue;
            };
            if out.iter().any(|b| b.name == factory.name()) {
                self.errors.push(Diagnostic::new(
                    path.key("name"),
                    format!("policy {:?} is attached twice at this scope", spec.name),
                ));
                continue;
            }
            // A disabled policy with no configuration just switches the plugin off here; one
            // with a configuration still has it checked, so enabling it later cannot surprise.
            let unconfigured = spec.config.as_object().is_some_and(|o| o.is_empty());
            if !spec.enabled && unconfigured {
                out.push(Built {
                    name: factory.name(),
                    priority: factory.priority(),
                    policy: None,
                });
                continue;
            }
            match factory.build(&spec.config) {
                Ok(policy) => out.push(Built {
                    name: factory.name(),
                    priority: factory.priority(),
                    policy: spec.enabled.then_some(policy),
                }),
                Err(e) => {
                    let mut full = path.key("config");
                    full.0.extend(e.path.0);
                    self.errors.push(Diagnostic::new(full, e.message));
                }
            }
        }
        out
    }
}

/// Merges scopes from widest to narrowest: a plugin at a narrower scope replaces the same
/// plugin at a wider one. The result is ordered by priority (highest first), ties by scope.
fn merge(scopes: &[&Vec<Built>]) -> Chain {
    let mut merged: Vec<Built> = Vec::new();
    for scope in scopes {
        for built in scope.iter() {
            match merged.iter_mut().find(|b| b.name == built.name) {
                Some(existing) => *existing = built.clone(),
                None => merged.push(built.clone()),
            }
        }
    }
    merged.sort_by_key(|b| std::cmp::Reverse(b.priority));
    let ordered: Vec<Arc<dyn Policy>> = merged.into_iter().filter_map(|b| b.policy).collect();
    Chain::from_ordered(&ordered)
}
