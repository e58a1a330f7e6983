//! A route's policies, ordered, split by phase so the proxy only visits the hooks that exist.

use std::sync::Arc;

use tollgate_plugin_api::{Phases, Policy};

/// The ordered policies of one route, per phase. Access and upstream run in priority order
/// (highest first); response and log run in reverse, like nested middleware unwinding.
#[derive(Clone, Default)]
pub struct Chain {
    /// Access-phase policies, highest priority first.
    pub access: Vec<Arc<dyn Policy>>,
    /// Upstream-phase policies, highest priority first.
    pub upstream: Vec<Arc<dyn Policy>>,
    /// Response-phase policies, lowest priority first.
    pub response: Vec<Arc<dyn Policy>>,
    /// Body-phase policies, lowest priority first.
    pub body: Vec<Arc<dyn Policy>>,
    /// Log-phase policies, lowest priority first.
    pub log: Vec<Arc<dyn Policy>>,
}

impl Chain {
    /// Builds the per-phase lists from policies sorted by descending priority.
    pub fn from_ordered(policies: &[Arc<dyn Policy>]) -> Self {
        let pick = |phase: Phases, reverse: bool| {
            let mut v: Vec<Arc<dyn Policy>> = policies
                .iter()
                .filter(|p| p.phases().contains(phase))
                .cloned()
                .collect();
            if reverse {
                v.reverse();
            }
            v
        };
        Self {
            access: pick(Phases::ACCESS, false),
            upstream: pick(Phases::UPSTREAM, false),
            response: pick(Phases::RESPONSE, true),
            body: pick(Phases::BODY, true),
            log: pick(Phases::LOG, true),
        }
    }

    /// True when no policy takes part in any phase.
    pub fn is_empty(&self) -> bool {
        self.access.is_empty()
            && self.upstream.is_empty()
            && self.response.is_empty()
            && self.body.is_empty()
            && self.log.is_empty()
    }
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |v: &Vec<Arc<dyn Policy>>| v.iter().map(|p| p.name()).collect::<Vec<_>>();
        f.debug_struct("Chain")
            .field("access", &names(&self.access))
            .field("upstream", &names(&self.upstream))
            .field("response", &names(&self.response))
            .field("body", &names(&self.body))
            .field("log", &names(&self.log))
            .finish()
    }
}
