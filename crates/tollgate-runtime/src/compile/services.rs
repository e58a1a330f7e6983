//! Services, per environment.
//!
//! A service without `${vars.NAME}` is compiled once and used by every environment. A service
//! whose `targets[].url` or `tls.sni` use variables is compiled for each environment whose
//! live routes use it, with the environment's values; environments resolving it identically
//! share one [`CompiledService`] (and so one pool). Either way, a pool is taken over from the
//! previous snapshot when a service of the same name there has the same shape (targets and
//! client settings), so warm connections survive a reload.

use std::collections::HashMap;
use std::sync::Arc;

use tollgate_model::{Config, Diagnostic, Environment, FieldPath, Service, substitute_vars};
use tollgate_upstream::{ClientSettings, Target, UpstreamPool};

use super::CompileOptions;
use crate::{Backend, CompiledService, MockResponse};

/// Where each configured service went in [`Services::compiled`].
enum Slot {
    /// No variables: compiled once (`None`: it failed, and that was reported).
    Fixed(Option<usize>),
    /// Uses variables: the resolutions compiled so far.
    Variable(Vec<(Service, usize)>),
}

/// The services of a snapshot being compiled.
pub(super) struct Services<'a> {
    config: &'a Config,
    opts: &'a CompileOptions<'a>,
    pub(super) compiled: Vec<CompiledService>,
    slots: Vec<Slot>,
    /// `(service, environment)` → index in `compiled` (`None`: failed, reported).
    resolved: HashMap<(usize, usize), Option<usize>>,
}

impl<'a> Services<'a> {
    /// Compiles every service that uses no variables.
    pub(super) fn new(
        config: &'a Config,
        opts: &'a CompileOptions<'a>,
        errors: &mut Vec<Diagnostic>,
    ) -> Self {
        let mut this = Self {
            config,
            opts,
            compiled: Vec::with_capacity(config.services.len()),
            slots: Vec::with_capacity(config.services.len()),
            resolved: HashMap::new(),
        };
        for (i, service) in config.services.iter().enumerate() {
            let slot = if uses_vars(service) {
                Slot::Variable(Vec::new())
            } else {
                Slot::Fixed(this.add(service, i, None, errors))
            };
            this.slots.push(slot);
        }
        this
    }

    /// The index of service `service` (configuration index) as environment `env` (index
    /// `e`) resolves it, compiling it on first use.
    pub(super) fn for_environment(
        &mut self,
        service: usize,
        e: usize,
        env: &Environment,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<usize> {
        match self.slots.get(service)? {
            Slot::Fixed(index) => return *index,
            Slot::Variable(_) => {}
        }
        if let Some(done) = self.resolved.get(&(service, e)) {
            return *done;
        }
        let config = self.config;
        let index = match resolve(&config.services[service], service, env) {
            Err(d) => {
                errors.push(d);
                None
            }
            Ok(resolved) => {
                let shared = match &self.slots[service] {
                    Slot::Variable(variants) => variants
                        .iter()
                        .find(|(s, _)| *s == resolved)
                        .map(|(_, i)| *i),
                    Slot::Fixed(_) => None,
                };
                match shared {
                    Some(i) => Some(i),
                    None => {
                        let added = self.add(&resolved, service, Some(&env.name), errors);
                        if let (Some(i), Some(Slot::Variable(variants))) =
                            (added, self.slots.get_mut(service))
                        {
                            variants.push((resolved, i));
                        }
                        added
                    }
                }
            }
        };
        self.resolved.insert((service, e), index);
        index
    }

    /// Compiles `service` (configuration index `i`), resolved for environment `env` if given.
    fn add(
        &mut self,
        service: &Service,
        i: usize,
        env: Option<&str>,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<usize> {
        let at = FieldPath::root().key("services").index(i);
        let in_env = |message: String| match env {
            Some(env) => format!("in environment {env:?}: {message}"),
            None => message,
        };
        let backend = match &service.mock {
            Some(mock) => match MockResponse::new(mock) {
                Ok(m) => Backend::Mock(Arc::new(m)),
                Err(e) => {
                    errors.push(Diagnostic::new(at.key("mock"), e));
                    return None;
                }
            },
            None => match pool(service, &at, self.opts) {
                Ok(pool) => Backend::Pool(pool),
                Err(d) => {
                    errors.push(Diagnostic::new(d.path, in_env(d.message)));
                    return None;
                }
            },
        };
        self.compiled.push(CompiledService {
            name: service.name.as_str().into(),
            backend,
            response_timeout: service.timeouts.response.get(),
        });
        Some(self.compiled.len() - 1)
    }
}

fn uses_vars(service: &Service) -> bool {
    let has = |text: &str| text.contains("${vars.");
    service.targets.iter().any(|t| has(&t.url)) || service.tls.sni.as_deref().is_some_and(has)
}

/// `service` with `${vars.NAME}` replaced by `env`'s values.
fn resolve(service: &Service, i: usize, env: &Environment) -> Result<Service, Diagnostic> {
    let at = FieldPath::root().key("services").index(i);
    let lookup = |name: &str| env.variables.get(name).map(String::as_str);
    let fail = |path: FieldPath, e: tollgate_model::VarError| {
        Diagnostic::new(path, format!("in environment {:?}: {e}", env.name))
    };
    let mut out = service.clone();
    for (j, target) in out.targets.iter_mut().enumerate() {
        target.url = substitute_vars(&target.url, lookup)
            .map_err(|e| fail(at.key("targets").index(j).key("url"), e))?
            .into_owned();
    }
    if let Some(sni) = &mut out.tls.sni {
        *sni = substitute_vars(sni, lookup)
            .map_err(|e| fail(at.key("tls").key("sni"), e))?
            .into_owned();
    }
    Ok(out)
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
    if let Some(previous) = opts.previous {
        let reused = previous
            .services
            .iter()
            .filter(|old| *old.name == *service.name)
            .find_map(|old| match &old.backend {
                Backend::Pool(pool) if pool.same_shape(&targets, &settings) => Some(pool.clone()),
                _ => None,
            });
        if let Some(pool) = reused {
            return Ok(pool);
        }
    }
    UpstreamPool::new(targets, settings, opts.workers)
        .map(Arc::new)
        .map_err(|e| Diagnostic::new(at.key("tls"), e.to_string()))
}
