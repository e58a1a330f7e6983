//! Plain-text connections (HTTP/2 with prior knowledge or HTTP/1.1), and HTTP/1.1 serving for
//! plain and TLS streams alike, parked when quiet so an idle keep-alive connection holds its
//! stream and little else.

use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::driver;
use super::parser_errors::ParserErrors;
use super::{ConnInfo, PARK_AFTER};
use crate::rewind::Rewind;

const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The service type every connection uses.
pub(super) trait Service:
    hyper::service::Service<
        http::Request<hyper::body::Incoming>,
        Response = http::Response<crate::response_body::ResponseBody>,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S> Service for S where
    S: hyper::service::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<crate::response_body::ResponseBody>,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// Reads the first bytes within `header` and tells HTTP/2 (prior knowledge) from HTTP/1.1.
/// Returns whether it is HTTP/2, the bytes read and the stream, or `None` when the client
/// closed, failed or stayed silent.
pub(super) async fn detect(
    mut stream: TcpStream,
    header: Duration,
) -> Option<(bool, Bytes, TcpStream)> {
    match tokio::time::timeout(header, sniff(&mut stream)).await {
        Ok(Ok(Some((is_h2, prefix)))) => Some((is_h2, prefix, stream)),
        // Closed before sending anything, an I/O error, or silence: nothing to answer.
        Ok(Ok(None)) | Ok(Err(_)) | Err(_) => None,
    }
}

/// Serves HTTP/2 with prior knowledge; `prefix` holds the bytes detection read.
pub(super) async fn serve_h2<S: Service>(
    stream: TcpStream,
    prefix: Bytes,
    h2: http2::Builder<TokioExecutor>,
    service: S,
    info: &ConnInfo,
    idle: Duration,
    shutdown: &mut watch::Receiver<bool>,
) {
    driver::drive(
        h2.serve_connection(TokioIo::new(Rewind::new(prefix, stream)), service),
        &info.activity,
        idle,
        shutdown,
    )
    .await;
}

/// Reads until the bytes either are the HTTP/2 preface or cannot be. Returns whether it is
/// HTTP/2 and the bytes read, or `None` when the client closed first.
async fn sniff(stream: &mut TcpStream) -> std::io::Result<Option<(bool, Bytes)>> {
    let mut buf = [0u8; 24];
    let mut len = 0;
    loop {
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(None);
        }
        len += n;
        if buf[..len] != H2_PREFACE[..len] {
            return Ok(Some((false, Bytes::copy_from_slice(&buf[..len]))));
        }
        if len == H2_PREFACE.len() {
            return Ok(Some((true, Bytes::copy_from_slice(&buf))));
        }
    }
}

/// A client stream an HTTP/1.1 connection can be parked on.
pub(super) trait Parkable:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static
{
    /// Whether bytes are already waiting above the socket (decrypted TLS data), so the
    /// connection must resume without waiting for the socket.
    fn buffered(&mut self) -> bool;

    /// Polls until the socket has something to read (or was closed). A poll function rather
    /// than a future: nothing to keep in the parked connection's task.
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>>;
}

impl Parkable for TcpStream {
    fn buffered(&mut self) -> bool {
        false
    }

    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_read_ready(cx)
    }
}

impl Parkable for tokio_rustls::server::TlsStream<TcpStream> {
    fn buffered(&mut self) -> bool {
        // Plaintext rustls decrypted but nobody read yet; an error also means "resume", so
        // that the HTTP server reports it.
        self.get_mut()
            .1
            .process_new_packets()
            .map_or(true, |state| state.plaintext_bytes_to_read() > 0)
    }

    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_ref().0.poll_read_ready(cx)
    }
}

/// Why one round of serving ended.
enum Round<IO> {
    /// The connection is over (closed by either side, shut down, or upgraded).
    Done,
    /// Parked: the server state was released; resume with these bytes already read.
    Parked(IO, Bytes),
}

