//! The compiler that reuses: what a snapshot is built from, kept between compiles.
//!
//! An admin write usually changes one object, yet the snapshot is rebuilt whole (it is
//! immutable). A [`Compiler`] keeps the parts of its last compile that are pure functions of
//! part of the configuration, and reuses each one when its inputs are unchanged:
//!
//! | part | reused while unchanged |
//! |---|---|
//! | API plan (policies, conditions, patterns, rewrites) | the API version's definition |
//! | the plan's routes' services (by configuration index) | the service names |
//! | global policies | `policies` |
//! | an API's chains (one, plus one per route with policies) | the API's plan and the global policies |
//! | an API's block of compiled routes in an environment | the plan, the compiled services its routes use there, where its chains start in the chain table |
//! | an environment's router | the plans of the APIs live in it, their blocks, their positions |
//!
//! Routes name their chain by index in the snapshot's chain table, so a global policy change
//! rebuilds the chains and keeps every block of routes and every router. Everything else
//! (services, whose pools the previous snapshot hands over; environments; the chain table;
//! TLS) is rebuilt each time: it is small. A compile reports exactly the problems a compile
//! from scratch reports, in the same order: plans and blocks that had problems are never
//! kept, so reused parts have none to report.

use std::sync::Arc;

use tollgate_model::{Config, Diagnostic, FieldPath, Kept, PolicySpec};

use super::plan::{ApiPlan, BlockKey, plan_api};
use super::policies::{Built, PolicyBuilder, merge};
use super::services::Services;
use super::{CompileOptions, environment_header, server_settings};
use crate::environments::Binding;
use crate::router::Entry;
use crate::{
    Chain, CompiledEnvironment, CompiledRoute, DeprecationHeaders, Environments, RouteBlock,
    RouteId, Router, Routes, Snapshot, TlsSettings,
};

/// Compiles configurations into snapshots, reusing the unchanged parts of its previous
/// compile. Use one compiler with one plugin registry (plans hold built policies).
#[derive(Default)]
pub struct Compiler {
    /// Plans in the order of the last compile's APIs (none for one that had problems).
    plans: Kept<ApiPlan>,
    global: Option<GlobalPolicies>,
    /// By environment position.
    routers: Vec<CachedRouter>,
    /// The service names of the last compile, and their generation: plans look routes'
    /// services up again when it changes.
    service_names: Vec<String>,
    services_generation: u64,
    /// Last plan id or generation handed out.
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

/// What an environment's router was built from: per API version live in it, (plan id, its
/// block in the snapshot's routes, order of its first pattern).
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

