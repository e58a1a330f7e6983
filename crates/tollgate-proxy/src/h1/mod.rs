//! Tollgate's own HTTP/1.1 server (RFC 9112), for plain and TLS client connections alike.
//!
//! hyper still serves HTTP/2. For HTTP/1.1 its server ran a dispatcher per connection that
//! talks to the request through a body channel and keeps two 8 KiB buffers for as long as the
//! connection is being served; on a proxy's short request/response exchanges that machinery was
//! the largest part of the user-space work per request. Here the connection's task parses the
//! head ([`request`]), polls the request's future itself, feeds the request body on demand, and
//! writes the response head and body with vectored writes ([`response`], [`mod@write`]), in one
//! state machine ([`conn`]); the request body goes to its consumer only when asked for
//! ([`feed`]).
//!
//! Its own parser also means its own rules for bad input, where hyper's were fixed: both
//! `Content-Length` and `Transfer-Encoding` is refused with `400` rather than framed by the
//! latter, and every refusal carries the gateway's JSON error body and a request id.
//!
//! A connection quiet for [`PARK_AFTER`] is *parked*: the round's state (read buffer, timers)
//! is dropped and only the socket is kept until the client sends again, the way nginx frees
//! the buffers of idle keep-alive connections. A plain connection's socket then goes to its
//! worker's lot ([`crate::conn`]) and its task ends; a TLS connection waits in its task.

mod conn;
mod feed;
mod request;
mod response;
mod write;

use std::future::{Future, poll_fn};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use self::conn::{Conn, Outcome};
use crate::conn::{ConnInfo, PARK_AFTER, Parkable, Timeouts};
use crate::rewind::Rewind;
use crate::server::Shared;

/// Marks a request whose client asked to switch protocols on a connection that can be handed
/// over (the proxy then forwards the upgrade).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientUpgrade;

/// How long, and how much, a closing connection drains what the client still sends.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 1024 * 1024;

/// What woke a round's loop.
enum Event {
    /// The connection is over.
    Done(Outcome),
    /// The shutdown signal changed.
    Shutdown,
    /// The round's tick.
    Tick,
}

/// Why one round of serving ended.
enum Round<IO> {
    /// The connection is over.
    Done,
    /// Parked: quiet, with nothing buffered.
    Parked(IO),
}

/// Serves HTTP/1.1 on `stream` until the connection ends; `prefix` holds bytes read already.
/// Parked connections wait in this task (TLS connections, whose session lives above the
/// socket, and plain ones when the worker's lot is gone).
pub(crate) async fn serve<IO: Parkable>(
    mut stream: IO,
    prefix: Bytes,
    shared: &Arc<Shared>,
    info: &Arc<ConnInfo>,
    timeouts: Timeouts,
    parked: &Gauge,
    shutdown: &mut watch::Receiver<bool>,
) {
    let mut prefix = prefix;
    // The first request's head is bounded by `client_header` from the start.
    let mut first = true;
    loop {
        let Some(s) =
            serve_until_parked(stream, prefix, shared, info, timeouts, first, shutdown).await
        else {
            return;
        };
        stream = s;
        first = false;
        prefix = Bytes::new();
        if !wait_parked(&stream, timeouts, parked, shutdown).await {
            return;
        }
    }
}

