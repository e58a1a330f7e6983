//! Hot reload: on SIGHUP or a change of the configuration file, read, validate and compile the
//! new configuration off the request path and publish it atomically; an invalid one is logged
//! with its precise errors and the running snapshot keeps serving.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tollgate_model::Listen;
use tollgate_plugin_api::Registry as Plugins;
use tollgate_runtime::SnapshotHandle;

use crate::load;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// Reload metrics.
pub(crate) struct ReloadMetrics {
    reloads: Family<ResultLabel, Counter>,
    revision: Gauge<i64, AtomicI64Wrapper>,
    last_ok: Gauge,
}

type AtomicI64Wrapper = std::sync::atomic::AtomicI64;

impl ReloadMetrics {
    pub(crate) fn new(registry: &mut Registry) -> Self {
        let m = Self {
            reloads: Family::default(),
            revision: Gauge::default(),
            last_ok: Gauge::default(),
        };
        registry.register(
            "tollgate_config_reloads",
            "Configuration reload attempts by result",
            m.reloads.clone(),
        );
        registry.register(
            "tollgate_config_revision",
            "Revision of the configuration snapshot being served",
            m.revision.clone(),
        );
        registry.register(
            "tollgate_config_last_reload_success",
            "1 if the last reload attempt succeeded, 0 if it was rejected",
            m.last_ok.clone(),
        );
        m.last_ok.set(1);
        m
    }

    pub(crate) fn published(&self, revision: u64) {
        self.revision
            .set(i64::try_from(revision).unwrap_or(i64::MAX));
    }

    /// A new snapshot was published.
    pub(crate) fn success(&self, revision: u64) {
        self.published(revision);
        self.last_ok.set(1);
        self.reloads
            .get_or_create(&ResultLabel { result: "success" })
            .inc();
    }

    /// A configuration was rejected; the previous snapshot keeps serving.
    pub(crate) fn failure(&self) {
        self.last_ok.set(0);
        self.reloads
            .get_or_create(&ResultLabel { result: "failure" })
            .inc();
    }
}

/// Everything a reload needs.
pub(crate) struct Reloader {
    pub(crate) path: PathBuf,
    pub(crate) plugins: Plugins,
    pub(crate) handle: SnapshotHandle,
    pub(crate) workers: usize,
    pub(crate) listen: Listen,
    pub(crate) metrics: ReloadMetrics,
    pub(crate) access_log: tollgate_proxy::AccessLogSink,
    /// The configuration file and the files it references, and what they were last seen as.
    pub(crate) watch: std::cell::RefCell<crate::watch::ConfigWatch>,
    /// The admin API's read-only view of the file, refreshed on every reload.
    pub(crate) control: Option<std::sync::Arc<tollgate_admin::control::Control>>,
}

static REVISION: AtomicU64 = AtomicU64::new(1);

/// The process signals the control loop reacts to, installed as early as possible so a signal
/// that arrives during startup is handled (SIGHUP: reload once running; SIGTERM/SIGINT: stop)
/// instead of killing the process.
pub(crate) struct Signals {
    pub(crate) hup: Signal,
    pub(crate) term: Signal,
    pub(crate) int: Signal,
}

impl Signals {
    /// Installs the handlers; must run inside a tokio runtime.
    pub(crate) fn install() -> std::io::Result<Self> {
        Ok(Self {
            hup: signal(SignalKind::hangup())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }
}

impl Reloader {
    /// Reloads on SIGHUP and (with `watch`) on file changes, until SIGTERM or SIGINT.
    pub(crate) async fn run_until_shutdown(self, signals: Signals, watch: bool) {
        let Signals {
            mut hup,
            mut term,
            mut int,
        } = signals;
        let (tx, mut changes) = mpsc::channel::<()>(64);
        if watch {
            self.watch.borrow_mut().start(tx);
        }
        loop {
            tokio::select! {
                _ = hup.recv() => self.reload("SIGHUP").await,
                Some(()) = changes.recv() => {
                    // Editors write in several steps: wait for the burst to end.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    while changes.try_recv().is_ok() {}
                    let changed = self.watch.borrow_mut().changed();
                    if changed {
                        self.reload("file change").await;
                    }
                }
                _ = term.recv() => return,
                _ = int.recv() => return,
            }
        }
    }

    async fn reload(&self, cause: &'static str) {
        let path = self.path.clone();
        let plugins = self.plugins.clone();
        let previous = self.handle.load();
        let workers = self.workers;
        let revision = REVISION.load(Ordering::Relaxed) + 1;
        let compiled = tokio::task::spawn_blocking(move || {
            let loaded = load::read_config(&path)?;
            let snapshot = load::compile(&loaded, &plugins, Some(&previous), workers, revision)?;
            Ok::<_, load::LoadError>((loaded, snapshot))
        })
        .await;
        match compiled {
            Ok(Ok((loaded, snapshot))) => {
                let config = loaded.config;
                self.watch.borrow_mut().track(&config);
                let log = &config.server.access_log;
                if let Err(e) = self.access_log.configure(log.enabled, &log.output) {
                    tracing::error!(output = %log.output, error = %e, "cannot open the new access log output; keeping the previous one");
                }
                if config.listen != self.listen {
                    tracing::warn!(
                        "`listen` changed: listeners change only on restart; keeping the current ones"
                    );
                }
                match (self.handle.load().tls.is_some(), snapshot.tls.is_some()) {
                    (false, true) => tracing::warn!(
                        "certificates were added: the TLS listener opens only on restart"
                    ),
                    (true, false) => tracing::warn!(
                        "all certificates were removed: the TLS listener stays open but refuses handshakes until restart"
                    ),
                    _ => {}
                }
                let workers = match config.server.workers {
                    0 => std::thread::available_parallelism().map_or(1, usize::from),
                    n => n,
                };
                if workers != self.workers {
                    tracing::warn!(
                        running = self.workers,
                        configured = workers,
                        "`server.workers` changed: the number of workers changes only on restart"
                    );
                }
                REVISION.store(revision, Ordering::Relaxed);
                if let Some(control) = &self.control
                    && let Err(e) = control.show_file(&config)
                {
                    tracing::warn!(error = %e, "the admin API cannot show the new configuration");
                }
                self.handle.publish(snapshot);
                self.metrics.success(revision);
                tracing::info!(cause, revision, "configuration reloaded");
            }
            Ok(Err(e)) => {
                self.metrics.failure();
                tracing::error!(
                    cause,
                    "configuration rejected, still serving the previous one:\n{e}"
                );
            }
            Err(e) => {
                self.metrics.failure();
                tracing::error!(cause, error = %e, "configuration reload failed");
            }
        }
    }
}
