//! The state feed: the latest [`State`] of a store, kept current in the background.
//!
//! A reader learns of new revisions three ways: commits made through this process (at once),
//! a periodic revision check (the safety net: a missed notification only delays a change by
//! one poll interval), and, for cluster mode, PostgreSQL notifications (added by the caller
//! through [`Feed::refresh`]). Each refresh reads only the documents written after the state's
//! revision and applies them to a copy, then publishes the copy.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, watch};

use crate::{State, Store, StoreError};

/// The latest state of a store.
#[derive(Debug)]
pub struct Feed {
    store: Store,
    tx: watch::Sender<Arc<State>>,
    refreshing: Mutex<()>,
}

impl Feed {
    /// Loads the whole state once.
    pub async fn open(store: Store) -> Result<Arc<Self>, StoreError> {
        let state = State::from_loaded(&store.load_all().await?)?;
        Ok(Arc::new(Self {
            store,
            tx: watch::channel(Arc::new(state)).0,
            refreshing: Mutex::new(()),
        }))
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The latest state known.
    pub fn current(&self) -> Arc<State> {
        self.tx.borrow().clone()
    }

    /// States as they are published.
    pub fn subscribe(&self) -> watch::Receiver<Arc<State>> {
        self.tx.subscribe()
    }

    /// Reads what changed since the current state and publishes the result (if anything
    /// changed). Concurrent calls share one read.
    pub async fn refresh(&self) -> Result<Arc<State>, StoreError> {
        let _one = self.refreshing.lock().await;
        let current = self.current();
        let delta = self.store.load_since(current.revision).await?;
        if delta.revision <= current.revision {
            return Ok(current);
        }
        let mut next = (*current).clone();
        next.apply_delta(&delta)?;
        let next = Arc::new(next);
        self.publish(next.clone());
        Ok(next)
    }

    /// Publishes a state this process just committed (skipped if a newer one is known).
    pub fn install(&self, state: Arc<State>) {
        self.publish(state);
    }

    fn publish(&self, state: Arc<State>) {
        self.tx.send_if_modified(|slot| {
            if state.revision > slot.revision {
                *slot = state;
                true
            } else {
                false
            }
        });
    }

    /// Keeps the state current until the returned task is aborted: on local commits at once,
    /// otherwise every `poll`. Store errors are logged and retried with backoff; the last good
    /// state stays published meanwhile.
    pub fn watch(self: &Arc<Self>, poll: Duration) -> tokio::task::JoinHandle<()> {
        let feed = self.clone();
        tokio::spawn(async move {
            let mut local = feed.store.subscribe();
            let mut failures = 0_u32;
            loop {
                let wait = if failures == 0 {
                    poll
                } else {
                    (poll * 2_u32.saturating_pow(failures.min(5))).min(Duration::from_secs(30))
                };
                tokio::select! {
                    changed = local.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        if *local.borrow_and_update() <= feed.current().revision {
                            continue;
                        }
                    }
                    () = tokio::time::sleep(wait) => {}
                }
                match feed.refresh().await {
                    Ok(_) => {
                        if failures > 0 {
                            tracing::info!(
                                store = feed.store.display_url(),
                                "store reachable again"
                            );
                        }
                        failures = 0;
                    }
                    Err(e) => {
                        failures += 1;
                        tracing::warn!(store = feed.store.display_url(), error = %e, failures, "cannot read the store; serving the last good state");
                    }
                }
            }
        })
    }
}
