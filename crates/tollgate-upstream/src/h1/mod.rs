//! Tollgate's own HTTP/1.1 client for upstream requests.
//!
//! hyper's client runs each connection as a task that the request talks to through channels
//! (a request queue, a response oneshot, a body channel), and keeps two 8 KiB buffers per
//! connection for as long as the connection lives, idle or not. For a proxy that sends one
//! request at a time per connection, that is most of the cost of the upstream side. Here the
//! request's own future writes the request and reads the response on the connection it checked
//! out; a small response arrives whole with its head and is handed over as one buffer, and the
//! connection goes back to the idle pool at once. An idle connection is only its socket.
//!
//! Protocol upgrades (WebSocket) still go through hyper, whose upgrade handle the proxy's
//! tunnelling uses; they do not reuse connections anyway.

mod body;
mod body_decoder;
mod decode;
mod encode;
mod exchange;
mod out;
#[cfg(test)]
mod tests;

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Poll, ready};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Request, Response};
use tollgate_plugin_api::ProxyBody;

pub use decode::ProtocolError;

/// The pieces of the HTTP/1.1 codec the proxy's own server shares with this client: body
/// decoding (length and chunked, with trailers), vectored output, length parsing, header
/// values from parsed heads.
pub mod codec {
    pub use super::body_decoder::{BodyDecoder, Decoded};
    pub use super::decode::{BodyFraming, parsed_value};
    pub use super::encode::{ConnectionOptions, Lengths, ends_with_chunked, parse_decimal};
    pub use super::out::{Out, SEGMENTS};
}
pub use encode::EncodeError;
pub use exchange::ExchangeError;

use self::body_decoder::BodyDecoder;
use self::decode::BodyFraming;
use self::encode::Framing;
use self::exchange::{Exchange, Sending};
use crate::io::Io;
use crate::pool::WorkerSlot;

/// Where a connection goes when its exchange ends cleanly.
#[derive(Debug)]
pub(crate) struct Checkin {
    pub(crate) slot: Arc<WorkerSlot>,
    pub(crate) max_idle: usize,
    /// When the connection became idle: the end of the body for a streamed response; for one
    /// read whole with its head, the exchange's start (earlier by the upstream's response time,
    /// so such a connection is at worst checked or expired early, never late; not worth a
    /// clock read per request).
    pub(crate) since: Instant,
}

impl Checkin {
    /// Returns `io` to the idle pool, unless the pool is full.
    pub(crate) fn put(self, io: Io) {
        if let Ok(mut idle) = self.slot.lock()
            && idle.http1.len() < self.max_idle
        {
            idle.http1.push_back((io, self.since));
        }
    }
}

/// A request encoded and ready to send.
#[derive(Debug)]
pub(crate) struct Prepared {
    head: Bytes,
    /// The rest of the buffer `head` was encoded into: the response is read into it.
    rbuf: BytesMut,
    body: ProxyBody,
    framing: Framing,
    method: Method,
    /// The request's header map, encoded already: reused for the response's fields.
    spare: HeaderMap,
}

impl Prepared {
    /// Encodes the head of `req`, with `overrides` replacing its fields of their names.
    pub(crate) fn new(
        req: Request<ProxyBody>,
        overrides: &crate::Overrides<'_>,
    ) -> Result<Self, EncodeError> {
        let (parts, body) = req.into_parts();
        let mut rbuf = crate::recycle::buffer(exchange::FIRST_READ);
        let framing = encode::head(&parts, &body, overrides, &mut rbuf)?;
        Ok(Self {
            head: rbuf.split().freeze(),
            rbuf,
            body,
            framing,
            method: parts.method,
            spare: parts.headers,
        })
    }

    /// Whether the request could be sent again if a connection closed before answering:
    /// idempotent and without a body (RFC 9110 §9.2.2).
    pub(crate) fn replayable(&self) -> bool {
        self.framing == Framing::Empty && encode::is_idempotent(&self.method)
    }

    /// What it takes to send this request again: a replayable request is its head alone.
    fn copy(&self) -> Replay {
        Replay {
            head: self.head.clone(),
            method: self.method.clone(),
        }
    }
}

/// A replayable request kept while its first attempt runs.
#[derive(Debug)]
struct Replay {
    head: Bytes,
    method: Method,
}

impl Replay {
    fn into_prepared(self) -> Prepared {
        Prepared {
            head: self.head,
            rbuf: BytesMut::new(),
            body: ProxyBody::Empty,
            framing: Framing::Empty,
            method: self.method,
            spare: HeaderMap::new(),
        }
    }
}

/// A failed exchange, with the request when it can be sent again on another connection.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) error: ExchangeError,
    pub(crate) retry: Option<Prepared>,
}

/// Sends `req` on `io` and waits for the response head. With `may_retry` (a reused
/// connection and a replayable request), a connection that closes or fails before any byte of
/// the response gives the request back in [`Failed::retry`].
///
/// The exchange is set up before the returned future is first polled, and the future is a
/// poll function over it: an `async fn` would keep its arguments besides the exchange built
/// from them, for as long as it runs.
pub(crate) fn send(
    io: Io,
    req: Prepared,
    checkin: Checkin,
    may_retry: bool,
) -> impl Future<Output = Result<Response<ProxyBody>, Failed>> + Send {
    let mut retry = may_retry.then(|| req.copy());
    let head_request = req.method == Method::HEAD;
    let mut running = Some((
        Exchange::new(
            io,
            req.head,
            req.body,
            req.framing,
            head_request,
            req.rbuf,
            req.spare,
        ),
        checkin,
    ));
    poll_fn(move |cx| {
        // Not polled again once it returned.
        let Some((exchange, _)) = running.as_mut() else {
            return Poll::Pending;
        };
        let polled = ready!(exchange.poll_head(cx));
        let Some((exchange, checkin)) = running.take() else {
            return Poll::Pending;
        };
        Poll::Ready(match polled {
            Ok(head) => Ok(respond(exchange, head, checkin)),
            Err(error) => {
                let retry = match error {
                    ExchangeError::Io(_) | ExchangeError::Closed if !exchange.read_any => {
                        retry.take().map(Replay::into_prepared)
                    }
                    _ => None,
                };
                Err(Failed { error, retry })
            }
        })
    })
}

/// The response for `head`. A body that is already read whole (the common small response) is
/// handed over as one buffer and the connection is pooled at once; any other body streams.
fn respond(mut exchange: Exchange, head: decode::Head, checkin: Checkin) -> Response<ProxyBody> {
    let decode::Head {
        parts,
        framing,
        keep_alive,
    } = head;
    let body = match framing {
        BodyFraming::Length(n)
            if exchange.sending == Sending::Done && exchange.rbuf.len() as u64 >= n =>
        {
            // `n` is at most the buffered length, so it fits in usize.
            let data = exchange.rbuf.split_to(n as usize).freeze();
            if keep_alive && exchange.is_clean() {
                checkin.put(exchange.io);
            }
            crate::recycle::keep_buffer(exchange.rbuf);
            ProxyBody::full(data)
        }
        _ => ProxyBody::boxed(body::ResponseBody::new(
            exchange,
            BodyDecoder::new(framing),
            keep_alive,
            checkin,
        )),
    };
    Response::from_parts(parts, body)
}
