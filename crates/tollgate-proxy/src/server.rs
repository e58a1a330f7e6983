//! Starting and stopping the data plane: worker threads, their runtimes and accept loops.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tollgate_runtime::SnapshotHandle;

use crate::{AccessLogSink, ProxyMetrics};

/// State shared by every worker.
pub(crate) struct Shared {
    pub(crate) snapshots: SnapshotHandle,
    pub(crate) metrics: ProxyMetrics,
    pub(crate) access_log: AccessLogSink,
    /// Label value for requests that matched no route.
    pub(crate) empty: Arc<str>,
}

/// How to start the data plane.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Plain listener.
    pub http: SocketAddr,
    /// TLS listener, bound only when given.
    pub https: Option<SocketAddr>,
    /// Worker threads (at least 1).
    pub workers: usize,
    /// The scheduler slice the workers ask for ([`crate::slice`]; `None`: the kernel's).
    pub worker_slice: Option<std::time::Duration>,
}

/// The data plane.
pub struct Proxy;

/// Controls a running data plane.
pub struct ProxyHandle {
    shutdown: watch::Sender<bool>,
    threads: Vec<JoinHandle<()>>,
    http_addr: Option<SocketAddr>,
}

impl Proxy {
    /// Binds every listener (failing fast, before any thread starts) and starts the workers.
    pub fn start(
        config: &ProxyConfig,
        snapshots: SnapshotHandle,
        metrics: ProxyMetrics,
        access_log: AccessLogSink,
    ) -> std::io::Result<ProxyHandle> {
        let workers = config.workers.max(1);
        for addr in std::iter::once(config.http).chain(config.https) {
            crate::listener::ensure_free(addr).map_err(|e| with_addr(e, addr))?;
        }
        let mut sockets = Vec::with_capacity(workers);
        for _ in 0..workers {
            let http = crate::listener::bind(config.http).map_err(|e| with_addr(e, config.http))?;
            let https = match config.https {
                Some(addr) => Some(crate::listener::bind(addr).map_err(|e| with_addr(e, addr))?),
                None => None,
            };
            sockets.push((http, https));
        }
        // With port 0 (the debug sandbox, tests) the first worker's port is the one to use.
        let http_addr = sockets.first().and_then(|(h, _)| h.local_addr().ok());
        let shared = Arc::new(Shared {
            snapshots,
            metrics,
            access_log,
            empty: Arc::from(""),
        });
        let (tx, rx) = watch::channel(false);
        let mut threads = Vec::with_capacity(workers);
        for (index, (http, https)) in sockets.into_iter().enumerate() {
            let shared = shared.clone();
            let rx = rx.clone();
            let slice = config.worker_slice;
            let thread = std::thread::Builder::new()
                .name(format!("tollgate-worker-{index}"))
                .spawn(move || {
                    if let Some(slice) = slice
                        && let Err(e) = crate::slice::set_for_this_thread(slice)
                    {
                        tracing::warn!(error = %e, "cannot set the worker's scheduler slice");
                    }
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot start worker runtime");
                            return;
                        }
                    };
                    runtime.block_on(worker(index, http, https, shared, rx));
                })?;
            threads.push(thread);
        }
        Ok(ProxyHandle {
            shutdown: tx,
            threads,
            http_addr,
        })
    }
}

fn with_addr(e: std::io::Error, addr: SocketAddr) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
}

impl ProxyHandle {
    /// The address the (first worker's) plain listener is bound to.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Stops accepting, lets in-flight requests finish for up to `grace`, then closes what is
    /// left and returns once every worker has stopped. Returns true when everything drained.
    pub fn shutdown(self, grace: Duration) -> bool {
        let _ = self.shutdown.send(true);
        let deadline = std::time::Instant::now() + grace + Duration::from_secs(1);
        let mut drained = true;
        for t in self.threads {
            while !t.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                drained &= t.join().is_ok();
            } else {
                drained = false;
            }
        }
        drained
    }

    /// Tells workers to stop accepting and drain, without waiting.
    pub fn begin_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}

/// Open connections of one worker, to wait for them on shutdown.
#[derive(Default)]
struct Tracker {
    open: AtomicUsize,
    closed: Notify,
}

/// Counts a connection as open until its task ends (or is dropped): a guard the connection's
/// future holds, rather than a wrapper future, which would keep a second copy of everything
/// it hands to the connection for as long as the connection lives.
pub(crate) struct Open {
    shared: Arc<Shared>,
    tracker: Arc<Tracker>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.shared.metrics.connections.dec();
        if self.tracker.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.tracker.closed.notify_waiters();
        }
    }
}

async fn worker(
    index: usize,
    http: std::net::TcpListener,
    https: Option<std::net::TcpListener>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let tracker = Arc::new(Tracker::default());
    let (lot, lot_handle) = crate::conn::Lot::new(index, shared.clone(), shutdown.clone());
    let lot = tokio::spawn(lot.run());
    let mut loops = Vec::new();
    for (socket, tls) in std::iter::once((http, false)).chain(https.map(|s| (s, true))) {
        match TcpListener::from_std(socket) {
            Ok(listener) => loops.push(tokio::spawn(accept_loop(
                index,
                listener,
                tls,
                shared.clone(),
                shutdown.clone(),
                tracker.clone(),
                lot_handle.clone(),
            ))),
            Err(e) => tracing::error!(error = %e, "cannot register listener"),
        }
    }
    drop(lot_handle);
    for l in loops {
        let _ = l.await;
    }
    // Closes the parked connections.
    let _ = lot.await;
    // Listeners are closed; wait for connections to drain (bounded by the caller's deadline:
    // the grace period reads from the snapshot).
    let grace = shared.snapshots.load().server.timeouts.shutdown_grace.get();
    let drained = tokio::time::timeout(grace, async {
        loop {
            let notified = tracker.closed.notified();
            if tracker.open.load(Ordering::Acquire) == 0 {
                break;
            }
            notified.await;
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            worker = index,
            open = tracker.open.load(Ordering::Acquire),
            "shutdown grace period over; closing remaining connections"
        );
    }
}

async fn accept_loop(
    worker: usize,
    listener: TcpListener,
    tls: bool,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    tracker: Arc<Tracker>,
    lot: crate::conn::LotHandle,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracker.open.fetch_add(1, Ordering::AcqRel);
                    shared.metrics.connections.inc();
                    let open = Open {
                        shared: shared.clone(),
                        tracker: tracker.clone(),
                    };
                    tokio::spawn(crate::conn::serve(
                        stream,
                        peer,
                        tls,
                        worker,
                        shared.clone(),
                        shutdown.clone(),
                        lot.clone(),
                        open,
                    ));
                }
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
            }
        }
    }
}
