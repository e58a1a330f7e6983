//! Plain-text connections: telling HTTP/2 with prior knowledge from HTTP/1.1, serving the
//! former; and the streams an HTTP/1.1 connection can be parked on (plain and TLS).

use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::ConnInfo;
use super::driver;
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
pub(crate) trait Parkable:
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
