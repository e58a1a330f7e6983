//! Model → snapshot.
//!
//! Policies, conditions and path patterns are built once per route. Then, for each
//! environment, the routes of the API versions live in it are compiled against the services
//! as that environment resolves them ([`services`]) and inserted into the environment's
//! router. A route live in several environments therefore has one [`CompiledRoute`] per
//! environment, sharing its policy chain.

mod policies;
mod services;

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderName, Method};
use tollgate_model::{Config, Diagnostic, FieldPath, PathPattern};
use tollgate_plugin_api::{Registry, RouteInfo};

use self::policies::{PolicyBuilder, merge};
use self::services::Services;
use crate::environments::Binding;
use crate::router::{Conditions, Entry, MAX_PARAMS, ValueTest};
use crate::{
    Chain, CompiledEnvironment, CompiledRewrite, CompiledRoute, DeprecationHeaders, Environments,
    Router, ServerSettings, Snapshot, TlsSettings,
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

/// A route compiled as far as it can be without knowing the environment.
struct RoutePlan {
    api: usize,
    route: usize,
    info: Arc<RouteInfo>,
    chain: Arc<Chain>,
    /// Index into `config.services`.
    service: usize,
    conditions: Conditions,
    /// `None`: any host.
    hosts: Vec<Option<String>>,
    patterns: Vec<PatternPlan>,
}

/// One path pattern of a route, ready for the router.
struct PatternPlan {
    pattern: PathPattern,
    params: Vec<Arc<str>>,
    static_prefix: Arc<str>,
    /// Declaration order, for ties.
    order: usize,
}

/// Compiles a validated configuration. Reads certificate and CA files. Every problem is
/// reported with its field path; nothing is published on error.
pub fn compile(config: &Config, opts: &CompileOptions<'_>) -> Result<Snapshot, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let server = server_settings(config, &mut errors);
    let environment_header = environment_header(config, &mut errors);
    let mut services = Services::new(config, opts, &mut errors);
    let mut policies = PolicyBuilder {
        registry: opts.registry,
        errors: Vec::new(),
    };
    let global = policies.build_all(&config.policies, &FieldPath::root().key("policies"));
    let plans = plan_routes(config, &mut policies, &global, &mut errors);
    // Consumer policies are typed and checked now; they join the chains of requests once an
    // authentication policy identifies the consumer.
    for (i, consumer) in config.consumers.iter().enumerate() {
        let at = FieldPath::root().key("consumers").index(i).key("policies");
        let _checked = policies.build_all(&consumer.policies, &at);
    }
    errors.extend(policies.errors);

    let envs = config.effective_environments();
    let mut routes = Vec::new();
    let mut compiled = Vec::with_capacity(envs.len());
    let mut bindings = Vec::with_capacity(envs.len());
    for (e, env) in envs.iter().enumerate() {
        let mut router = Router::default();
        let mut deprecations: HashMap<usize, Option<Arc<DeprecationHeaders>>> = HashMap::new();
        for plan in &plans {
            let api = &config.apis[plan.api];
            if !api.is_published_in(&env.name) {
                continue;
            }
            let Some(service) = services.for_environment(plan.service, e, env, &mut errors) else {
                continue;
            };
            let deprecation = deprecations
                .entry(plan.api)
                .or_insert_with(|| {
                    let d = api.deprecation.get(&env.name)?;
                    DeprecationHeaders::new(d)
                        .map_err(|message| {
                            errors.push(Diagnostic::new(
                                FieldPath::root()
                                    .key("apis")
                                    .index(plan.api)
                                    .key("deprecation")
                                    .key(env.name.as_str())
                                    .key("link"),
                                message,
                            ));
                        })
                        .ok()
                        .map(Arc::new)
                })
                .clone();
            let index = routes.len();
            let route = &api.routes[plan.route];
            routes.push(CompiledRoute {
                info: plan.info.clone(),
                api_version: api.version.as_str().into(),
                environment: e,
                service,
                deprecation,
                rewrite: route.rewrite.as_ref().and_then(CompiledRewrite::new),
                host_header: route.host_header,
                chain: plan.chain.clone(),
            });
            for p in &plan.patterns {
                for host in &plan.hosts {
                    router.insert(
                        host.as_deref(),
                        &p.pattern,
                        Entry {
                            route: index,
                            conditions: plan.conditions.clone(),
                            params: p.params.clone(),
                            static_prefix: p.static_prefix.clone(),
                            order: p.order,
                            priority: route.priority,
                        },
                    );
                }
            }
        }
        router.finish();
        compiled.push(CompiledEnvironment {
            name: env.name.as_str().into(),
            router,
        });
        bindings.push(Binding {
            hosts: env.hosts.clone(),
            header_selection: env.header_selection,
        });
    }
    let environments = Environments::new(compiled, &bindings, environment_header);

    let tls = TlsSettings::load(config).unwrap_or_else(|e| {
        errors.extend(e);
        None
    });

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Snapshot {
        revision: opts.revision,
        server,
        environments,
        routes,
        services: services.compiled,
        fallback_chain: Arc::new(merge(&[&global])),
        tls,
        debug: false,
    })
}

/// Builds every route's policies, conditions and patterns, drafts included (so that their
/// mistakes are found before they are published).
fn plan_routes(
    config: &Config,
    policies: &mut PolicyBuilder<'_>,
    global: &Vec<policies::Built>,
    errors: &mut Vec<Diagnostic>,
) -> Vec<RoutePlan> {
    let service_index: HashMap<&str, usize> = config
        .services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut plans = Vec::new();
    let mut order = 0usize;
    for (a, api) in config.apis.iter().enumerate() {
        let api_path = FieldPath::root().key("apis").index(a);
        let api_policies = policies.build_all(&api.policies, &api_path.key("policies"));
        let api_name: Arc<str> = api.name.as_str().into();
        for (r, route) in api.routes.iter().enumerate() {
            let at = api_path.key("routes").index(r);
            let route_policies = policies.build_all(&route.policies, &at.key("policies"));
            let chain = merge(&[global, &api_policies, &route_policies]);
            let Some(&service) = service_index.get(route.service.as_str()) else {
                errors.push(Diagnostic::new(
                    at.key("service"),
                    format!("no service named {:?}", route.service),
                ));
                continue;
            };
            let conditions = conditions(route, &at, errors);
            let hosts: Vec<Option<String>> = if !route.hosts.is_empty() {
                route.hosts.iter().map(|h| Some(h.clone())).collect()
            } else if !api.hosts.is_empty() {
                api.hosts.iter().map(|h| Some(h.clone())).collect()
            } else {
                vec![None]
            };
            let mut patterns = Vec::with_capacity(route.paths.len());
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
                patterns.push(PatternPlan {
                    pattern,
                    params,
                    static_prefix,
                    order,
                });
                order += 1;
            }
            plans.push(RoutePlan {
                api: a,
                route: r,
                info: Arc::new(RouteInfo {
                    api: api_name.clone(),
                    route: route.name.as_str().into(),
                    service: route.service.as_str().into(),
                }),
                chain: Arc::new(chain),
                service,
                conditions,
                hosts,
                patterns,
            });
        }
    }
    plans
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
mod tests;
