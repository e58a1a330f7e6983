//! One API version compiled as far as it can be without knowing the environment, the global
//! policies or the other APIs: its policies, and per route the conditions, hosts, patterns
//! and rewrite. A plan depends only on the API's definition (and the plugin registry), so a
//! [`super::Compiler`] reuses it for as long as the definition does not change.

use std::sync::Arc;

use tollgate_model::{Api, Diagnostic, FieldPath, PathPattern};
use tollgate_plugin_api::RouteInfo;

use super::conditions;
use super::policies::{Built, PolicyBuilder};
use crate::router::{Conditions, MAX_PARAMS};
use crate::{Chain, CompiledRewrite, RouteBlock, RouteSlot};

/// An API version, planned.
pub(super) struct ApiPlan {
    /// Unique among the plans of one compiler: routers built from this plan name it.
    pub(super) id: u64,
    /// The definition it was built from.
    pub(super) api: Arc<Api>,
    /// The API's version, shared by its compiled routes.
    pub(super) version: Arc<str>,
    /// API-scope policies.
    pub(super) policies: Vec<Built>,
    /// Routes, in definition order.
    pub(super) routes: Vec<RoutePlan>,
    /// The distinct chains of the routes, merged with the global policies of generation
    /// `chains_for`: first the API's (shared by the routes without policies of their own),
    /// then one per route with policies.
    pub(super) chains: Vec<Arc<Chain>>,
    pub(super) chains_for: u64,
    /// Per route (same order): its chain in `chains`.
    pub(super) route_chains: Vec<usize>,
    /// The routes with policies of their own (indices in `routes`), in order.
    with_policies: Vec<usize>,
    /// How many path patterns the routes have.
    patterns: usize,
    /// The services the routes use, by configuration index, in order of first use, for the
    /// service names of generation `services_for`.
    pub(super) services: Vec<usize>,
    /// Per route (same order): its service in `services` (`None`: missing, reported).
    pub(super) route_services: Vec<Option<usize>>,
    pub(super) services_for: u64,
    /// Whether a route's service was missing (reported again by every compile).
    missing_services: bool,
    /// The compiled routes' slots (same order), per environment name, handed to every compile
    /// that reuses this plan.
    pub(super) slots: Vec<(String, Vec<Arc<RouteSlot>>)>,
    /// Per environment name: the routes compiled there last, and what they were built from.
    pub(super) blocks: Vec<(String, BlockKey, RouteBlock)>,
}

/// What a plan's block of compiled routes in an environment depends on besides the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BlockKey {
    /// The environment's position.
    pub(super) environment: usize,
    /// Where the plan's chains start in the snapshot's chains.
    pub(super) chain_base: usize,
    /// Per service in [`ApiPlan::services`]: the compiled service in this environment.
    pub(super) services: Vec<Option<usize>>,
}

/// A route, planned.
pub(super) struct RoutePlan {
    /// Index in the API's `routes`.
    pub(super) route: usize,
    pub(super) info: Arc<RouteInfo>,
    /// Route-scope policies.
    pub(super) policies: Vec<Built>,
    pub(super) conditions: Conditions,
    /// `None`: any host.
    pub(super) hosts: Vec<Option<String>>,
    pub(super) patterns: Vec<PatternPlan>,
    pub(super) rewrite: Option<CompiledRewrite>,
}

/// One path pattern of a route, ready for the router.
pub(super) struct PatternPlan {
    pub(super) pattern: PathPattern,
    pub(super) params: Vec<Arc<str>>,
    pub(super) static_prefix: Arc<str>,
    /// Declaration order within the API (the compiler adds the patterns of the APIs before).
    pub(super) order: usize,
}

/// What planning an API found.
pub(super) struct Planned {
    pub(super) plan: ApiPlan,
    /// Whether planning reported an error (such a plan is not kept for reuse).
    pub(super) failed: bool,
}

/// Plans `api` (at `apis[a]`), reporting problems to `errors` and, for policies, to
/// `policies.errors`. Routes naming a service missing from `services` are left out (and
/// reported), as a full compile always did.
pub(super) fn plan_api(
    api: &Arc<Api>,
    a: usize,
    id: u64,
    services: &foldhash::HashMap<&str, usize>,
    policies: &mut PolicyBuilder<'_>,
    errors: &mut Vec<Diagnostic>,
) -> Planned {
    let before = (errors.len(), policies.errors.len());
    let api_path = FieldPath::root().key("apis").index(a);
    let api_policies = policies.build_all(&api.policies, &api_path.key("policies"));
    let api_name: Arc<str> = api.name.as_str().into();
    let mut routes = Vec::with_capacity(api.routes.len());
    let mut order = 0usize;
    for (r, route) in api.routes.iter().enumerate() {
        tollgate_pace::point();
        let at = api_path.key("routes").index(r);
        let route_policies = policies.build_all(&route.policies, &at.key("policies"));
        if !services.contains_key(route.service.as_str()) {
            errors.push(missing_service(a, r, &route.service));
            continue;
        }
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
            let params: Vec<Arc<str>> = pattern.param_names().into_iter().map(Into::into).collect();
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
        routes.push(RoutePlan {
            route: r,
            info: Arc::new(RouteInfo {
                api: api_name.clone(),
                route: route.name.as_str().into(),
                service: route.service.as_str().into(),
            }),
            policies: route_policies,
            conditions,
            hosts,
            patterns,
            rewrite: route.rewrite.as_ref().and_then(CompiledRewrite::new),
        });
    }
    let failed = (errors.len(), policies.errors.len()) != before;
    // The API's chain first, then one per route with policies of its own.
    let with_policies: Vec<usize> = (0..routes.len())
        .filter(|&k| !routes[k].policies.is_empty())
        .collect();
    let mut route_chains = vec![0; routes.len()];
    for (n, &k) in with_policies.iter().enumerate() {
        route_chains[k] = n + 1;
    }
    Planned {
        plan: ApiPlan {
            id,
            api: api.clone(),
            version: api.version.as_str().into(),
            policies: api_policies,
            routes,
            chains: Vec::new(),
            chains_for: 0,
            route_chains,
            with_policies,
            patterns: order,
            services: Vec::new(),
            route_services: Vec::new(),
            services_for: 0,
            missing_services: false,
            slots: Vec::new(),
            blocks: Vec::new(),
        },
        failed,
    }
}

