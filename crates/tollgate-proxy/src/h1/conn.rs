//! The state machine of one HTTP/1.1 client connection: request heads in, the request's
//! future polled in this task, its body fed on demand, the response written as it comes, and
//! the next request (pipelined or not) after it.
//!
//! Everything is driven from [`Conn::poll`]; there is no task or channel per request. Reading,
//! the handler and writing all make progress in the same poll, so an upload that is still
//! arriving while its response already streams out (an upstream that answers early) works,
//! and a client that stops reading stops the response body from being polled (backpressure).

use std::convert::Infallible;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{HeaderName, Response, StatusCode};
use http_body::Body;
use hyper::upgrade::OnUpgrade;
use tokio::io::{AsyncRead, AsyncWrite};
use tollgate_plugin_api::{GatewayError, PeerBody, streamed};
use tollgate_upstream::codec::{BodyDecoder, BodyFraming as Decoding, Out, SEGMENTS};

use super::feed::{DRAIN_LIMIT, Feed, FeedStep, poll_feed};
use super::request::{self, BodyFraming, Head, HeadError};
use super::response::{self, Answering, BodyOut};
use super::write::{Writing, poll_body};
use crate::conn::ConnInfo;
use crate::response_body::ResponseBody;
use crate::server::Shared;

/// First read buffer: a typical request head fits.
const FIRST_READ: usize = 4096;
/// Read size while a request body streams in.
const BODY_READ: usize = 16 * 1024;

/// What the connection calls for each request (`crate::handler::handle`).
pub(super) type Handler<F> = fn(http::request::Parts, PeerBody, Arc<Shared>, Arc<ConnInfo>) -> F;

/// How a connection ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Drop it: the client closed or failed, or a response could not be completed.
    Abort,
    /// Close the sending side, then drop it (`Connection: close`, shutdown).
    Shutdown,
    /// Close the sending side and drain what the client still sends before dropping it: the
    /// client may be sending still (an unread body, a refused head), and unread bytes would
    /// make the kernel answer with a reset that can destroy the response just written.
    Linger,
    /// A `101` was written: the connection now belongs to the upgraded protocol, tunnelled
    /// to the upstream's side of it.
    Upgrade(OnUpgrade),
}

/// One connection's HTTP/1.1 state. `F` is the handler's future.
pub(super) struct Conn<IO, F> {
    pub(super) io: IO,
    /// Bytes read and not yet consumed.
    pub(super) rbuf: BytesMut,
    out: Out,
    /// Where heads and chunk lines are encoded before they are queued in `out`.
    scratch: BytesMut,
    needs_flush: bool,
    exchange: Option<Exchange>,
    /// Close once the output is written: an answer the connection wrote itself.
    close_after_flush: bool,
    /// Shutdown: no new request is started.
    closing: bool,
    /// The connection answered a refused head itself.
    answered: bool,
    /// The header map of the last response, kept for the next request's fields.
    spare_headers: Option<http::HeaderMap>,
    /// Requests started on this connection (compared between timer ticks).
    pub(super) started: u64,
    max_headers: usize,
    max_head_bytes: usize,
    request_id_header: HeaderName,
    shared: Arc<Shared>,
    info: Arc<ConnInfo>,
    handler: Handler<F>,
    /// The request's future while it runs. One allocation per round, reused by every request
    /// of the round: a request's future is over a kilobyte, past `malloc`'s fast path.
    handling: Pin<Box<Option<F>>>,
}

/// Polls `future`, setting `pending` when it returns `Pending`.
#[inline]
fn poll_noting_pending<F: Future>(
    future: Pin<&mut F>,
    cx: &mut Context<'_>,
    pending: &mut bool,
) -> Poll<F::Output> {
    let polled = future.poll(cx);
    *pending |= polled.is_pending();
    polled
}

/// Sources that returned `Pending` in the current [`Conn::poll`].
#[derive(Default)]
struct Blocked {
    /// The client socket.
    read: bool,
    /// The handler's future.
    handler: bool,
}

/// The request in flight.
struct Exchange {
    /// The handler's future (in [`Conn::handling`]) has not produced the response yet.
    handling: bool,
    /// The request body, while there is more of it to read.
    feed: Option<Feed>,
    answering: Answering,
    /// The client asked to switch protocols.
    upgrade: bool,
    /// The upstream's side of a switch, once its `101` is being written.
    upgraded: Option<OnUpgrade>,
    /// The response body being written, once the head is queued.
    writing: Option<Writing>,
    /// The whole response is queued in `out`.
    done: bool,
}

