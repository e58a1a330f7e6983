//! One client connection: TLS handshake, protocol detection, HTTP/1.1 or HTTP/2 serving, idle
//! and shutdown handling.
//!
//! HTTP/1.1 connections (plain or TLS) are *parked* when quiet: after [`PARK_AFTER`] with nothing in
//! flight, the HTTP server state (two 8 KiB buffers and more) is dropped and only the socket is
//! kept until the client sends again, the way nginx frees the buffers of idle keep-alive
//! connections. HTTP/2 connections keep their state.

mod driver;
mod plain;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use hyper::service::service_fn;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tollgate_runtime::Snapshot;

use crate::server::Shared;

/// How long an HTTP/1.1 connection must be quiet before its server state is released.
pub(crate) const PARK_AFTER: Duration = Duration::from_millis(50);

/// What requests need to know about their connection.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    pub(crate) peer: SocketAddr,
    /// The peer address preformatted for forwarding headers.
    pub(crate) peer_info: crate::headers::Peer,
    pub(crate) tls: bool,
    pub(crate) worker: usize,
    pub(crate) activity: Arc<Activity>,
    /// The upstream side of a protocol upgrade, handed to the HTTP/1.1 connection driver,
    /// which tunnels it once the `101` response is written (connections are served without
    /// hyper's upgrade support so they can be parked).
    upgrade: tokio::sync::Mutex<Option<OnUpgrade>>,
}

impl ConnInfo {
    /// Hands the upstream side of an upgrade to the connection driver.
    pub(crate) fn hand_over_upgrade(&self, upstream: OnUpgrade) {
        match self.upgrade.try_lock() {
            Ok(mut slot) => *slot = Some(upstream),
            // Only this connection's single in-flight HTTP/1.1 request touches the slot.
            Err(_) => tracing::warn!("protocol upgrade dropped: upgrade slot busy"),
        }
    }

    fn take_upgrade(&self) -> Option<OnUpgrade> {
        self.upgrade.try_lock().ok().and_then(|mut s| s.take())
    }
}

/// Requests in flight on a connection and how many have started, for the idle timeout. No
/// clock is read per request: the idle timer compares counts between two firings.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    in_flight: AtomicU32,
    started: AtomicU64,
}

impl Activity {
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

/// The request handler with a boxed (hence `Unpin`) future.
#[derive(Clone)]
pub(crate) struct BoxedService {
    shared: Arc<Shared>,
    info: Arc<ConnInfo>,
}

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for BoxedService {
    type Response = http::Response<crate::response_body::ResponseBody>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn call(&self, req: http::Request<hyper::body::Incoming>) -> Self::Future {
        Box::pin(crate::handler::handle(
            req,
            self.shared.clone(),
            self.info.clone(),
        ))
    }
}

/// HTTP/1.1 server settings for new connections, from the current snapshot.
fn http1_builder(snapshot: &Snapshot) -> hyper::server::conn::http1::Builder {
    let server = &snapshot.server;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(server.timeouts.client_header.get())
        .max_buf_size(server.limits.max_header_bytes.max(8192))
        .max_headers(server.limits.max_headers)
        .keep_alive(true)
        .half_close(false);
    builder
}

/// HTTP/2 server settings for new connections, from the current snapshot.
fn http2_builder(snapshot: &Snapshot) -> hyper::server::conn::http2::Builder<TokioExecutor> {
    let server = &snapshot.server;
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
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
    let timeouts = driver::Timeouts {
        idle: snapshot.server.timeouts.idle.get(),
        header: snapshot.server.timeouts.client_header.get(),
    };
    let activity = Arc::new(Activity::default());
    let info = Arc::new(ConnInfo {
        peer,
        peer_info: crate::headers::Peer::new(peer.ip()),
        tls,
        worker,
        activity: activity.clone(),
        upgrade: tokio::sync::Mutex::new(None),
    });
    let svc_shared = shared.clone();
    let svc_info = info.clone();
    let service =
        service_fn(move |req| crate::handler::handle(req, svc_shared.clone(), svc_info.clone()));

    if !tls {
        let h1 = http1_builder(&snapshot);
        let h2 = http2_builder(&snapshot);
        drop(snapshot);
        // hyper can hand back a parked connection's socket only when the service future is
        // `Unpin`: box it (one allocation per request on HTTP/1.1).
        let boxed = BoxedService {
            shared: shared.clone(),
            info: info.clone(),
        };
        let parked = &shared.metrics.parked;
        plain::serve(
            stream,
            h1,
            h2,
            service,
            boxed,
            &info,
            timeouts,
            parked,
            &mut shutdown,
        )
        .await;
        return;
    }
    // Boxed: the TLS handshake and server state are large, and a task's future is as large as
    // its largest state, so keeping them inline would cost every plain connection too.
    let boxed = BoxedService {
        shared: shared.clone(),
        info: info.clone(),
    };
    let parked = &shared.metrics.parked;
    Box::pin(serve_tls(
        stream,
        snapshot,
        service,
        boxed,
        &info,
        timeouts,
        parked,
        &mut shutdown,
    ))
    .await;
}

#[allow(clippy::too_many_arguments)]
async fn serve_tls<S>(
    stream: TcpStream,
    snapshot: Arc<Snapshot>,
    service: S,
    boxed: BoxedService,
    info: &ConnInfo,
    timeouts: driver::Timeouts,
    parked: &prometheus_client::metrics::gauge::Gauge,
    shutdown: &mut watch::Receiver<bool>,
) where
    S: plain::Service,
{
    let peer = info.peer;
    let activity = &info.activity;
    let Some(tls_settings) = snapshot.tls.as_ref() else {
        return;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls_settings.server_config.clone());
    let h1 = http1_builder(&snapshot);
    let h2 = http2_builder(&snapshot);
    drop(snapshot);
    let io = match tokio::time::timeout(timeouts.header, acceptor.accept(stream)).await {
        Ok(Ok(io)) => io,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let h2_negotiated = io.get_ref().1.alpn_protocol() == Some(b"h2");
    if h2_negotiated {
        let conn = h2.serve_connection(TokioIo::new(io), service);
        driver::drive(conn, activity, timeouts.idle, shutdown).await;
    } else {
        plain::serve_http1(
            io,
            bytes::Bytes::new(),
            h1,
            boxed,
            info,
            timeouts.idle,
            parked,
            shutdown,
        )
        .await;
    }
}
