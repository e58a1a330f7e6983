//! Driving a served connection to its end: idle timeout and graceful shutdown.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::watch;

use super::Activity;

/// Connection timeouts taken from the snapshot when the connection was accepted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// Close after this long without a request.
    pub(crate) idle: Duration,
    /// Time for a TLS handshake, the first bytes of a connection, or a request head once
    /// begun.
    pub(crate) header: Duration,
}

/// A hyper connection future that can be asked to finish gracefully.
pub(super) trait Graceful: Future<Output = hyper::Result<()>> {
    fn begin_graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S, B, E> Graceful for hyper::server::conn::http2::Connection<I, S, E>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn begin_graceful_shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Runs `conn` until it ends; starts a graceful shutdown when the process shuts down or when a
/// whole `idle` period passes with nothing in flight and no new request (so an idle
/// connection closes after one to two periods of silence).
pub(super) async fn drive<C: Graceful>(
    conn: C,
    activity: &Activity,
    idle: Duration,
    shutdown: &mut watch::Receiver<bool>,
) {
    tokio::pin!(conn);
    let mut closing = *shutdown.borrow();
    if closing {
        conn.as_mut().begin_graceful_shutdown();
    }
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
                    conn.as_mut().begin_graceful_shutdown();
                }
            }
            () = &mut idle_timer, if !closing => {
                if activity.idle_since(mark) {
                    closing = true;
                    conn.as_mut().begin_graceful_shutdown();
                } else {
                    mark = activity.mark();
                    idle_timer.as_mut().reset(tokio::time::Instant::now() + idle);
                }
            }
        }
    }
}
