//! One client connection: TLS handshake, HTTP/1.1 or HTTP/2 serving, idle and shutdown handling.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tollgate_runtime::Snapshot;

use crate::server::Shared;

/// What requests need to know about their connection.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    pub(crate) peer: SocketAddr,
    /// The peer address preformatted for forwarding headers.
    pub(crate) peer_info: crate::headers::Peer,
    pub(crate) tls: bool,
    pub(crate) worker: usize,
    pub(crate) activity: Arc<Activity>,
}

/// Requests in flight on a connection and how many have started, for the idle timeout. No
/// clock is read per request: the idle timer compares counts between two firings.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    in_flight: AtomicU32,
    started: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self::default()
    }

    pub(crate) fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn end(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// A snapshot to compare at the next timer firing.
    fn mark(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// True when nothing is in flight and no request started since `mark`.
    fn idle_since(&self, mark: u64) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0 && self.started.load(Ordering::Relaxed) == mark
    }
}

/// Builds the HTTP server settings for new connections from the current snapshot.
fn builder(snapshot: &Snapshot) -> auto::Builder<TokioExecutor> {
    let server = &snapshot.server;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(server.timeouts.client_header.get())
        .max_buf_size(server.limits.max_header_bytes.max(8192))
        .max_headers(server.limits.max_headers)
        .keep_alive(true)
        .half_close(false);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(server.limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// Serves one accepted connection until it closes, the idle timeout passes, or shutdown.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    tls: bool,
    worker: usize,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let snapshot = shared.snapshots.load();
    let idle = snapshot.server.timeouts.idle.get();
    let builder = builder(&snapshot);
    let activity = Arc::new(Activity::new());
    let info = Arc::new(ConnInfo {
        peer,
        peer_info: crate::headers::Peer::new(peer.ip()),
        tls,
        worker,
        activity: activity.clone(),
    });
    let svc_shared = shared.clone();
    let service =
        service_fn(move |req| crate::handler::handle(req, svc_shared.clone(), info.clone()));

    if tls {
        let Some(tls_settings) = snapshot.tls.as_ref() else {
            return;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls_settings.server_config.clone());
        let handshake = tokio::time::timeout(
            snapshot.server.timeouts.client_header.get(),
            acceptor.accept(stream),
        )
        .await;
        drop(snapshot);
        match handshake {
            Ok(Ok(io)) => {
                drive(
                    builder,
                    TokioIo::new(io),
                    service,
                    activity,
                    idle,
                    &mut shutdown,
                )
                .await
            }
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
    } else {
        drop(snapshot);
        drive(
            builder,
            TokioIo::new(stream),
            service,
            activity,
            idle,
            &mut shutdown,
        )
        .await;
    }
}

async fn drive<I, S>(
    builder: auto::Builder<TokioExecutor>,
    io: I,
    service: S,
    activity: Arc<Activity>,
    idle: Duration,
    shutdown: &mut watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<crate::response_body::ResponseBody>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let mut closing = *shutdown.borrow();
    if closing {
        conn.as_mut().graceful_shutdown();
    }
    // The connection closes once a whole `idle` period passed with nothing in flight and no
    // new request: after between one and two periods of silence.
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);
    let mut mark = activity.mark();
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            changed = shutdown.changed(), if !closing => {
                if changed.is_err() || *shutdown.borrow() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = &mut idle_timer, if !closing => {
                if activity.idle_since(mark) {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                } else {
                    mark = activity.mark();
                    idle_timer.as_mut().reset(tokio::time::Instant::now() + idle);
                }
            }
        }
    }
}