/// The error for route `r` of `apis[a]` naming a service that does not exist.
pub(super) fn missing_service(a: usize, r: usize, service: &str) -> Diagnostic {
    Diagnostic::new(
        FieldPath::root()
            .key("apis")
            .index(a)
            .key("routes")
            .index(r)
            .key("service"),
        format!("no service named {service:?}"),
    )
}

impl tollgate_model::OfApi for ApiPlan {
    fn api(&self) -> &Arc<Api> {
        &self.api
    }
}

impl ApiPlan {
    /// The slots of this plan's routes in `environment`.
    pub(super) fn slots_in(&mut self, environment: &str) -> &[Arc<RouteSlot>] {
        let i = match self.slots.iter().position(|(e, _)| e == environment) {
            Some(i) => i,
            None => {
                self.slots.push((environment.to_owned(), Vec::new()));
                self.slots.len() - 1
            }
        };
        let slots = &mut self.slots[i].1;
        slots.resize_with(self.routes.len(), Default::default);
        slots
    }

    /// Patterns of the routes kept, for the order of the next API's patterns.
    pub(super) fn pattern_count(&self) -> usize {
        self.patterns
    }

    /// Makes the chains current for the global policies `global` of generation `generation`.
    /// Routes without policies of their own share the API's chain, and an API without
    /// policies shares `global_chain`: equal chains, built once.
    pub(super) fn merge_chains(
        &mut self,
        global: &Vec<Built>,
        global_chain: &Arc<Chain>,
        generation: u64,
    ) {
        if self.chains_for == generation && !self.chains.is_empty() {
            return;
        }
        let api_chain = if self.policies.is_empty() {
            global_chain.clone()
        } else {
            Arc::new(super::policies::merge(&[global, &self.policies]))
        };
        let mut chains = Vec::with_capacity(1 + self.with_policies.len());
        chains.push(api_chain);
        for &k in &self.with_policies {
            tollgate_pace::point();
            chains.push(Arc::new(super::policies::merge(&[
                global,
                &self.policies,
                &self.routes[k].policies,
            ])));
        }
        self.chains = chains;
        self.chains_for = generation;
    }

    /// Looks up the routes' services by name (`index`, configuration indices, for the service
    /// names of generation `generation`) unless that was done for this generation, and
    /// reports a route whose service is missing (only a reused plan can have one: the service
    /// was deleted since it was planned). `a` is the API's index.
    pub(super) fn resolve_services(
        &mut self,
        index: &foldhash::HashMap<&str, usize>,
        generation: u64,
        a: usize,
        errors: &mut Vec<Diagnostic>,
    ) {
        // A missing service is reported by every compile, as a full compile would.
        if self.services_for == generation && !self.missing_services {
            return;
        }
        self.missing_services = false;
        self.services.clear();
        self.route_services.clear();
        for route in &self.routes {
            tollgate_pace::point();
            let name = &self.api.routes[route.route].service;
            let Some(&service) = index.get(name.as_str()) else {
                errors.push(missing_service(a, route.route, name));
                self.route_services.push(None);
                self.missing_services = true;
                continue;
            };
            let position = match self.services.iter().position(|&s| s == service) {
                Some(p) => p,
                None => {
                    self.services.push(service);
                    self.services.len() - 1
                }
            };
            self.route_services.push(Some(position));
        }
        self.services_for = generation;
    }

    /// The block of routes compiled for `environment` from `key`, if the last one was.
    pub(super) fn block_in(&self, environment: &str, key: &BlockKey) -> Option<RouteBlock> {
        self.blocks
            .iter()
            .find(|(e, k, _)| e == environment && k == key)
            .map(|(_, _, block)| block.clone())
    }

    /// Keeps `block` as this plan's routes in `environment` (`None`: keeps none there).
    pub(super) fn keep_block(&mut self, environment: &str, kept: Option<(BlockKey, RouteBlock)>) {
        self.blocks.retain(|(e, _, _)| e != environment);
        if let Some((key, block)) = kept {
            self.blocks.push((environment.to_owned(), key, block));
        }
    }
}