impl<IO, F> Conn<IO, F>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    F: Future<Output = Result<Response<ResponseBody>, Infallible>>,
{
    pub(super) fn new(
        io: IO,
        prefix: Bytes,
        shared: Arc<Shared>,
        info: Arc<ConnInfo>,
        handler: Handler<F>,
    ) -> Self {
        let (max_headers, max_head_bytes, request_id_header) = {
            let snapshot = shared.snapshots.load();
            let server = &snapshot.server;
            (
                server.limits.max_headers,
                server.limits.max_header_bytes,
                server.request_id_header.clone(),
            )
        };
        let mut rbuf = BytesMut::with_capacity(FIRST_READ.max(prefix.len()));
        rbuf.extend_from_slice(&prefix);
        Self {
            io,
            rbuf,
            out: Out::default(),
            scratch: BytesMut::new(),
            needs_flush: false,
            exchange: None,
            close_after_flush: false,
            closing: false,
            answered: false,
            spare_headers: None,
            started: 0,
            max_headers,
            max_head_bytes,
            request_id_header,
            shared,
            info,
            handler,
            handling: Box::pin(None),
        }
    }

    /// Nothing in flight, nothing buffered either way: the connection may be parked.
    pub(super) fn is_idle(&self) -> bool {
        self.exchange.is_none()
            && self.rbuf.is_empty()
            && self.out.is_empty()
            && !self.close_after_flush
    }

    /// Waiting for (the rest of) a request head.
    pub(super) fn in_head(&self) -> bool {
        self.exchange.is_none() && !self.close_after_flush
    }

    /// Stops taking requests: an idle connection closes, a busy one after its response.
    pub(super) fn begin_shutdown(&mut self) {
        self.closing = true;
        if let Some(ex) = &mut self.exchange {
            ex.answering.keep_alive = false;
        }
    }

    /// The request head did not arrive within `client_header`: answer 408 and close (a
    /// connection that sent nothing at all is closed without an answer).
    pub(super) fn head_timed_out(&mut self) {
        if self.in_head() && self.rbuf.is_empty() {
            self.close_after_flush = true;
        } else if self.in_head() {
            self.answer(&GatewayError::downstream(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request head did not arrive in time",
            ));
        }
    }

