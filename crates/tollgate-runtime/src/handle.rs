//! The published snapshot, swapped atomically.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::Snapshot;

/// Shared handle to the current snapshot. Readers call [`SnapshotHandle::load`] once per request
/// (a few atomic operations, no lock); the control side calls [`SnapshotHandle::publish`].
#[derive(Debug, Clone)]
pub struct SnapshotHandle(Arc<ArcSwap<Snapshot>>);

impl SnapshotHandle {
    /// A handle serving `initial`.
    pub fn new(initial: Snapshot) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(initial)))
    }

    /// The current snapshot; hold it for the whole request.
    pub fn load(&self) -> Arc<Snapshot> {
        self.0.load_full()
    }

    /// Makes `next` current. Requests already running keep the snapshot they loaded.
    pub fn publish(&self, next: Snapshot) {
        self.0.store(Arc::new(next));
    }

    /// Makes `next` current and returns the snapshot it replaces, so that the caller, not
    /// the last request using it, decides where and when it is freed.
    pub fn replace(&self, next: Snapshot) -> Arc<Snapshot> {
        self.0.swap(Arc::new(next))
    }
}