pub(super) async fn serve_http1<IO: Parkable>(
    mut stream: IO,
    mut prefix: Bytes,
    service: super::BoxedService,
    info: &ConnInfo,
    idle: Duration,
    parked: &Gauge,
    shutdown: &mut watch::Receiver<bool>,
) {
    // No parking before the first request: until then hyper's header-read timer
    // (`client_header`) bounds how long a silent or slow client may hold the connection.
    let mut first = true;
    loop {
        // Boxed (one allocation per round, not per request) so that a parked connection's
        // task has no room for a round's state; not bound to a name, which would keep that
        // room in this future across the `.await`.
        let round = Box::pin(serve_round(
            stream,
            prefix,
            service.clone(),
            info,
            idle,
            first,
            shutdown,
        ))
        .await;
        first = false;
        match round {
            Round::Done => return,
            Round::Parked(s, leftover) => {
                stream = s;
                prefix = leftover;
            }
        }
        if !prefix.is_empty() || stream.buffered() {
            continue;
        }
        // Parked: only the socket is held until the client speaks again.
        let wait_until = tokio::time::Instant::now() + idle.saturating_sub(PARK_AFTER);
        parked.inc();
        let resume = tokio::select! {
            ready = std::future::poll_fn(|cx| stream.poll_readable(cx)) => ready.is_ok(),
            () = tokio::time::sleep_until(wait_until) => false,
            changed = shutdown.changed() => !(changed.is_err() || *shutdown.borrow()),
        };
        parked.dec();
        if !resume {
            return;
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve_round<IO: Parkable>(
    stream: IO,
    prefix: Bytes,
    service: super::BoxedService,
    info: &ConnInfo,
    idle: Duration,
    first: bool,
    shutdown: &mut watch::Receiver<bool>,
) -> Round<IO> {
    let activity = &info.activity;
    // Resuming with bytes already read (a request head cut by the last park) must not park
    // again before a request starts: otherwise each round would restart hyper's header-read
    // timer and a client dribbling a head byte by byte would never be cut off.
    let resumed_mid_head = first || !prefix.is_empty();
    let round_start = activity.mark();
    // Boxed so a parked connection's task does not keep room for the server state.
    // The settings of the current snapshot (a reload applies from the next round on).
    let mut conn = Box::pin({
        let snapshot = service.shared.snapshots.load();
        // Parser errors answered with the gateway's JSON body (see `parser_errors`).
        let io = ParserErrors::new(
            Rewind::new(prefix, stream),
            snapshot.server.request_id_header.clone(),
        );
        super::http1_builder(&snapshot).serve_connection(TokioIo::new(io), service)
    });
    let mut closing = *shutdown.borrow();
    if closing {
        conn.as_mut().graceful_shutdown();
    }
    let mut parking: Option<u64> = None;
    let mut mark = activity.mark();
    let timer = tokio::time::sleep(PARK_AFTER);
    tokio::pin!(timer);
    let mut quiet_for = Duration::ZERO;
    let result = loop {
        tokio::select! {
            result = std::future::poll_fn(|cx| conn.as_mut().poll_without_shutdown(cx)) => break result,
            changed = shutdown.changed(), if !closing => {
                if changed.is_err() || *shutdown.borrow() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            // Ticks for as long as the round lasts: hyper checks its header-read deadline only
            // when polled (see `head_timer`), and a tick is what polls it while a head is late.
            () = &mut timer => {
                timer.as_mut().reset(tokio::time::Instant::now() + PARK_AFTER);
                let may_park = !resumed_mid_head || activity.mark() != round_start;
                if closing || parking.is_some() {
                    // Decided already; only hyper's deadline may still need checking.
                } else if may_park && activity.idle_since(mark) {
                    quiet_for += PARK_AFTER;
                    if quiet_for >= idle {
                        // Idle for the whole idle timeout while never parked (e.g. a request
                        // head still arriving): close.
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    } else {
                        // hyper ends an idle HTTP/1 connection at once when keep-alive is
                        // turned off, and returns its parts without closing the socket.
                        parking = Some(mark);
                        conn.as_mut().graceful_shutdown();
                    }
                } else {
                    quiet_for = Duration::ZERO;
                    mark = activity.mark();
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
        return Round::Done;
    }
    let parts = std::pin::Pin::into_inner(conn).into_parts();
    let (stream_side, unread_prefix) = parts.io.into_inner().into_inner().into_parts();
    if let Some(upstream) = info.take_upgrade() {
        let mut read = BytesMut::from(&unread_prefix[..]);
        read.extend_from_slice(&parts.read_buf);
        crate::upgrade::tunnel(Rewind::new(read.freeze(), stream_side), upstream);
        return Round::Done;
    }
    match parking {
        // A request arrived after parking began: hyper answered it with keep-alive off
        // (`Connection: close`), so the connection must end.
        Some(at) if !closing && activity.mark() == at => {
            let mut leftover = BytesMut::from(&unread_prefix[..]);
            leftover.extend_from_slice(&parts.read_buf);
            Round::Parked(stream_side, leftover.freeze())
        }
        _ => Round::Done,
    }
}
