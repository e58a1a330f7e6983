//! The compiler that reuses: what a snapshot is built from, kept between compiles.
//!
//! An admin write usually changes one object, yet the snapshot is rebuilt whole (it is
//! immutable). A [`Compiler`] keeps the parts of its last compile that are pure functions of
//! part of the configuration, and reuses each one when its inputs are unchanged:
//!
//! | part | reused while unchanged |
//! |---|---|
//! | API plan (policies, conditions, patterns, rewrites) | the API version's definition |
//! | global policies | `policies` |
//! | route chains | the API's plan and the global policies |
//! | an environment's router | the plans of the APIs live in it, their positions |
//!
//! Everything else (services, whose pools the previous snapshot hands over; environments;
//! routes, which point at chains and services; TLS) is rebuilt each time: it is small or
//! cheap. A compile reports exactly the problems a compile from scratch reports, in the same
//! order: plans that had problems are never kept, so reused parts have none to report.

use std::collections::HashMap;
use std::sync::Arc;

use tollgate_model::{Config, Diagnostic, FieldPath, PolicySpec};

use super::plan::{ApiPlan, missing_service, plan_api};
use super::policies::{Built, PolicyBuilder, merge};
use super::services::Services;
use super::{CompileOptions, environment_header, server_settings};
use crate::environments::Binding;
use crate::router::Entry;
use crate::{
    Chain, CompiledEnvironment, CompiledRoute, DeprecationHeaders, Environments, Router, Snapshot,
    TlsSettings,
};

/// Compiles configurations into snapshots, reusing the unchanged parts of its previous
/// compile. Use one compiler with one plugin registry (plans hold built policies).
#[derive(Default)]
pub struct Compiler {
    /// Plans by (API name, version).
    plans: HashMap<(String, String), ApiPlan>,
    global: Option<GlobalPolicies>,
    /// By environment position.
    routers: Vec<CachedRouter>,
    /// Last plan id or policy generation handed out.
    last_id: u64,
}

impl std::fmt::Debug for Compiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiler")
            .field("plans", &self.plans.len())
            .field("routers", &self.routers.len())
            .finish_non_exhaustive()
    }
}

struct GlobalPolicies {
    specs: Vec<PolicySpec>,
    built: Vec<Built>,
    chain: Arc<Chain>,
    generation: u64,
}

/// What an environment's router was built from: per API version live in it, (plan id, index
/// of its first route in the snapshot's routes, order of its first pattern).
type RouterKey = Vec<(u64, usize, usize)>;

struct CachedRouter {
    environment: String,
    key: RouterKey,
    router: Arc<Router>,
}

impl Compiler {
    fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// Compiles `config` as [`super::compile`] would, reusing what did not change since this
    /// compiler's previous compile. Reads certificate and CA files.
    pub fn compile(
        &mut self,
        config: &Config,
        opts: &CompileOptions<'_>,
    ) -> Result<Snapshot, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        let server = server_settings(config, &mut errors);
        let environment_header = environment_header(config, &mut errors);
        let mut services = Services::new(config, opts, &mut errors);
        let mut policies = PolicyBuilder {
            registry: opts.registry,
            errors: Vec::new(),
        };
        let (global, global_chain, generation) =
            self.global_policies(&config.policies, &mut policies);

        // Plans, in configuration order: reused when the definition is unchanged.
        // Looked up once per route: a fast hash (names come from the configuration).
        let service_index: foldhash::HashMap<&str, usize> = config
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let mut previous = std::mem::take(&mut self.plans);
        let mut plans: Vec<(ApiPlan, bool)> = Vec::with_capacity(config.apis.len());
        // Per plan, per kept route: the service's configuration index (`None`: missing).
        let mut route_services: Vec<Vec<Option<usize>>> = Vec::with_capacity(config.apis.len());
        for (a, api) in config.apis.iter().enumerate() {
            // Comparing a definition with the planned one walks all its routes.
            tollgate_pace::check();
            let key = (api.name.clone(), api.version.clone());
            let (mut plan, failed) = match previous.remove(&key) {
                Some(plan) if plan.api == *api => (plan, false),
                _ => {
                    let id = self.next_id();
                    let planned = plan_api(api, a, id, &service_index, &mut policies, &mut errors);
                    (planned.plan, planned.failed)
                }
            };
            let mut resolved = Vec::with_capacity(plan.routes.len());
            for route in &plan.routes {
                tollgate_pace::point();
                let name = &api.routes[route.route].service;
                let index = service_index.get(name.as_str()).copied();
                if index.is_none() {
                    // Only a reused plan can get here: the service was deleted since.
                    errors.push(missing_service(a, route.route, name));
                }
                resolved.push(index);
            }
            plan.merge_chains(&global, &global_chain, generation);
            route_services.push(resolved);
            plans.push((plan, failed));
        }
        // Consumer policies are typed and checked now; they join the chains of requests once
        // an authentication policy identifies the consumer.
        for (i, consumer) in config.consumers.iter().enumerate() {
            let at = FieldPath::root().key("consumers").index(i).key("policies");
            let _checked = policies.build_all(&consumer.policies, &at);
        }
        errors.extend(policies.errors);

