//! The store's condition as metrics, the node's health report, and the local state cache
//! kept current in the background.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tollgate_admin::{HealthProbe, NodeHealth};
use tollgate_runtime::SnapshotHandle;
use tollgate_store::cache::StateCache;
use tollgate_store::{Feed, State, StoreHealth};

use crate::compile_thread::CompileThread;
use crate::role::Role;

/// Exports [`StoreHealth`] as metrics until the feed is dropped.
pub(crate) fn export_metrics(feed: &Arc<Feed>, registry: &mut Registry) {
    let reachable = Gauge::<i64>::default();
    let revision = Gauge::<i64>::default();
    let listening = Gauge::<i64>::default();
    let from_cache = Gauge::<i64>::default();
    let errors = Counter::<u64>::default();
    let notifications = Counter::<u64>::default();
    let reads = Counter::<u64>::default();
    let resyncs = Counter::<u64>::default();
    registry.register(
        "tollgate_store_reachable",
        "1 while the last read of the configuration store succeeded",
        reachable.clone(),
    );
    registry.register(
        "tollgate_store_revision",
        "Newest configuration store revision this node has read",
        revision.clone(),
    );
    registry.register(
        "tollgate_store_listening",
        "1 while the PostgreSQL change-notification connection is up",
        listening.clone(),
    );
    registry.register(
        "tollgate_store_serving_cache",
        "1 while the node serves the state of its local cache, not yet confirmed by the store",
        from_cache.clone(),
    );
    registry.register(
        "tollgate_store_errors",
        "Failed reads of the configuration store",
        errors.clone(),
    );
    registry.register(
        "tollgate_store_notifications",
        "Change notifications received from the store",
        notifications.clone(),
    );
    registry.register(
        "tollgate_store_reads",
        "Reads of what changed in the store since the revision this node had",
        reads.clone(),
    );
    registry.register(
        "tollgate_store_resyncs",
        "Full re-reads of the store (after each connection of the change listener)",
        resyncs.clone(),
    );
    let mut changes = feed.health_changes();
    tokio::spawn(async move {
        let mut last = StoreHealth::default();
        loop {
            let h = changes.borrow_and_update().clone();
            reachable.set(i64::from(h.reachable));
            revision.set(h.revision);
            listening.set(i64::from(h.listening.unwrap_or(false)));
            from_cache.set(i64::from(h.from_cache));
            errors.inc_by(h.errors.saturating_sub(last.errors));
            notifications.inc_by(h.notifications.saturating_sub(last.notifications));
            reads.inc_by(h.reads.saturating_sub(last.reads));
            resyncs.inc_by(h.resyncs.saturating_sub(last.resyncs));
            last = h;
            if changes.changed().await.is_err() {
                return;
            }
        }
    });
}

/// The health report of a node: the revision its data plane serves and the store's state.
pub(crate) struct Probe {
    pub(crate) role: Role,
    /// The data plane's snapshots (`None` on a control-plane node: it reports the store
    /// revision it has read).
    pub(crate) handle: Option<SnapshotHandle>,
    pub(crate) feed: Option<Arc<Feed>>,
}

impl HealthProbe for Probe {
    fn health(&self) -> NodeHealth {
        let store = self.feed.as_ref().map(|f| f.health());
        let revision = match (&self.handle, &self.feed) {
            (Some(handle), _) => handle.load().revision,
            (None, Some(feed)) => u64::try_from(feed.current().revision).unwrap_or(0),
            (None, None) => 0,
        };
        NodeHealth {
            revision,
            role: self.role.name(),
            store,
        }
    }
}

/// Writes each state the data plane serves to the node's local cache, at most once per
/// `every`, on the low-priority compile thread (serializing 10,000 routes takes a few
/// milliseconds of CPU the workers should not lose). Returns the sender the publisher hands
/// served states to.
pub(crate) fn keep_cache(
    // Moved to the compile thread for each save and back: it remembers what it wrote.
    mut cache: StateCache,
    store: String,
    every: Duration,
    thread: CompileThread,
) -> tokio::sync::watch::Sender<Option<Arc<State>>> {
    let (tx, mut rx) = tokio::sync::watch::channel::<Option<Arc<State>>>(None);
    tokio::spawn(async move {
        let mut saved = i64::MIN;
        loop {
            if rx.changed().await.is_err() {
                return;
            }
            let Some(state) = rx.borrow_and_update().clone() else {
                continue;
            };
            if state.revision <= saved {
                continue;
            }
            let store = store.clone();
            let revision = state.revision;
            let job = move |_: &mut crate::compile_thread::Incremental| {
                let written = cache.save(&state, &store);
                (cache, written)
            };
            let Some((back, written)) = thread.run(job).await else {
                return;
            };
            cache = back;
            match written {
                Ok(()) => {
                    saved = revision;
                    tracing::debug!(revision, path = %cache.path().display(), "state cache written");
                }
                Err(e) => tracing::warn!(error = %e, "cannot write the state cache"),
            }
            tokio::time::sleep(every).await;
        }
    });
    tx
}
