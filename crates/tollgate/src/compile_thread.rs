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
//!
//! A lower priority bounds the thread's share, not how long it keeps a core once it has it:
//! after waiting, it may run its whole compile (5 ms at 10,000 routes) while the worker on
//! that core waits. On a node that serves traffic the thread is therefore paced
//! ([`tollgate_pace`]): it works in slices of about 100 µs and sleeps 1 ms after each.
//!
//! Snapshots replaced on the data plane are retired here ([`CompileThread::retire`]) and freed
//! once no request holds them any more, so that a request on a worker never frees one.

use std::sync::{Arc, mpsc};
use std::time::Duration;

use tollgate_model::{Config, Diagnostic, Listen, ValidationCache};
use tollgate_pace::Pace;
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
        self.check_and_compile(&config, validate, previous, workers, state.revision)
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

enum Message {
    Job(Job),
    /// A snapshot no longer current, to free once nobody else holds it.
    Retire(Retired),
}

/// What the compile thread frees for the data plane: large values whose freeing is paced.
pub(crate) trait Retirable: Send + Sync + 'static {
    /// Frees the value, giving way between its parts on a paced thread.
    fn free(self);
}

impl Retirable for Snapshot {
    /// Block by block: freed in one go, 10,000 routes were one run of the thread of a few
    /// hundred microseconds on a worker's core (`perf sched`). Most blocks are shared with
    /// the next snapshot, and dropping them frees nothing. The rest (services, routers) is
    /// freed at the end, at once: routers are usually shared with the new snapshot.
    fn free(mut self) {
        for block in self.routes.take_blocks() {
            drop(block);
            tollgate_pace::point();
        }
    }
}

/// A retired value, looked at each time the thread wakes up: it frees the value and says
/// `true` once nobody else holds it, and says `false` (keeping it) until then.
type Retired = Box<dyn FnMut() -> bool + Send>;

fn retired<T: Retirable>(value: Arc<T>) -> Retired {
    let mut held = Some(value);
    Box::new(move || {
        let Some(value) = held.take() else {
            return true;
        };
        match Arc::try_unwrap(value) {
            Ok(owned) => {
                owned.free();
                true
            }
            Err(shared) => {
                held = Some(shared);
                false
            }
        }
    })
}

/// How often retired snapshots still held by requests are looked at again.
const RETIRED_POLL: Duration = Duration::from_millis(10);

/// A handle on the compile thread; the thread ends when every handle is dropped.
#[derive(Clone)]
pub(crate) struct CompileThread {
    jobs: mpsc::Sender<Message>,
}

impl CompileThread {
    /// Starts the thread; `pace` paces its work (`None`: runs each job in one go, for nodes
    /// without workers).
    pub(crate) fn spawn(
        plugins: Registry,
        key: Arc<SecretKey>,
        pace: Option<Pace>,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Message>();
        std::thread::Builder::new()
            .name("tollgate-compile".into())
            .spawn(move || {
                if let Err(e) = lower_priority() {
                    tracing::warn!(error = %e, "cannot lower the compile thread's priority");
                }
                if let Some(pace) = pace {
                    tight_timer_slack();
                    tollgate_pace::enable(pace);
                }
                let mut incremental = Incremental::new(plugins, key);
                let mut retired: Vec<Retired> = Vec::new();
                loop {
                    let message = if retired.is_empty() {
                        queue
                            .recv()
                            .map_err(|_| mpsc::RecvTimeoutError::Disconnected)
                    } else {
                        queue.recv_timeout(RETIRED_POLL)
                    };
                    match message {
                        Ok(Message::Job(job)) => {
                            tollgate_pace::restart();
                            job(&mut incremental);
                        }
                        Ok(Message::Retire(snapshot)) => retired.push(snapshot),
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                    // Those only this thread holds are freed here.
                    retired.retain_mut(|free| !free());
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
        self.jobs.send(Message::Job(job)).ok()?;
        rx.await.ok()
    }

    /// Runs `job` on the thread, unpaced, and waits for its result, blocking the caller (for
    /// the compile before the node serves; `None` if the thread is gone).
    pub(crate) fn run_blocking<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Incremental) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |incremental| {
            let _ = tx.send(tollgate_pace::unpaced(|| job(incremental)));
        });
        self.jobs.send(Message::Job(job)).ok()?;
        rx.recv().ok()
    }

    /// Frees `snapshot` on the thread once the requests still using it are done (a snapshot
    /// of 10,000 routes takes a while to free; the last request holding it would otherwise
    /// free it on its worker).
    pub(crate) fn retire<T: Retirable>(&self, snapshot: Arc<T>) {
        let _ = self.jobs.send(Message::Retire(retired(snapshot)));
    }
}

/// Asks for the thread's sleeps to end within 1 µs of their time instead of Linux's default
/// 50 µs slack: the pace's rests are 1 ms, its slices 100 µs.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn tight_timer_slack() {
    const SLACK_NS: libc::c_ulong = 1_000;
    // SAFETY: `PR_SET_TIMERSLACK` takes a plain integer (the slack in nanoseconds, for the
    // calling thread only) and the unused arguments are zero; no memory of ours is touched.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, SLACK_NS, 0, 0, 0) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot set the compile thread's timer slack");
    }
}

#[cfg(not(target_os = "linux"))]
fn tight_timer_slack() {}

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

#[cfg(test)]
mod tests {
    use arc_swap::ArcSwapOption;

    use super::*;

    /// Records the name of the thread that drops it.
    struct Witness(Arc<ArcSwapOption<String>>);

    impl Retirable for Witness {
        fn free(self) {}
    }

    impl Drop for Witness {
        fn drop(&mut self) {
            let name = std::thread::current().name().unwrap_or("?").to_owned();
            self.0.store(Some(Arc::new(name)));
        }
    }

    fn thread() -> CompileThread {
        let key = Arc::new(SecretKey::generate().unwrap_or_else(|e| panic!("{e}")));
        CompileThread::spawn(tollgate_plugins::registry(), key, Some(Pace::DEFAULT))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_retired_snapshot_still_in_use_is_freed_on_the_compile_thread() {
        let thread = thread();
        let dropped_on = Arc::new(ArcSwapOption::empty());
        let snapshot = Arc::new(Witness(dropped_on.clone()));
        // A request still holds it when it is retired.
        let request = snapshot.clone();
        thread.retire(snapshot);
        std::thread::sleep(RETIRED_POLL * 3);
        assert!(dropped_on.load().is_none(), "freed while still in use");
        // The request ends: releasing its reference frees nothing on this thread.
        drop(request);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(name) = dropped_on.load_full() {
                assert_eq!(*name, "tollgate-compile");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never freed");
            std::thread::sleep(RETIRED_POLL);
        }
    }
}
