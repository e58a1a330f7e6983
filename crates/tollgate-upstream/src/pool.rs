//! A service's upstream pool.

use std::sync::Arc;

use crate::{Balancer, ClientSettings, SmoothWeightedRoundRobin, Target, UpstreamClient};

/// Targets, balancer and per-worker clients of one service. Immutable once built; a new
/// configuration snapshot reuses the whole pool (and so its warm connections) when the
/// service's settings did not change.
#[derive(Debug)]
pub struct UpstreamPool {
    targets: Box<[Target]>,
    balancer: Arc<dyn Balancer>,
    clients: Box<[UpstreamClient]>,
    settings: ClientSettings,
}

impl UpstreamPool {
    /// A pool over `targets`, with `workers` clients built from `settings`.
    pub fn new(
        targets: Vec<Target>,
        settings: ClientSettings,
        workers: usize,
    ) -> Result<Self, crate::UpstreamError> {
        let weights: Vec<u32> = targets.iter().map(|t| t.weight).collect();
        let clients = (0..workers.max(1))
            .map(|_| crate::build_client(&settings))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            targets: targets.into_boxed_slice(),
            balancer: Arc::new(SmoothWeightedRoundRobin::new(&weights)),
            clients: clients.into_boxed_slice(),
            settings,
        })
    }

    /// The next target, or `None` when none can take traffic.
    pub fn select(&self) -> Option<&Target> {
        self.balancer.select().and_then(|i| self.targets.get(i))
    }

    /// The next target with its index in [`UpstreamPool::targets`].
    pub fn select_indexed(&self) -> Option<(usize, &Target)> {
        let i = self.balancer.select()?;
        self.targets.get(i).map(|t| (i, t))
    }

    /// The client (and connection pool) of worker `worker`.
    pub fn client(&self, worker: usize) -> &UpstreamClient {
        &self.clients[worker % self.clients.len()]
    }

    /// The settings the clients were built with.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// The targets.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Whether this pool can serve a service configured with `targets` and `settings`
    /// (then a new snapshot keeps it, warm connections included).
    pub fn same_shape(&self, targets: &[Target], settings: &ClientSettings) -> bool {
        self.settings == *settings
            && self.targets.len() == targets.len()
            && self
                .targets
                .iter()
                .zip(targets)
                .all(|(a, b)| a.url == b.url && a.weight == b.weight)
    }
}
