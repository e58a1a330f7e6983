//! One client connection: TLS handshake, protocol detection, then HTTP/1.1 (Tollgate's own
//! server, [`crate::h1`], which parks quiet connections) or HTTP/2 (hyper), with idle and
//! shutdown handling. Parked plain connections wait in their worker's [`lot`].

mod driver;
pub(crate) mod lot;
mod plain;

pub(crate) use driver::Timeouts;
pub(crate) use lot::{Lot, LotHandle};
pub(crate) use plain::Parkable;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tollgate_plugin_api::PeerBody;
use tollgate_runtime::Snapshot;

use crate::server::{Open, Shared};

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

/// HTTP/2 server settings for new connections, from the current snapshot.
fn http2_builder(snapshot: &Snapshot) -> hyper::server::conn::http2::Builder<TokioExecutor> {
    let server = &snapshot.server;
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        // Twice the limit (HPACK counts 32 bytes per field on top of name and value): a block
        // a little over `max_header_bytes` reaches the pipeline's own check, which answers
        // `431` with the JSON error body; only one far over it is refused by hyper's HTTP/2
        // layer (an empty `431`).
        .max_header_list_size(
            u32::try_from(server.limits.max_header_bytes.saturating_mul(2) + 4096)
                .unwrap_or(u32::MAX),
        )
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// Serves one accepted connection until it closes, the idle timeout passes, shutdown, or it
/// is parked in `lot`.
///
/// The returned future is the connection's task, and a task's allocation is as large as the
/// largest state of its future, for as long as the connection lives. So the TLS handshake,
/// protocol detection, HTTP/2, and each round of HTTP/1.1 serving are boxed, and no value that
/// is only used before an `.await` is bound to a name that outlives it (a named local keeps its
/// room in the future across the `.await`, even after it was moved).
/// `open` is held until the connection is over.
#[allow(clippy::too_many_arguments)]
pub(crate) fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    tls: bool,
    worker: usize,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    lot: LotHandle,
    open: Open,
) -> impl Future<Output = ()> + Send + 'static {
    let _ = stream.set_nodelay(true);
    let info = conn_info(peer, tls, worker);
    let timeouts = timeouts(&shared.snapshots.load());
    async move {
        let parked = &shared.metrics.parked;
        if tls {
            let _open = open;
            // Boxed: the TLS handshake and stream are large, and would otherwise cost every
            // plain connection too.
            Box::pin(serve_tls(
                stream,
                shared.snapshots.load(),
                &shared,
                &info,
                timeouts,
                parked,
                &mut shutdown,
            ))
            .await;
            return;
        }
        // Boxed: only needed until the first bytes tell HTTP/2 from HTTP/1.1.
        let Some((is_h2, prefix, stream)) = Box::pin(plain::detect(stream, timeouts.header)).await
        else {
            return;
        };
        if is_h2 {
            let _open = open;
            // Boxed so HTTP/1.1 connections do not carry room for HTTP/2 state.
            Box::pin(plain::serve_h2(
                stream,
                prefix,
                http2_builder(&shared.snapshots.load()),
                service(&shared, &info),
                &info,
                timeouts.idle,
                &mut shutdown,
            ))
            .await;
            return;
        }
        serve_plain_h1(
            stream,
            prefix,
            true,
            &shared,
            &info,
            timeouts,
            &mut shutdown,
            &lot,
            open,
        )
        .await;
    }
}

/// Serves a plain HTTP/1.1 connection the lot hands back because its client sent something.
pub(crate) fn resume(
    stream: TcpStream,
    peer: SocketAddr,
    worker: usize,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    lot: LotHandle,
    open: Open,
) -> impl Future<Output = ()> + Send + 'static {
    let info = conn_info(peer, false, worker);
    let timeouts = timeouts(&shared.snapshots.load());
    async move {
        serve_plain_h1(
            stream,
            Bytes::new(),
            false,
            &shared,
            &info,
            timeouts,
            &mut shutdown,
            &lot,
            open,
        )
        .await;
    }
}

/// Serves plain HTTP/1.1 until the connection ends or is parked in `lot` (when the lot is
/// gone, the connection waits in this task instead).
#[allow(clippy::too_many_arguments)]
async fn serve_plain_h1(
    mut stream: TcpStream,
    mut prefix: Bytes,
    mut first: bool,
    shared: &Arc<Shared>,
    info: &Arc<ConnInfo>,
    timeouts: Timeouts,
    shutdown: &mut watch::Receiver<bool>,
    lot: &LotHandle,
    mut open: Open,
) {
    loop {
        let Some(parked) =
            crate::h1::serve_until_parked(stream, prefix, shared, info, timeouts, first, shutdown)
                .await
        else {
            return;
        };
        let idle = timeouts.idle.saturating_sub(PARK_AFTER);
        (stream, open) = match lot.park(parked, info.peer, open, idle) {
            Ok(()) => return,
            Err(back) => back,
        };
        if !crate::h1::wait_parked(&stream, timeouts, &shared.metrics.parked, shutdown).await {
            return;
        }
        first = false;
        prefix = Bytes::new();
    }
}

fn conn_info(peer: SocketAddr, tls: bool, worker: usize) -> Arc<ConnInfo> {
    Arc::new(ConnInfo {
        peer,
        peer_info: crate::headers::Peer::new(peer.ip()),
        tls,
        worker,
        activity: Arc::new(Activity::default()),
    })
}

fn timeouts(snapshot: &Snapshot) -> Timeouts {
    Timeouts {
        idle: snapshot.server.timeouts.idle.get(),
        header: snapshot.server.timeouts.client_header.get(),
    }
}

/// The request handler (HTTP/2).
fn service(shared: &Arc<Shared>, info: &Arc<ConnInfo>) -> impl plain::Service {
    let shared = shared.clone();
    let info = info.clone();
    service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let (parts, body) = req.into_parts();
        crate::handler::handle(parts, PeerBody::Hyper(body), shared.clone(), info.clone())
    })
}

async fn serve_tls(
    stream: TcpStream,
    snapshot: Arc<Snapshot>,
    shared: &Arc<Shared>,
    info: &Arc<ConnInfo>,
    timeouts: Timeouts,
    parked: &prometheus_client::metrics::gauge::Gauge,
    shutdown: &mut watch::Receiver<bool>,
) {
    let peer = info.peer;
    let Some(tls_settings) = snapshot.tls.as_ref() else {
        return;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls_settings.server_config.clone());
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
    if io.get_ref().1.alpn_protocol() == Some(b"h2") {
        driver::drive(
            http2_builder(&shared.snapshots.load())
                .serve_connection(TokioIo::new(io), service(shared, info)),
            &info.activity,
            timeouts.idle,
            shutdown,
        )
        .await;
    } else {
        crate::h1::serve(io, Bytes::new(), shared, info, timeouts, parked, shutdown).await;
    }
}
