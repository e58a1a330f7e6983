//! Store mode: the configuration lives in a store (SQLite in the data directory by default,
//! or PostgreSQL), is changed through the admin API, and every new store revision is compiled
//! off the request path and published to the data plane.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tollgate_admin::control::Control;
use tollgate_model::Listen;
use tollgate_plugin_api::Registry;
use tollgate_runtime::{Snapshot, SnapshotHandle};
use tollgate_store::cache::StateCache;
use tollgate_store::secrets::SecretKey;
use tollgate_store::{Feed, State, Store};

use crate::role::Role;
use crate::validator::CompileValidator;

/// Where the store is and how to protect its secrets.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StoreArgs {
    /// Configuration store: `sqlite:PATH` or `postgres://USER@HOST/DB`. Default: the SQLite
    /// file `tollgate.db` in the data directory. `sqlite:PATH?synchronous=normal` skips the
    /// fsync per commit (consistent, but a power loss may undo the last writes).
    #[arg(long, env = "TOLLGATE_STORE")]
    pub(crate) store: Option<String>,
    /// Directory for the node's own files (SQLite store, secrets key, local copy of the last
    /// state served from a PostgreSQL store).
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

    /// The node's copy of the last state it served.
    pub(crate) fn cache(&self) -> StateCache {
        StateCache::in_dir(&self.data_dir)
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

/// Opens the store and loads its state. A data-plane node whose PostgreSQL store cannot be
/// reached starts from its local cache (if it has one from that store) and reads the store
/// when it returns; anything else that keeps the store from opening (wrong credentials,
/// unknown database, newer schema, bad URL) is an error.
pub(crate) async fn open(
    args: &StoreArgs,
    plugins: &Registry,
    listen: Listen,
    role: Role,
) -> Result<Opened, (String, u8)> {
    let key = Arc::new(args.secret_key().map_err(|e| (e, 1))?);
    let feed = open_feed(args, role).await?;
    // Paced where it shares cores with workers.
    let pace = if role.data_plane() {
        compile_pace().map_err(|e| (e, 2))?
    } else {
        None
    };
    let thread = crate::compile_thread::CompileThread::spawn(plugins.clone(), key.clone(), pace)
        .map_err(|e| (format!("cannot start the compile thread: {e}"), 1))?;
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

/// The store's feed; errors come with their exit code (2 for a store URL that cannot be used:
/// bad usage; 1 for the rest).
async fn open_feed(args: &StoreArgs, role: Role) -> Result<Arc<Feed>, (String, u8)> {
    // The SQLite store, and for a PostgreSQL store the local state cache, live there.
    args.prepare_data_dir().map_err(|e| (e, 1))?;
    let url = args.url();
    let opened = match Store::open(&url).await {
        Ok(store) => Feed::open(store).await,
        Err(e) => Err(e),
    };
    let error = match opened {
        Ok(feed) => return Ok(feed),
        Err(e) if e.is_unreachable() && role.data_plane() && !url.starts_with("sqlite:") => e,
        Err(e @ tollgate_store::StoreError::InvalidUrl { .. }) => return Err((e.to_string(), 2)),
        Err(e) => return Err((e.to_string(), 1)),
    };
    let cache = args.cache();
    let cached = match cache.load() {
        Ok(Some(cached)) => cached,
        Ok(None) => {
            return Err((
                format!(
                    "{error}\n(no local copy of the last state served in {} to start from)",
                    args.data_dir.display()
                ),
                1,
            ));
        }
        Err(e) => {
            return Err((
                format!("{error}\n(the local state cache cannot be used: {e})"),
                1,
            ));
        }
    };
    let store = Store::open_lazy(&url).map_err(|e| (e.to_string(), 1))?;
    if cached.store != store.display_url() {
        return Err((
            format!(
                "{error}\n(the local state cache {} is from another store, {})",
                cache.path().display(),
                cached.store
            ),
            1,
        ));
    }
    tracing::warn!(
        store = store.display_url(),
        error = %error,
        revision = cached.state.revision,
        saved_at = %tollgate_model::Timestamp::from_unix(cached.saved_at),
        "the store is unreachable: serving the state of the local cache until it returns"
    );
    Ok(Feed::from_cache(store, cached.state, &error))
}

/// Compiles the store's state for the data plane before the node serves, on the compile
/// thread and unpaced, so that its caches are filled: the first write after a start is then
/// validated and compiled incrementally like any other (a full compile of 10,000 routes,
/// paced, would take seconds). The state is validated too, for the same reason; a state that
/// does not pass validation (written by an older version with looser checks) is still served
/// if it compiles, as before.
pub(crate) fn compile_first(
    opened: &Opened,
    listen: &Listen,
    workers: usize,
) -> Result<Snapshot, String> {
    let state = opened.control.state();
    let listen = listen.clone();
    opened
        .validator
        .thread
        .run_blocking(move |incremental| {
            incremental
                .compile_state(&state, listen.clone(), true, None, workers)
                .or_else(|_| incremental.compile_state(&state, listen, false, None, workers))
                .map_err(|items| describe(&items))
        })
        .unwrap_or_else(|| Err("the compile thread has stopped".into()))
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
    /// Where served states go to be cached locally (PostgreSQL stores).
    pub(crate) cache: Option<tokio::sync::watch::Sender<Option<Arc<State>>>>,
    /// Whether the TLS proxy listener is bound (certificates added later need it).
    pub(crate) tls_listener: bool,
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
        if let Some(cache) = &self.cache
            && !self.feed.health().from_cache
        {
            cache.send_replace(Some(self.feed.current()));
        }
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
        let had_tls = previous.tls.is_some();
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
                if snapshot.tls.is_some() && !had_tls && !self.tls_listener {
                    tracing::warn!(
                        "certificates are configured but no TLS listener is bound: restart the gateway (or start it with --listen-tls) to serve them"
                    );
                }
                let revision = snapshot.revision;
                // Freed on the compile thread, not by the last request using it on a worker.
                thread.retire(self.handle.replace(snapshot));
                if let Some(cache) = &self.cache {
                    cache.send_replace(Some(state.clone()));
                }
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

/// A control-plane node: keeps the state current for the admin API (no data plane to compile
/// for) until SIGTERM or SIGINT.
pub(crate) async fn follow_until_shutdown(
    feed: Arc<Feed>,
    metrics: crate::reload::ReloadMetrics,
    signals: crate::reload::Signals,
    poll: Duration,
) {
    let crate::reload::Signals {
        mut hup,
        mut term,
        mut int,
    } = signals;
    let watcher = feed.watch(poll);
    let mut states = feed.subscribe();
    loop {
        tokio::select! {
            changed = states.changed() => {
                if changed.is_err() {
                    break;
                }
                let revision = states.borrow_and_update().revision;
                metrics.published(u64::try_from(revision).unwrap_or(0));
            }
            _ = hup.recv() => {
                if let Err(e) = feed.refresh().await {
                    tracing::warn!(error = %e, "SIGHUP: cannot read the store");
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    watcher.abort();
}

/// The compile thread's pace on a node with workers: [`tollgate_pace::Pace::DEFAULT`], or what
/// `TOLLGATE_COMPILE_PACE` says: `WORK_US/REST_US` (microseconds; a rest of 0 yields the
/// core instead of sleeping) or `off`.
fn compile_pace() -> Result<Option<tollgate_pace::Pace>, String> {
    let Ok(text) = std::env::var("TOLLGATE_COMPILE_PACE") else {
        return Ok(Some(tollgate_pace::Pace::DEFAULT));
    };
    parse_pace(&text).map_err(|reason| format!("TOLLGATE_COMPILE_PACE={text:?}: {reason}"))
}

fn parse_pace(text: &str) -> Result<Option<tollgate_pace::Pace>, String> {
    if text.trim() == "off" {
        return Ok(None);
    }
    let micros = |s: &str, least: u64| {
        s.trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (least..=1_000_000).contains(n))
            .map(std::time::Duration::from_micros)
    };
    match text.split_once('/').map(|(w, r)| (micros(w, 1), micros(r, 0))) {
        Some((Some(work), Some(rest))) => Ok(Some(tollgate_pace::Pace { work, rest })),
        _ => Err(
            "expected WORK_US/REST_US (microseconds: work 1 to 1000000, rest 0 to 1000000, e.g. 100/200) or off"
                .into(),
        ),
    }
}

#[cfg(test)]
mod pace_tests {
    use std::time::Duration;

    use super::parse_pace;

    #[test]
    fn pace_settings_parse_or_say_what_is_expected() {
        let pace = parse_pace("50/400")
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("paced"));
        assert_eq!(pace.work, Duration::from_micros(50));
        assert_eq!(pace.rest, Duration::from_micros(400));
        assert_eq!(parse_pace("off"), Ok(None));
        let yielding = parse_pace("20/0")
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("paced"));
        assert_eq!(yielding.rest, Duration::ZERO);
        for bad in ["", "50", "50/", "/400", "0/400", "50/x", "50/2000000"] {
            let err = parse_pace(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert!(err.contains("WORK_US/REST_US"), "{err}");
        }
    }
}