        // Pattern order continues from one API to the next, as declared.
        let mut order_base = Vec::with_capacity(plans.len());
        let mut patterns = 0usize;
        for (plan, _) in &plans {
            order_base.push(patterns);
            patterns += plan.pattern_count();
        }

        let envs = config.effective_environments();
        // Room for every route once (each environment adds the routes live in it).
        let mut routes = Vec::with_capacity(plans.iter().map(|(p, _)| p.routes.len()).sum());
        let mut compiled = Vec::with_capacity(envs.len());
        let mut bindings = Vec::with_capacity(envs.len());
        let mut routers = Vec::with_capacity(envs.len());
        for (e, env) in envs.iter().enumerate() {
            let mut key: RouterKey = Vec::new();
            // Where each live API's routes went: (plan, routes indices).
            let mut placed: Vec<(usize, Vec<Option<usize>>)> = Vec::new();
            for (p, (plan, _)) in plans.iter_mut().enumerate() {
                let api = &config.apis[p];
                if !api.is_published_in(&env.name) {
                    continue;
                }
                let slots = plan.slots_in(&env.name).to_vec();
                // Built with the first route that has a service, as a full compile did.
                let mut deprecation: Option<Option<Arc<DeprecationHeaders>>> = None;
                key.push((plan.id, routes.len(), order_base[p]));
                let mut indices = Vec::with_capacity(plan.routes.len());
                for (k, route) in plan.routes.iter().enumerate() {
                    tollgate_pace::point();
                    let Some(service) = route_services[p][k]
                        .and_then(|s| services.for_environment(s, e, env, &mut errors))
                    else {
                        indices.push(None);
                        continue;
                    };
                    let deprecation = deprecation
                        .get_or_insert_with(|| {
                            let d = api.deprecation.get(&env.name)?;
                            DeprecationHeaders::new(d)
                                .map_err(|message| {
                                    errors.push(Diagnostic::new(
                                        FieldPath::root()
                                            .key("apis")
                                            .index(p)
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
                    indices.push(Some(routes.len()));
                    let definition = &api.routes[route.route];
                    routes.push(CompiledRoute {
                        info: route.info.clone(),
                        api_version: plan.version.clone(),
                        environment: e,
                        service,
                        deprecation,
                        rewrite: route.rewrite.clone(),
                        host_header: definition.host_header,
                        chain: plan.chains[k].clone(),
                        slot: slots[k].clone(),
                    });
                }
                placed.push((p, indices));
            }
            let router = match self.routers.get(e) {
                Some(cached) if cached.environment == env.name && cached.key == key => {
                    cached.router.clone()
                }
                _ => Arc::new(build_router(config, &plans, &placed, &order_base)),
            };
            routers.push(CachedRouter {
                environment: env.name.clone(),
                key,
                router: router.clone(),
            });
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

        // Keep what is reusable: plans without problems; routers only from a good compile
        // (a failed one may have left routes out).
        for (plan, failed) in plans {
            if !failed {
                let key = (plan.api.name.clone(), plan.api.version.clone());
                self.plans.insert(key, plan);
            }
        }
        if !errors.is_empty() {
            self.routers.clear();
            return Err(errors);
        }
        self.routers = routers;
        Ok(Snapshot {
            revision: opts.revision,
            server,
            environments,
            routes,
            services: services.compiled,
            fallback_chain: global_chain,
            tls,
            debug: false,
        })
    }

    /// The global policies (built, merged, generation), rebuilt only when their
    /// specification changed. Kept only when they built without problems.
    fn global_policies(
        &mut self,
        specs: &[PolicySpec],
        policies: &mut PolicyBuilder<'_>,
    ) -> (Vec<Built>, Arc<Chain>, u64) {
        if let Some(global) = &self.global
            && global.specs == specs
        {
            return (
                global.built.clone(),
                global.chain.clone(),
                global.generation,
            );
        }
        let before = policies.errors.len();
        let built = policies.build_all(specs, &FieldPath::root().key("policies"));
        let chain = Arc::new(merge(&[&built]));
        let generation = self.next_id();
        self.global = (policies.errors.len() == before).then(|| GlobalPolicies {
            specs: specs.to_vec(),
            built: built.clone(),
            chain: chain.clone(),
            generation,
        });
        (built, chain, generation)
    }
}

/// An environment's router from the plans of the APIs live in it.
fn build_router(
    config: &Config,
    plans: &[(ApiPlan, bool)],
    placed: &[(usize, Vec<Option<usize>>)],
    order_base: &[usize],
) -> Router {
    let mut router = Router::default();
    for (p, indices) in placed {
        let plan = &plans[*p].0;
        let api = &config.apis[*p];
        for (route, index) in plan.routes.iter().zip(indices) {
            tollgate_pace::point();
            let Some(index) = *index else { continue };
            let priority = api.routes[route.route].priority;
            for pattern in &route.patterns {
                for host in &route.hosts {
                    router.insert(
                        host.as_deref(),
                        &pattern.pattern,
                        Entry {
                            route: index,
                            conditions: route.conditions.clone(),
                            params: pattern.params.clone(),
                            static_prefix: pattern.static_prefix.clone(),
                            order: order_base[*p] + pattern.order,
                            priority,
                        },
                    );
                }
            }
        }
    }
    router.finish();
    router
}
