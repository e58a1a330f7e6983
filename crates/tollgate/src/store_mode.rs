//! Store mode: the configuration lives in a store (SQLite in the data directory by default,
//! or PostgreSQL), is changed through the admin API, and every new store revision is compiled
//! off the request path and published to the data plane.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tollgate_admin::control::Control;
use tollgate_model::Listen;
use tollgate_plugin_api::Registry;
use tollgate_runtime::{CompileOptions, Snapshot, SnapshotHandle, compile};
use tollgate_store::secrets::SecretKey;
use tollgate_store::{Feed, State, Store};

use crate::validator::CompileValidator;

/// Where the store is and how to protect its secrets.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StoreArgs {
    /// Configuration store: `sqlite:PATH` or `postgres://USER@HOST/DB`. Default: the SQLite
    /// file `tollgate.db` in the data directory.
    #[arg(long, env = "TOLLGATE_STORE")]
    pub(crate) store: Option<String>,
    /// Directory for the node's own files (SQLite store, secrets key).
    #[arg(long, env = "TOLLGATE_DATA_DIR", default_value = "tollgate-data")]
    pub(crate) data_dir: PathBuf,
    /// Key that encrypts secrets at rest (32 bytes or their base64); created in the data
    /// directory if missing. Every node sharing a store needs the same key.
    #[arg(long, env = "TOLLGATE_SECRET_KEY_FILE")]
    pub(crate) secret_key_file: Option<PathBuf>,
}

impl StoreArgs {
    /// The store URL to open.
    pub(crate) fn url(&self) -> String {
        match &self.store {
            Some(url) => url.clone(),
            None => format!("sqlite:{}", self.data_dir.join("tollgate.db").display()),
        }
    }

    /// Creates the data directory (owner-only) if needed.
    pub(crate) fn prepare_data_dir(&self) -> Result<(), String> {
        create_private_dir(&self.data_dir).map_err(|e| {
            format!(
                "cannot create data directory {}: {e}",
                self.data_dir.display()
            )
        })
    }

    /// Opens the store, creating the data directory for SQLite.
    pub(crate) async fn open(&self) -> Result<Store, String> {
        if self.store.is_none() {
            self.prepare_data_dir()?;
        }
        Store::open(&self.url()).await.map_err(|e| e.to_string())
    }

