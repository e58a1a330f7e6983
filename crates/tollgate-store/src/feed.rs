//! The state feed: the latest [`State`] of a store, kept current in the background.
//!
//! A reader learns of new revisions three ways: commits made through this process (at once),
//! PostgreSQL change notifications (within milliseconds; see [`crate::listen`]), and a
//! periodic revision check, the safety net: a lost notification only delays a change by one
//! poll interval. Each refresh reads only the documents written after the state's revision
//! and applies them to a copy, then publishes the copy; after every (re)connection of the
//! notification listener the whole store is read again.
//!
//! While the store is unreachable the last good state stays published, failures are
//! retried with backoff and reported through [`Feed::health`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, watch};

use crate::db::unix_now;
use crate::{Backend, State, Store, StoreError, StoreHealth};

/// The latest state of a store.
#[derive(Debug)]
pub struct Feed {
    store: Store,
    tx: watch::Sender<Arc<State>>,
    refreshing: Mutex<()>,
    health: watch::Sender<StoreHealth>,
}

impl Feed {
    /// Loads the whole state once.
    pub async fn open(store: Store) -> Result<Arc<Self>, StoreError> {
        let state = State::from_loaded(&store.load_all().await?)?;
        let health = StoreHealth {
            reachable: true,
            revision: state.revision,
            listening: (store.backend() == Backend::Postgres).then_some(false),
            ..StoreHealth::default()
        };
        Ok(Self::new(store, state, health))
    }

    /// Starts from a state read earlier (the node's local cache) while `store` cannot be
    /// reached; the store is read as soon as it answers.
    pub fn from_cache(store: Store, state: State, error: &StoreError) -> Arc<Self> {
        let health = StoreHealth {
            reachable: false,
            error: Some(error.to_string()),
            unreachable_since: Some(unix_now()),
            revision: state.revision,
            from_cache: true,
            listening: (store.backend() == Backend::Postgres).then_some(false),
            errors: 1,
            ..StoreHealth::default()
        };
        Self::new(store, state, health)
    }