    pub(super) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        // A source that returned `Pending` has registered this task's waker: whatever it
        // waits for wakes the task, so within this call it is not polled again (another loop
        // turn would find it where it was, through the whole chain of the request's future
        // down to the upstream socket). The handler is polled again after the request body
        // feed handed it something, which it may be waiting for.
        let mut blocked = Blocked::default();
        loop {
            let mut progress = false;
            if self.exchange.is_none() && !self.close_after_flush {
                if self.closing {
                    self.close_after_flush = true;
                } else if !self.rbuf.is_empty() {
                    match request::parse(
                        &mut self.rbuf,
                        self.max_headers,
                        self.max_head_bytes,
                        &mut self.spare_headers,
                    ) {
                        Ok(Some(head)) => {
                            self.start(head);
                            blocked.handler = false;
                            progress = true;
                        }
                        Ok(None) => {}
                        Err(e) => {
                            self.refuse(e);
                            progress = true;
                        }
                    }
                }
            }
            if self.exchange.is_some() {
                match self.poll_exchange(cx, &mut blocked.handler) {
                    Ok(p) => progress |= p,
                    Err(()) => return Poll::Ready(Outcome::Abort),
                }
            }
            match self.poll_write(cx) {
                Poll::Ready(Ok(wrote)) => progress |= wrote,
                Poll::Ready(Err(_)) => return Poll::Ready(Outcome::Abort),
                Poll::Pending => {}
            }
            let written = self.out.is_empty() && !self.needs_flush;
            if written
                && let Some(ex) = self.exchange.as_mut()
                && ex.done
            {
                if let Some(feed) = ex.feed.as_mut().filter(|_| ex.answering.keep_alive) {
                    // The rest of the body stands between this response and the next
                    // request: read and drop it (bounded), then go on.
                    if feed.drain.is_none() {
                        feed.drain = Some(DRAIN_LIMIT);
                        feed.continue_pending = false;
                        progress = true;
                    }
                } else {
                    if let Some(outcome) = self.finish_exchange() {
                        return Poll::Ready(outcome);
                    }
                    progress = true;
                }
            }
            if written && self.close_after_flush {
                return Poll::Ready(if self.answered || !self.rbuf.is_empty() {
                    Outcome::Linger
                } else {
                    Outcome::Shutdown
                });
            }
            if !blocked.read && self.wants_read() {
                if self.rbuf.capacity() - self.rbuf.len() < 1024 {
                    let more = if self.exchange.as_ref().is_some_and(|ex| ex.feed.is_some()) {
                        BODY_READ
                    } else {
                        FIRST_READ
                    };
                    self.rbuf.reserve(more);
                }
                match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.rbuf) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                        // The client closed (or failed). Whatever was in flight is abandoned,
                        // as the client can no longer read the answer (no half-close).
                        return Poll::Ready(Outcome::Abort);
                    }
                    Poll::Ready(Ok(_)) => progress = true,
                    Poll::Pending => blocked.read = true,
                }
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }

    /// Whether to read from the socket now: for a head, for body the consumer asked for, or
    /// (while a request is handled) to notice the client closing, up to a bounded buffer.
    fn wants_read(&self) -> bool {
        if self.close_after_flush {
            return false;
        }
        let cap = self.max_head_bytes.max(BODY_READ);
        match &self.exchange {
            // A head larger than the limit is refused by the parser.
            None => true,
            // The body decoder bounds what it waits for (chunk lines, trailers).
            Some(Exchange {
                feed: Some(feed), ..
            }) => feed.needs_read,
            Some(_) => self.rbuf.len() < cap,
        }
    }

    fn start(&mut self, head: Head) {
        self.started += 1;
        let Head {
            mut parts,
            framing,
            keep_alive,
            expect_continue,
            upgrade,
        } = head;
        let (feed, body) = match framing {
            BodyFraming::None => (None, PeerBody::Empty),
            BodyFraming::Length(n) => {
                let (tx, rx) = streamed(Some(n));
                let decoder = BodyDecoder::new(Decoding::Length(n));
                (Some((decoder, tx)), rx.into())
            }
            BodyFraming::Chunked => {
                let (tx, rx) = streamed(None);
                let decoder = BodyDecoder::new(Decoding::Chunked);
                (Some((decoder, tx)), rx.into())
            }
        };
        if upgrade {
            parts.extensions.insert(super::ClientUpgrade);
        }
        let answering = Answering {
            head_request: parts.method == http::Method::HEAD,
            http10: parts.version == http::Version::HTTP_10,
            keep_alive: keep_alive && !self.closing,
        };
        self.handling.set(Some((self.handler)(
            parts,
            body,
            self.shared.clone(),
            self.info.clone(),
        )));
        self.exchange = Some(Exchange {
            handling: true,
            feed: feed.map(|(decoder, tx)| Feed {
                decoder,
                tx,
                continue_pending: expect_continue,
                needs_read: false,
                unsent: None,
                drain: None,
            }),
            answering,
            upgrade,
            upgraded: None,
            writing: None,
            done: false,
        });
    }

    /// Advances the request in flight; the handler's future is polled unless it returned
    /// `Pending` already in this [`Conn::poll`] (`handler_blocked`) with nothing fed to it
    /// since. `Err`: abort the connection.
    fn poll_exchange(
        &mut self,
        cx: &mut Context<'_>,
        handler_blocked: &mut bool,
    ) -> Result<bool, ()> {
        let Some(ex) = self.exchange.as_mut() else {
            return Ok(false);
        };
        let mut progress = false;
        if ex.handling
            && !*handler_blocked
            && let Some(handling) = self.handling.as_mut().as_pin_mut()
            && let Poll::Ready(result) = poll_noting_pending(handling, cx, handler_blocked)
        {
            ex.handling = false;
            self.handling.set(None);
            let response = match result {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let (mut parts, mut body) = response.into_parts();
            if ex.upgrade && parts.status == StatusCode::SWITCHING_PROTOCOLS {
                ex.upgraded = parts.extensions.remove::<OnUpgrade>();
            }
            if let Some(feed) = &mut ex.feed {
                // Whether the connection can carry another request once this one is answered
                // depends on the rest of the body: a client told to wait for `100 Continue`
                // that never came may or may not send it, and a body nobody will read must
                // be small enough to drain. Otherwise the response says `connection: close`.
                let unsure = feed.continue_pending
                    || (feed.tx.is_dropped()
                        && feed.decoder.remaining().is_none_or(|n| n > DRAIN_LIMIT));
                if unsure {
                    ex.answering.keep_alive = false;
                }
                // Answered without the body: the client must not be invited to send it.
                feed.continue_pending = false;
            }
            let id_field = body.take_id_field();
            let (framing, keep_alive) = response::head(
                &parts,
                id_field.as_ref(),
                &body.size_hint(),
                body.is_end_stream(),
                ex.answering,
                &mut self.scratch,
            );
            // A `101` without an upstream to switch to (none was asked for, or a policy
            // answered it) cannot be followed by more HTTP on this connection.
            ex.answering.keep_alive = keep_alive
                && (parts.status != StatusCode::SWITCHING_PROTOCOLS || ex.upgraded.is_some());
            self.spare_headers = tollgate_upstream::recycle::keep(parts.headers);
            self.out.push(self.scratch.split().freeze());
            if framing == BodyOut::None {
                ex.done = true;
            } else {
                ex.writing = Some(Writing {
                    body,
                    framing,
                    left: match framing {
                        BodyOut::Length(n) => n,
                        _ => 0,
                    },
                });
            }
            progress = true;
        }
        if !ex.done
            && let Some(w) = &mut ex.writing
        {
            progress |= poll_body(w, &mut ex.done, &mut self.out, &mut self.scratch, cx)?;
        }
        if let Some(feed) = &mut ex.feed {
            let responding = ex.writing.is_some() || ex.done;
            let step = poll_feed(feed, &mut self.rbuf, &mut self.out, responding, cx);
            if !matches!(step, FeedStep::Waiting) {
                *handler_blocked = false;
            }
            match step {
                FeedStep::Waiting => {}
                FeedStep::Progress => progress = true,
                FeedStep::Finished => {
                    ex.feed = None;
                    progress = true;
                }
                FeedStep::Failed => {
                    // The consumer got the error; the connection cannot be trusted after it.
                    ex.feed = None;
                    ex.answering.keep_alive = false;
                    progress = true;
                }
            }
        }
        Ok(progress)
    }

    /// The response is written: go on with the next request, or end the connection.
    fn finish_exchange(&mut self) -> Option<Outcome> {
        let ex = self.exchange.take()?;
        if let Some(upstream) = ex.upgraded {
            return Some(Outcome::Upgrade(upstream));
        }
        if ex.feed.is_some() {
            // The body was not all read and will not be: the client may still be sending it.
            return Some(Outcome::Linger);
        }
        if !ex.answering.keep_alive {
            return Some(if self.rbuf.is_empty() {
                Outcome::Shutdown
            } else {
                Outcome::Linger
            });
        }
        None
    }

    /// Queues the gateway's answer to a head it refuses, then closes.
    fn refuse(&mut self, e: HeadError) {
        let limits = (self.max_headers, self.max_head_bytes);
        self.answer(&match e {
            HeadError::Malformed(what) => GatewayError::downstream(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("malformed HTTP request: {what}"),
            ),
            HeadError::TooLarge => GatewayError::downstream(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                format!("the request head is larger than {} bytes", limits.1),
            ),
            HeadError::TooManyHeaders => GatewayError::downstream(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                format!("the request has more than {} header fields", limits.0),
            ),
            HeadError::UriTooLong => GatewayError::downstream(
                StatusCode::URI_TOO_LONG,
                "uri_too_long",
                "the request target is too long",
            ),
        });
    }

    /// Queues a JSON error answer with a fresh request id and closes after it.
    fn answer(&mut self, error: &GatewayError) {
        let id = crate::request_id::generate();
        let body = crate::error::error_body(error, &id);
        response::own_head(
            error.status,
            &[
                (b"content-type", b"application/json"),
                (self.request_id_header.as_str().as_bytes(), id.as_bytes()),
            ],
            body.len(),
            &mut self.scratch,
        );
        self.rbuf.clear();
        self.out.push(self.scratch.split().freeze());
        self.out.push(body);
        self.close_after_flush = true;
        self.answered = true;
    }

    /// Writes what is queued, then flushes. `Ready(Ok(true))`: bytes were written.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let mut wrote = false;
        while !self.out.is_empty() {
            let mut slices = [IoSlice::new(&[]); SEGMENTS];
            let n = self.out.slices(&mut slices);
            match Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..n]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(written)) => {
                    self.out.advance(written);
                    self.needs_flush = true;
                    wrote = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending if wrote => return Poll::Ready(Ok(true)),
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.needs_flush {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.needs_flush = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    return if wrote {
                        Poll::Ready(Ok(true))
                    } else {
                        Poll::Pending
                    };
                }
            }
        }
        Poll::Ready(Ok(wrote))
    }
}
