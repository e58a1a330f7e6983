//! The compile thread: where store mode validates and compiles, at a lower scheduling
//! priority than the proxy workers.
//!
//! One thread owns what consecutive compiles reuse ([`Incremental`]: the projection of the
//! store's state, the validation of unchanged API versions, the compiler's plans, chains and
//! routers), so that no lock is needed, and runs jobs one at a time in the order they were
//! sent. Its nice value is raised to [`NICE`]: on a machine whose cores are busy serving
//! requests, a compile takes the CPU the workers leave rather than competing with them as an
//! equal. It still gets a share (Linux's scheduler gives a nice-10 thread about a tenth of a
//! core against one busy nice-0 thread, never nothing), so a change still goes live well
//! within a second while a write costs a few milliseconds of CPU.

use std::sync::{Arc, mpsc};

use tollgate_model::{Config, Diagnostic, Listen, ValidationCache};
use tollgate_plugin_api::Registry;
use tollgate_runtime::{CompileOptions, Compiler, Snapshot};
use tollgate_store::secrets::SecretKey;
use tollgate_store::{Projection, State};

/// The nice value of the compile thread (0 is the default, 19 the lowest priority).
pub(crate) const NICE: i32 = 10;

/// What consecutive compiles reuse.
pub(crate) struct Incremental {
    plugins: Registry,
    /// Decrypts certificates' private keys (in memory only).
    key: Arc<SecretKey>,
    projection: Projection,
    validation: ValidationCache,
    compiler: Compiler,
}

impl Incremental {
    pub(crate) fn new(plugins: Registry, key: Arc<SecretKey>) -> Self {
        Self {
            plugins,
            key,
            projection: Projection::default(),
            validation: ValidationCache::default(),
            compiler: Compiler::default(),
        }
    }

    /// Validates (model checks, if `validate`) and compiles `state` as a full validation and
    /// compile would, reusing what did not change since the previous call.
    pub(crate) fn compile_state(
        &mut self,
        state: &State,
        listen: Listen,
        validate: bool,
        previous: Option<&Snapshot>,
        workers: usize,
    ) -> Result<Snapshot, Vec<Diagnostic>> {
        let config = state.to_live_config_reusing(listen, &self.key, &mut self.projection)?;
        let result = self.check_and_compile(&config, validate, previous, workers, state.revision);
        self.projection.recycle(state, config);
        result
    }

    fn check_and_compile(
        &mut self,
        config: &Config,
        validate: bool,
        previous: Option<&Snapshot>,
        workers: usize,
        revision: i64,
    ) -> Result<Snapshot, Vec<Diagnostic>> {
        if validate {
            self.validation.validate(config)?;
        }
        self.compiler.compile(
            config,
            &CompileOptions {
                registry: &self.plugins,
                previous,
                workers,
                revision: u64::try_from(revision).unwrap_or(0),
            },
        )
    }
}

type Job = Box<dyn FnOnce(&mut Incremental) + Send>;

/// A handle on the compile thread; the thread ends when every handle is dropped.
#[derive(Clone)]
pub(crate) struct CompileThread {
    jobs: mpsc::Sender<Job>,
}

impl CompileThread {
    /// Starts the thread.
    pub(crate) fn spawn(plugins: Registry, key: Arc<SecretKey>) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("tollgate-compile".into())
            .spawn(move || {
                if let Err(e) = lower_priority() {
                    tracing::warn!(error = %e, "cannot lower the compile thread's priority");
                }
                let mut incremental = Incremental::new(plugins, key);
                while let Ok(job) = queue.recv() {
                    job(&mut incremental);
                }
            })?;
        Ok(Self { jobs })
    }

    /// Runs `job` on the thread and waits for its result (`None` if the thread is gone).
    pub(crate) async fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Incremental) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |incremental| {
            let _ = tx.send(job(incremental));
        });
        self.jobs.send(job).ok()?;
        rx.await.ok()
    }

    /// Frees `value` on the thread (large snapshots take a while to free).
    pub(crate) fn drop_later<T: Send + 'static>(&self, value: T) {
        let _ = self.jobs.send(Box::new(move |_| drop(value)));
    }
}

/// Raises the calling thread's nice value to [`NICE`].
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn lower_priority() -> std::io::Result<()> {
    // SAFETY: `gettid` takes no arguments, cannot fail and touches no memory of ours.
    let tid = unsafe { libc::gettid() };
    let id = libc::id_t::try_from(tid).map_err(std::io::Error::other)?;
    // SAFETY: `setpriority` takes plain integers and touches no memory of ours. On Linux the
    // nice value is a per-thread attribute and `PRIO_PROCESS` with a thread id sets only that
    // thread's (setpriority(2), NOTES), so the workers keep theirs.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, id, NICE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere: the thread keeps the default priority.
#[cfg(not(target_os = "linux"))]
fn lower_priority() -> std::io::Result<()> {
    Ok(())
}