    fn new(store: Store, state: State, health: StoreHealth) -> Arc<Self> {
        Arc::new(Self {
            store,
            tx: watch::channel(Arc::new(state)).0,
            refreshing: Mutex::new(()),
            health: watch::channel(health).0,
        })
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

    /// How the store is doing, as of now.
    pub fn health(&self) -> StoreHealth {
        self.health.borrow().clone()
    }

    /// Health as it changes.
    pub fn health_changes(&self) -> watch::Receiver<StoreHealth> {
        self.health.subscribe()
    }

    /// Reads what changed since the current state and publishes the result (if anything
    /// changed). Concurrent calls share one read.
    pub async fn refresh(&self) -> Result<Arc<State>, StoreError> {
        let _one = self.refreshing.lock().await;
        let current = self.current();
        let delta = match self.store.load_since(current.revision).await {
            Ok(delta) => delta,
            Err(e) => return Err(self.failed(e)),
        };
        self.health.send_modify(|h| h.reads += 1);
        self.reached(delta.revision);
        if delta.revision <= current.revision {
            return Ok(current);
        }
        let mut next = (*current).clone();
        next.apply_delta(&delta)?;
        let next = Arc::new(next);
        self.publish(next.clone());
        Ok(next)
    }

    /// Reads the store's revision and, only if it is newer than the current state's, what
    /// changed ([`Feed::refresh`]). The periodic check: one small query, where a refresh
    /// reads the documents too.
    pub async fn check(&self) -> Result<(), StoreError> {
        let revision = match self.store.revision().await {
            Ok(revision) => revision,
            Err(e) => return Err(self.failed(e)),
        };
        if revision <= self.current().revision {
            self.reached(revision);
            return Ok(());
        }
        self.refresh().await.map(drop)
    }

    /// Reads the whole store again and publishes it if it is newer than the current state.
    pub async fn resync(&self) -> Result<Arc<State>, StoreError> {
        let _one = self.refreshing.lock().await;
        let loaded = match self.store.load_all().await {
            Ok(loaded) => loaded,
            Err(e) => return Err(self.failed(e)),
        };
        self.health.send_modify(|h| h.resyncs += 1);
        self.reached(loaded.revision);
        let current = self.current();
        if loaded.revision < current.revision {
            tracing::error!(
                store = self.store.display_url(),
                store_revision = loaded.revision,
                serving = current.revision,
                "the store is at an older revision than the state served (restored from a backup, or another database?); keeping the newer state until the store passes it or the node restarts"
            );
            return Ok(current);
        }
        if loaded.revision == current.revision {
            return Ok(current);
        }
        let next = Arc::new(State::from_loaded(&loaded)?);
        self.publish(next.clone());
        Ok(next)
    }

    /// Publishes a state this process just committed (skipped if a newer one is known).
    pub fn install(&self, state: Arc<State>) {
        self.reached(state.revision);
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

    /// Records a successful read at `revision`.
    fn reached(&self, revision: i64) {
        self.health.send_if_modified(|h| {
            let before = h.clone();
            if !h.reachable {
                tracing::info!(store = self.store.display_url(), "store reachable again");
            }
            h.reachable = true;
            h.error = None;
            h.unreachable_since = None;
            h.from_cache = false;
            h.revision = h.revision.max(revision);
            *h != before
        });
    }

    /// Records a failed read; returns the error.
    fn failed(&self, error: StoreError) -> StoreError {
        self.health.send_modify(|h| {
            if h.reachable {
                h.unreachable_since = Some(unix_now());
            }
            h.reachable = false;
            h.error = Some(error.to_string());
            h.errors += 1;
        });
        error
    }

    pub(crate) fn set_listening(&self, up: bool) {
        self.health.send_if_modified(|h| {
            let changed = h.listening != Some(up);
            h.listening = Some(up);
            changed
        });
    }

    pub(crate) fn notified(&self) {
        self.health.send_modify(|h| h.notifications += 1);
    }

    /// Keeps the state current until the returned [`Watcher`] is stopped: on local commits
    /// at once, on PostgreSQL notifications, and otherwise every `poll`. Store errors are
    /// logged and retried with backoff; the last good state stays published meanwhile.
    pub fn watch(self: &Arc<Self>, poll: Duration) -> Watcher {
        let mut tasks = vec![tokio::spawn(self.clone().poll(poll))];
        if self.store.backend() == Backend::Postgres {
            tasks.push(tokio::spawn(crate::listen::run(self.clone())));
        }
        Watcher { tasks }
    }

    async fn poll(self: Arc<Self>, poll: Duration) {
        let mut local = self.store.subscribe();
        let mut failures = 0_u32;
        loop {
            let wait = if failures == 0 {
                poll
            } else {
                (poll * 2_u32.saturating_pow(failures.min(5))).min(Duration::from_secs(30))
            };
            let read = tokio::select! {
                changed = local.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if *local.borrow_and_update() <= self.current().revision {
                        continue;
                    }
                    self.refresh().await.map(drop)
                }
                () = tokio::time::sleep(wait) => self.check().await,
            };
            match read {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures += 1;
                    // Once per outage at warn level, then quietly (the health and metrics say
                    // it is still down).
                    if failures == 1 {
                        tracing::warn!(store = self.store.display_url(), error = %e, "cannot read the store; serving the last good state");
                    } else {
                        tracing::debug!(store = self.store.display_url(), error = %e, failures, "store still unreachable");
                    }
                }
            }
        }
    }
}

/// The background tasks of [`Feed::watch`]; stopped by [`Watcher::abort`] or when dropped.
#[derive(Debug)]
pub struct Watcher {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Watcher {
    /// Stops watching.
    pub fn abort(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.abort();
    }
}
