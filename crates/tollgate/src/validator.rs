//! The configuration check behind every admin write: exactly what loading a file does
//! (model validation, then compiling with the plugin registry, which types every policy's
//! configuration), without publishing anything. Writes are checked on the compile thread
//! ([`crate::compile_thread`]), reusing what the previous write did not change.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwapOption;
use tollgate_admin::control::Preparing;
use tollgate_model::{Config, Diagnostic, Listen};
use tollgate_plugin_api::Registry;
use tollgate_runtime::{CompileOptions, Snapshot, SnapshotHandle, compile};
use tollgate_store::State;
use tollgate_store::secrets::SecretKey;

use crate::compile_thread::CompileThread;

/// Validates configurations by compiling them. In store mode, once the data plane runs
/// ([`CompileValidator::serve`]), a write's compile is kept and published when the write
/// commits, so each write is compiled once.
pub(crate) struct CompileValidator {
    pub(crate) plugins: Registry,
    /// Where writes are checked and compiled.
    pub(crate) thread: CompileThread,
    /// The data plane's snapshots and worker count.
    plane: OnceLock<(SnapshotHandle, usize)>,
    /// The snapshot of the last prepared write.
    prepared: ArcSwapOption<Prepared>,
}

struct Prepared {
    revision: i64,
    committed: AtomicBool,
    snapshot: Snapshot,
}

impl CompileValidator {
    pub(crate) fn new(plugins: Registry, thread: CompileThread) -> Self {
        Self {
            plugins,
            thread,
            plane: OnceLock::new(),
            prepared: ArcSwapOption::empty(),
        }
    }

    /// From now on, writes are compiled for this data plane (pools carried over from its
    /// current snapshot) and kept for publishing.
    pub(crate) fn serve(&self, handle: SnapshotHandle, workers: usize) {
        let _ = self.plane.set((handle, workers));
    }

    /// The compiled snapshot of store `revision`, if the committed write that produced it
    /// was prepared here.
    pub(crate) fn take(&self, revision: i64) -> Option<Snapshot> {
        let prepared = self.prepared.swap(None)?;
        if prepared.revision != revision || !prepared.committed.load(Ordering::Acquire) {
            return None;
        }
        Arc::try_unwrap(prepared).ok().map(|p| p.snapshot)
    }
}

impl tollgate_admin::control::ConfigValidator for CompileValidator {
    fn validate(&self, config: &Config) -> Result<(), Vec<Diagnostic>> {
        tollgate_model::validate(config)?;
        compile(
            config,
            &CompileOptions {
                registry: &self.plugins,
                previous: None,
                workers: 1,
                revision: 0,
            },
        )
        .map(drop)
    }

    fn prepare(
        &self,
        state: Arc<State>,
        listen: Listen,
        // The compile thread was given the same key when it started.
        _key: Arc<SecretKey>,
        revision: i64,
    ) -> Preparing<'_> {
        Box::pin(async move {
            let plane = self
                .plane
                .get()
                .map(|(handle, workers)| (handle.clone(), *workers));
            let done = self
                .thread
                .run(move |incremental| {
                    let result = match &plane {
                        // Compiled for the data plane (pools carried over), kept for publishing.
                        Some((handle, workers)) => {
                            let previous = handle.load();
                            incremental
                                .compile_state(&state, listen, true, Some(&previous), *workers)
                                .map(Some)
                        }
                        None => incremental
                            .compile_state(&state, listen, true, None, 1)
                            .map(|_| None),
                    };
                    drop(state);
                    result
                })
                .await;
            let Some(result) = done else {
                return Err(vec![Diagnostic::new(
                    tollgate_model::FieldPath::root(),
                    "the compile thread has stopped",
                )]);
            };
            if let Some(snapshot) = result? {
                self.prepared.store(Some(Arc::new(Prepared {
                    revision,
                    committed: AtomicBool::new(false),
                    snapshot,
                })));
            }
            Ok(())
        })
    }

    fn committed(&self, revision: i64) {
        if let Some(p) = &*self.prepared.load()
            && p.revision == revision
        {
            p.committed.store(true, Ordering::Release);
        }
    }
}
