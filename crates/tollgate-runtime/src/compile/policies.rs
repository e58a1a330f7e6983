//! Building policies through the plugin registry, and merging scopes into ordered chains.

use std::sync::Arc;

use tollgate_model::{Diagnostic, FieldPath, PolicySpec};
use tollgate_plugin_api::{Policy, Registry};

use crate::Chain;

/// Builds policies, collecting errors with their full field paths.
pub(super) struct PolicyBuilder<'a> {
    pub(super) registry: &'a Registry,
    pub(super) errors: Vec<Diagnostic>,
}

/// A built policy with what ordering and overriding need. `policy` is `None` for a policy
/// attached with `enabled: false`: it switches the same plugin off for this scope, overriding
/// wider scopes.
#[derive(Clone)]
pub(super) struct Built {
    name: &'static str,
    priority: i32,
    policy: Option<Arc<dyn Policy>>,
}

impl PolicyBuilder<'_> {
    pub(super) fn build_all(&mut self, specs: &[PolicySpec], at: &FieldPath) -> Vec<Built> {
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
pub(super) fn merge(scopes: &[&Vec<Built>]) -> Chain {
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