    /// The generation of `config`'s service names (a new one when they differ from the last
    /// compile's).
    fn services_generation(&mut self, config: &Config) -> u64 {
        let same = self.services_generation != 0
            && self.service_names.len() == config.services.len()
            && self
                .service_names
                .iter()
                .zip(&config.services)
                .all(|(a, b)| *a == b.name);
        if !same {
            self.service_names = config.services.iter().map(|s| s.name.clone()).collect();
            self.services_generation = self.next_id();
        }
        self.services_generation
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
        // Looked up once per route of a new plan: a fast hash (names come from the
        // configuration).
        let service_index: foldhash::HashMap<&str, usize> = config
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let services_generation = self.services_generation(config);
        let mut previous = std::mem::take(&mut self.plans);
        let mut plans: Vec<(ApiPlan, bool)> = Vec::with_capacity(config.apis.len());
        for (a, api) in config.apis.iter().enumerate() {
            // Comparing a definition with the planned one (unless it is the same one) walks
            // all its routes.
            tollgate_pace::check();
            let (mut plan, failed) = match previous.take(a, api) {
                Some(mut plan) => {
                    // The next configuration shares this one's definition when unchanged.
                    plan.api = api.clone();
                    (plan, false)
                }
                None => {
                    let id = self.next_id();
                    let planned = plan_api(api, a, id, &service_index, &mut policies, &mut errors);
                    (planned.plan, planned.failed)
                }
            };
            plan.resolve_services(&service_index, services_generation, a, &mut errors);
            plan.merge_chains(&global, &global_chain, generation);
            plans.push((plan, failed));
        }
        drop(previous);
        // Consumer policies are typed and checked now; they join the chains of requests once
        // an authentication policy identifies the consumer. This loop and the per-API loops
        // below are paced too: without their points, the rest of a compile at 10,000 routes
        // ran 110-160 µs of CPU past the pace's 100 µs slice.
        for (i, consumer) in config.consumers.iter().enumerate() {
            tollgate_pace::point();
            let at = FieldPath::root().key("consumers").index(i).key("policies");
            let _checked = policies.build_all(&consumer.policies, &at);
        }
        errors.extend(policies.errors);

        // Pattern order continues from one API to the next, as declared; so do chains.
        let mut order_base = Vec::with_capacity(plans.len());
        let mut chain_base = Vec::with_capacity(plans.len());
        let mut patterns = 0usize;
        let mut chains = Vec::with_capacity(plans.iter().map(|(p, _)| p.chains.len()).sum());
        for (plan, _) in &plans {
            tollgate_pace::point();
            order_base.push(patterns);
            patterns += plan.pattern_count();
            chain_base.push(chains.len());
            chains.extend(plan.chains.iter().cloned());
        }

        let envs = config.effective_environments();
        let mut blocks: Vec<RouteBlock> = Vec::new();
        let mut compiled = Vec::with_capacity(envs.len());
        let mut bindings = Vec::with_capacity(envs.len());
        let mut routers = Vec::with_capacity(envs.len());
        for (e, env) in envs.iter().enumerate() {
            let mut key: RouterKey = Vec::new();
            let mut placed: Vec<Placed> = Vec::new();
            for (p, (plan, _)) in plans.iter_mut().enumerate() {
                tollgate_pace::point();
                let api = &config.apis[p];
                if !api.is_published_in(&env.name) {
                    continue;
                }
                let block_key = BlockKey {
                    environment: e,
                    chain_base: chain_base[p],
                    services: plan
                        .services
                        .iter()
                        .map(|&s| services.for_environment(s, e, env, &mut errors))
                        .collect(),
                };
                let (block, skipped) = match plan.block_in(&env.name, &block_key) {
                    Some(block) => (block, None),
                    None => {
                        let built =
                            build_block(api, p, plan, e, &env.name, &block_key, &mut errors);
                        let kept = built.complete.then(|| (block_key, built.block.clone()));
                        plan.keep_block(&env.name, kept);
                        let skipped = (!built.complete).then_some(built.indices);
                        (built.block, skipped)
                    }
                };
                key.push((plan.id, blocks.len(), order_base[p]));
                placed.push(Placed {
                    plan: p,
                    block: blocks.len(),
                    skipped,
                });
                blocks.push(block);
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
        self.plans = Kept::new(
            plans
                .into_iter()
                .map(|(plan, failed)| (!failed).then_some(plan))
                .collect(),
        );
        if !errors.is_empty() {
            self.routers.clear();
            return Err(errors);
        }
        self.routers = routers;
        Ok(Snapshot {
            revision: opts.revision,
            server,
            environments,
            routes: Routes::from_blocks(blocks),
            chains,
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

/// Where a live API version's routes went in a snapshot.
struct Placed {
    /// The plan.
    plan: usize,
    /// Its block.
    block: usize,
    /// Per route of the plan: its place in the block, when some routes were left out (after
    /// an error); `None`: every route, in order.
    skipped: Option<Vec<Option<usize>>>,
}

/// A plan's routes in one environment, compiled.
struct BuiltBlock {
    block: RouteBlock,
    /// Per route of the plan: its place in the block (`None`: left out, reported).
    indices: Vec<Option<usize>>,
    /// Whether every route is in the block and building it reported nothing: only such a
    /// block is reused (a reused block reports nothing again).
    complete: bool,
}

/// Compiles the routes of `plan` (of `config.apis[p]`) for environment `e` from `key`.
fn build_block(
    api: &tollgate_model::Api,
    p: usize,
    plan: &mut ApiPlan,
    e: usize,
    environment: &str,
    key: &BlockKey,
    errors: &mut Vec<Diagnostic>,
) -> BuiltBlock {
    let before = errors.len();
    let slots = plan.slots_in(environment).to_vec();
    // Built with the first route that has a service, as a full compile did.
    let mut deprecation: Option<Option<Arc<DeprecationHeaders>>> = None;
    let mut routes = Vec::with_capacity(plan.routes.len());
    let mut indices = Vec::with_capacity(plan.routes.len());
    for (k, route) in plan.routes.iter().enumerate() {
        tollgate_pace::point();
        let Some(service) = plan.route_services[k].and_then(|s| key.services[s]) else {
            indices.push(None);
            continue;
        };
        let deprecation = deprecation
            .get_or_insert_with(|| {
                let d = api.deprecation.get(environment)?;
                DeprecationHeaders::new(d)
                    .map_err(|message| {
                        errors.push(Diagnostic::new(
                            FieldPath::root()
                                .key("apis")
                                .index(p)
                                .key("deprecation")
                                .key(environment)
                                .key("link"),
                            message,
                        ));
                    })
                    .ok()
                    .map(Arc::new)
            })
            .clone();
        indices.push(Some(routes.len()));
        routes.push(CompiledRoute {
            info: route.info.clone(),
            api_version: plan.version.clone(),
            environment: e,
            service,
            deprecation,
            rewrite: route.rewrite.clone(),
            host_header: api.routes[route.route].host_header,
            chain: key.chain_base + plan.route_chains[k],
            slot: slots[k].clone(),
        });
    }
    let complete = routes.len() == plan.routes.len() && errors.len() == before;
    BuiltBlock {
        block: routes.into(),
        indices,
        complete,
    }
}

/// An environment's router from the plans of the APIs live in it.
fn build_router(
    config: &Config,
    plans: &[(ApiPlan, bool)],
    placed: &[Placed],
    order_base: &[usize],
) -> Router {
    let mut router = Router::default();
    for placed in placed {
        let (p, plan) = (placed.plan, &plans[placed.plan].0);
        let api = &config.apis[p];
        for (k, route) in plan.routes.iter().enumerate() {
            tollgate_pace::point();
            let index = match &placed.skipped {
                None => Some(k),
                Some(indices) => indices[k],
            };
            let Some(index) = index else { continue };
            let id = RouteId::new(placed.block, index);
            let priority = api.routes[route.route].priority;
            for pattern in &route.patterns {
                for host in &route.hosts {
                    router.insert(
                        host.as_deref(),
                        &pattern.pattern,
                        Entry {
                            route: id,
                            conditions: route.conditions.clone(),
                            params: pattern.params.clone(),
                            static_prefix: pattern.static_prefix.clone(),
                            order: order_base[p] + pattern.order,
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