    /// Loads (or creates) the secrets key.
    pub(crate) fn secret_key(&self) -> Result<SecretKey, String> {
        let path = match &self.secret_key_file {
            Some(p) => p.clone(),
            None => {
                self.prepare_data_dir()?;
                self.data_dir.join("secret.key")
            }
        };
        SecretKey::load_or_create(&path).map_err(|e| e.to_string())
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// A store-backed gateway's control state at startup.
pub(crate) struct Opened {
    pub(crate) control: Arc<Control>,
    pub(crate) feed: Arc<Feed>,
    /// Compiles writes; its snapshots are published without compiling again.
    pub(crate) validator: Arc<CompileValidator>,
}

/// Opens the store and loads its state.
pub(crate) async fn open(
    args: &StoreArgs,
    plugins: &Registry,
    listen: Listen,
) -> Result<Opened, String> {
    let key = Arc::new(args.secret_key()?);
    let store = args.open().await?;
    let feed = Feed::open(store).await.map_err(|e| e.to_string())?;
    let thread = crate::compile_thread::CompileThread::spawn(plugins.clone())
        .map_err(|e| format!("cannot start the compile thread: {e}"))?;
    let validator = Arc::new(CompileValidator::new(plugins.clone(), thread));
    let debugger = Arc::new(crate::debugger::SandboxDebugger {
        plugins: plugins.clone(),
    });
    let control = Arc::new(
        Control::with_store(feed.clone(), key, validator.clone(), listen).with_debugger(debugger),
    );
    Ok(Opened {
        control,
        feed,
        validator,
    })
}

/// Compiles a state into a snapshot (its revision is the store revision).
pub(crate) fn compile_state(
    state: &State,
    listen: &Listen,
    plugins: &Registry,
    previous: Option<&Snapshot>,
    workers: usize,
) -> Result<Snapshot, String> {
    let config = state.to_config(listen.clone());
    compile(
        &config,
        &CompileOptions {
            registry: plugins,
            previous,
            workers,
            revision: u64::try_from(state.revision).unwrap_or(0),
        },
    )
    .map_err(|items| describe(&items))
}

/// Problems, one a line.
fn describe(items: &[tollgate_model::Diagnostic]) -> String {
    items
        .iter()
        .map(|d| format!("{}: {}", d.path, d.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Publishes every new state of the store to the data plane until `stop` resolves.
pub(crate) struct StorePublisher {
    pub(crate) control: Arc<Control>,
    pub(crate) feed: Arc<Feed>,
    pub(crate) validator: Arc<CompileValidator>,
    pub(crate) handle: SnapshotHandle,
    pub(crate) listen: Listen,
    pub(crate) workers: usize,
    pub(crate) metrics: crate::reload::ReloadMetrics,
    pub(crate) access_log: tollgate_proxy::AccessLogSink,
}

impl StorePublisher {
    /// Runs until SIGTERM or SIGINT; SIGHUP re-reads the store at once.
    pub(crate) async fn run_until_shutdown(self, signals: crate::reload::Signals, poll: Duration) {
        let crate::reload::Signals {
            mut hup,
            mut term,
            mut int,
        } = signals;
        let watcher = self.feed.watch(poll);
        let mut states = self.control.subscribe();
        loop {
            tokio::select! {
                changed = states.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let state = states.borrow_and_update().clone();
                    self.publish(state).await;
                }
                _ = hup.recv() => {
                    if let Err(e) = self.feed.refresh().await {
                        tracing::warn!(error = %e, "SIGHUP: cannot read the store");
                    }
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        watcher.abort();
    }

    async fn publish(&self, state: Arc<State>) {
        let previous = self.handle.load();
        if previous.revision >= u64::try_from(state.revision).unwrap_or(0) {
            return;
        }
        let listen = self.listen.clone();
        let workers = self.workers;
        let started = std::time::Instant::now();
        let thread = &self.validator.thread;
        // A write made through this node was compiled when it was validated; a change made
        // elsewhere is compiled on the compile thread, reusing what did not change.
        let compiled = match self.validator.take(state.revision) {
            Some(snapshot) => Some((state, Ok(snapshot))),
            None => {
                thread
                    .run(move |incremental| {
                        let snapshot = incremental
                            .compile_state(&state, listen, false, Some(&previous), workers)
                            .map_err(|items| describe(&items));
                        drop(previous);
                        (state, snapshot)
                    })
                    .await
            }
        };
        match compiled {
            Some((state, Ok(snapshot))) => {
                let log = &snapshot.server.access_log;
                if let Err(e) = self.access_log.configure(log.enabled, &log.output) {
                    tracing::error!(output = %log.output, error = %e, "cannot open the new access log output; keeping the previous one");
                }
                let revision = snapshot.revision;
                // Freed on the compile thread, not by the last request using it on a worker.
                thread.drop_later(self.handle.replace(snapshot));
                self.metrics.success(revision);
                tracing::info!(
                    revision,
                    elapsed = ?started.elapsed(),
                    "store revision {} live", state.revision
                );
            }
            Some((state, Err(e))) => {
                // Writes are validated before they are committed, so this means the store was
                // changed by something else (a newer node, a hand edit): keep serving.
                self.metrics.failure();
                tracing::error!(
                    revision = state.revision,
                    "store revision cannot be compiled, still serving the previous one:\n{e}"
                );
            }
            None => {
                self.metrics.failure();
                tracing::error!(
                    "compiling the store revision failed: the compile thread has stopped"
                );
            }
        }
    }
}