/// Serves HTTP/1.1 on `stream` until the connection ends (`None`) or is parked: quiet for
/// [`PARK_AFTER`], with nothing buffered (the stream is returned). `first`: the connection's
/// first request is expected, and its head is bounded by `client_header` from the start.
pub(crate) async fn serve_until_parked<IO: Parkable>(
    mut stream: IO,
    mut prefix: Bytes,
    shared: &Arc<Shared>,
    info: &Arc<ConnInfo>,
    timeouts: Timeouts,
    mut first: bool,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<IO> {
    loop {
        // Boxed (one allocation per round, not per request) so that the connection's task
        // has no room for a round's state; not bound to a name, which would keep that room in
        // this future across the `.await`.
        let round = Box::pin(serve_round(
            stream, prefix, shared, info, timeouts, first, shutdown,
        ))
        .await;
        first = false;
        prefix = Bytes::new();
        match round {
            Round::Done => return None,
            Round::Parked(s) => stream = s,
        }
        if !stream.buffered() {
            return Some(stream);
        }
    }
}

/// Waits in the connection's task, holding only the socket, until the client speaks again
/// (true), or the idle timeout passes or the process shuts down (false).
pub(crate) async fn wait_parked<IO: Parkable>(
    stream: &IO,
    timeouts: Timeouts,
    parked: &Gauge,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let wait_until = tokio::time::Instant::now() + timeouts.idle.saturating_sub(PARK_AFTER);
    parked.inc();
    let resume = tokio::select! {
        ready = poll_fn(|cx| stream.poll_readable(cx)) => ready.is_ok(),
        () = tokio::time::sleep_until(wait_until) => false,
        changed = shutdown.changed() => !(changed.is_err() || *shutdown.borrow()),
    };
    parked.dec();
    resume
}

async fn serve_round<IO: Parkable>(
    stream: IO,
    prefix: Bytes,
    shared: &Arc<Shared>,
    info: &Arc<ConnInfo>,
    timeouts: Timeouts,
    first: bool,
    shutdown: &mut watch::Receiver<bool>,
) -> Round<IO> {
    let mut conn = Conn::new(
        stream,
        prefix,
        shared.clone(),
        info.clone(),
        crate::handler::handle,
    );
    // A round that starts inside a head (the first request, or bytes read before parking)
    // counts its time against `client_header` at once.
    let mut head_open = first || !conn.rbuf.is_empty();
    let mut head_wait = Duration::ZERO;
    let mut closing = *shutdown.borrow();
    if closing {
        conn.begin_shutdown();
    }
    let mut mark = conn.started;
    let timer = tokio::time::sleep(PARK_AFTER);
    tokio::pin!(timer);
    // Whether the timer was polled (holds this task's waker) since it was last set: from then
    // on, until it fires, a wake-up only checks its state (one atomic load) instead of polling
    // it, which also re-registers the waker and spends coop budget.
    let mut timer_armed = false;
    let outcome = loop {
        // One poll function rather than `select!`: the shutdown signal is a version check on
        // each wake-up (an atomic load), not a `changed()` future whose every poll takes the
        // watch's waiter lock. An idle connection notices shutdown at the next tick at the
        // latest; a busy one at its next wake-up, before the connection is polled, so that a
        // response written then already says `connection: close`.
        let event = poll_fn(|cx| {
            if !closing && shutdown.has_changed().unwrap_or(true) {
                return Poll::Ready(Event::Shutdown);
            }
            if let Poll::Ready(outcome) = conn.poll(cx) {
                return Poll::Ready(Event::Done(outcome));
            }
            if timer_armed {
                return if timer.is_elapsed() {
                    Poll::Ready(Event::Tick)
                } else {
                    Poll::Pending
                };
            }
            match timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Event::Tick),
                Poll::Pending => {
                    timer_armed = true;
                    Poll::Pending
                }
            }
        })
        .await;
        match event {
            Event::Done(outcome) => break outcome,
            Event::Shutdown => {
                // A closed channel means the server is gone: shut down too.
                let closed = shutdown.has_changed().is_err();
                if closed || *shutdown.borrow_and_update() {
                    closing = true;
                    conn.begin_shutdown();
                }
            }
            // Ticks for as long as the round lasts: deadlines of the request in flight
            // (the upstream response timeout) are checked when polled, and a tick polls them.
            Event::Tick => {
                timer
                    .as_mut()
                    .reset(tokio::time::Instant::now() + PARK_AFTER);
                timer_armed = false;
                if !conn.in_head() || conn.started != mark {
                    // A request began since the last tick: any head wait starts over.
                    head_open = false;
                    head_wait = Duration::ZERO;
                }
                head_open |= conn.in_head() && !conn.rbuf.is_empty();
                if head_open {
                    head_wait += PARK_AFTER;
                    if head_wait >= timeouts.header {
                        conn.head_timed_out();
                    }
                } else if conn.is_idle() && conn.started == mark && !closing {
                    return Round::Parked(conn.io);
                }
                mark = conn.started;
            }
        }
    };
    match outcome {
        Outcome::Upgrade(upstream) => {
            let read = conn.rbuf.split().freeze();
            crate::upgrade::tunnel(Rewind::new(read, conn.io), upstream);
        }
        Outcome::Linger => linger(conn.io).await,
        Outcome::Shutdown => {
            let mut io = conn.io;
            let _ = tokio::time::timeout(LINGER, io.shutdown()).await;
        }
        Outcome::Abort => {}
    }
    Round::Done
}

/// Closes the sending side, then drains what the client still sends (bounded in time and
/// bytes) until it closes too, so the answer just written is not destroyed by a reset.
async fn linger<IO: Parkable>(mut io: IO) {
    let drain = async {
        if io.shutdown().await.is_err() {
            return;
        }
        let mut sink = [0u8; 4096];
        let mut total = 0;
        while total < LINGER_BYTES {
            match io.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}
