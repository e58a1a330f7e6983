//! One client connection: TLS handshake, HTTP/1.1 or HTTP/2 serving, idle and shutdown handling.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

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

/// Requests in flight on a connection and when the last one ended, for the idle timeout.
#[derive(Debug)]
pub(crate) struct Activity {
    opened: Instant,
    in_flight: AtomicU32,
    last_end_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicU32::new(0),
            last_end_ms: AtomicU64::new(0),
        }
    }

    pub(crate) fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn end(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_end_ms.store(ms, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// How long until the connection has been idle for `idle`; `None` if it already has.
    fn idle_remaining(&self, idle: Duration) -> Option<Duration> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Some(idle);
        }
        let last = Duration::from_millis(self.last_end_ms.load(Ordering::Relaxed));
        let idle_since = self.opened.elapsed().saturating_sub(last);
        idle.checked_sub(idle_since).filter(|d| !d.is_zero())
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
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);
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
                match activity.idle_remaining(idle) {
                    None => {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    Some(left) => idle_timer.as_mut().reset(tokio::time::Instant::now() + left),
                }
            }
        }
    }
}
