//! One request/response exchange on an HTTP/1.1 upstream connection, driven by the request's
//! own future (no connection task, no channels): the request is written while the response is
//! read, so an upstream that answers (or streams its answer) before it has read the whole
//! request body never deadlocks against us.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::Body;
use tokio::io::AsyncWrite;
use tollgate_plugin_api::{BodyError, ProxyBody};

use super::body_decoder::{BodyDecoder, Decoded};
use super::decode::{self, Head, ProtocolError};
use super::encode::Framing;
use super::out::Out;
use crate::io::Io;

/// First read buffer: a typical response head and a small body fit.
pub(crate) const FIRST_READ: usize = 4096;
/// Read size while streaming a body.
const BODY_READ: usize = 16 * 1024;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// Reading or writing the connection failed.
    #[error("upstream connection failed: {0}")]
    Io(#[source] io::Error),
    /// The upstream closed the connection before a complete response head.
    #[error("the upstream closed the connection before answering")]
    Closed,
    /// The upstream's response breaks HTTP/1.1.
    #[error("invalid upstream response: {0}")]
    Protocol(#[from] ProtocolError),
    /// Reading the client's request body failed (too large, malformed, cut short).
    #[error("reading the request body: {0}")]
    RequestBody(#[source] BodyError),
}

/// How far writing the request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sending {
    /// Head or body bytes still to write.
    Busy,
    /// All written and flushed.
    Done,
    /// The connection refused more bytes; the response may still be read.
    Failed,
}

/// The state of one exchange.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub(crate) io: Io,
    out: Out,
    body: ProxyBody,
    /// Request body framing; `Length` counts down what is left to send.
    framing: Framing,
    body_done: bool,
    pub(crate) sending: Sending,
    /// Why writing failed, reported if no response arrives.
    write_error: Option<io::Error>,
    pub(crate) rbuf: BytesMut,
    /// Whether any response byte arrived (a request answered by nothing may be replayed).
    pub(crate) read_any: bool,
    head_request: bool,
    /// The request's header map, sent already: filled with the response's fields.
    spare: Option<HeaderMap>,
}

impl Exchange {
    /// An exchange sending `head` (the encoded request head) then `body` framed as `framing`.
    /// The response is read into `rbuf` (the rest of the buffer the request head was encoded
    /// into) when it has room for a first read, and its fields fill `spare` (the request's
    /// header map, sent already): no allocation for either. Built in one piece, not by
    /// builder methods: each of those would move the whole exchange.
    pub(crate) fn new(
        io: Io,
        head: Bytes,
        body: ProxyBody,
        framing: Framing,
        head_request: bool,
        rbuf: BytesMut,
        spare: HeaderMap,
    ) -> Self {
        let mut out = Out::default();
        out.push(head);
        Self {
            io,
            out,
            body,
            body_done: framing == Framing::Empty,
            framing,
            sending: Sending::Busy,
            write_error: None,
            rbuf: if rbuf.capacity() >= FIRST_READ / 2 {
                rbuf
            } else {
                BytesMut::new()
            },
            read_any: false,
            head_request,
            spare: Some(spare),
        }
    }

    /// Drives the exchange until the final response head is in.
    pub(crate) fn poll_head(&mut self, cx: &mut Context<'_>) -> Poll<Result<Head, ExchangeError>> {
        loop {
            if let Err(e) = self.poll_send_side(cx) {
                return Poll::Ready(Err(e));
            }
            if !self.rbuf.is_empty()
                && let Some(head) =
                    decode::head(&mut self.rbuf, self.head_request, &mut self.spare)?
            {
                return Poll::Ready(Ok(head));
            }
            match ready!(self.poll_fill(cx, FIRST_READ)) {
                Ok(0) => {
                    return Poll::Ready(Err(match self.write_error.take() {
                        Some(e) if !self.read_any => ExchangeError::Io(e),
                        _ => ExchangeError::Closed,
                    }));
                }
                Ok(_) => self.read_any = true,
                Err(e) => return Poll::Ready(Err(ExchangeError::Io(e))),
            }
        }
    }

    /// Makes what progress writing can make now. A write failure is remembered (the response
    /// may still come); only a failing request body is an error.
    pub(crate) fn poll_send_side(&mut self, cx: &mut Context<'_>) -> Result<(), ExchangeError> {
        if self.sending != Sending::Busy {
            return Ok(());
        }
        match self.poll_write(cx) {
            Poll::Pending => Ok(()),
            Poll::Ready(Ok(())) => {
                self.sending = Sending::Done;
                Ok(())
            }
            Poll::Ready(Err(WriteError::Io(e))) => {
                self.sending = Sending::Failed;
                self.write_error = Some(e);
                Ok(())
            }
            Poll::Ready(Err(WriteError::Body(e))) => {
                self.sending = Sending::Failed;
                Err(ExchangeError::RequestBody(e))
            }
        }
    }

    /// Writes queued bytes and pulls body frames until everything is written and flushed.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WriteError>> {
        loop {
            // Queue the next body frame while there is room for its framing, so a chunk
            // header, its data and the head before it go out in one vectored write.
            if !self.body_done && self.out.room() >= 3 {
                match Pin::new(&mut self.body).poll_frame(cx) {
                    Poll::Ready(frame) => {
                        self.queue_frame(frame)?;
                        continue;
                    }
                    Poll::Pending if self.out.is_empty() => return Poll::Pending,
                    Poll::Pending => {}
                }
            }
            if self.out.is_empty() {
                if !self.body_done {
                    continue;
                }
                ready!(Pin::new(&mut self.io).poll_flush(cx)).map_err(WriteError::Io)?;
                return Poll::Ready(Ok(()));
            }
            let mut slices = [IoSlice::new(&[]); 4];
            let n = self.out.slices(&mut slices);
            let written = ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..n]))
                .map_err(WriteError::Io)?;
            if written == 0 {
                return Poll::Ready(Err(WriteError::Io(io::ErrorKind::WriteZero.into())));
            }
            self.out.advance(written);
        }
    }

    fn queue_frame(
        &mut self,
        frame: Option<Result<http_body::Frame<Bytes>, BodyError>>,
    ) -> Result<(), WriteError> {
        let frame = match frame {
            None => {
                self.body_done = true;
                return match self.framing {
                    Framing::Chunked => {
                        self.out.push(Bytes::from_static(b"0\r\n\r\n"));
                        Ok(())
                    }
                    Framing::Length(0) | Framing::Empty => Ok(()),
                    Framing::Length(_) => Err(WriteError::Body(short_body())),
                };
            }
            Some(Err(e)) => return Err(WriteError::Body(e)),
            Some(Ok(frame)) => frame,
        };
        match frame.into_data() {
            Ok(data) if data.is_empty() => Ok(()),
            Ok(data) => match &mut self.framing {
                Framing::Length(left) => {
                    let len = data.len() as u64;
                    if len > *left {
                        return Err(WriteError::Body(BodyError::Other(
                            "the request body is longer than its content-length".into(),
                        )));
                    }
                    *left -= len;
                    self.out.push(data);
                    Ok(())
                }
                Framing::Chunked => {
                    let mut size = Vec::with_capacity(18);
                    size.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
                    self.out.push(Bytes::from(size));
                    self.out.push(data);
                    self.out.push(Bytes::from_static(b"\r\n"));
                    Ok(())
                }
                Framing::Empty => Err(WriteError::Body(BodyError::Other(
                    "the request body produced data after announcing none".into(),
                ))),
            },
            Err(frame) => {
                // Trailers end the body. Only chunked coding can carry them; with a length
                // they are dropped, as an HTTP/1.1 message has nowhere to put them.
                self.body_done = true;
                match (self.framing, frame.into_trailers()) {
                    (Framing::Chunked, Ok(trailers)) => {
                        let mut block = Vec::with_capacity(64);
                        block.extend_from_slice(b"0\r\n");
                        for (name, value) in &trailers {
                            block.extend_from_slice(name.as_str().as_bytes());
                            block.extend_from_slice(b": ");
                            block.extend_from_slice(value.as_bytes());
                            block.extend_from_slice(b"\r\n");
                        }
                        block.extend_from_slice(b"\r\n");
                        self.out.push(Bytes::from(block));
                        Ok(())
                    }
                    (Framing::Length(left), _) if left > 0 => Err(WriteError::Body(short_body())),
                    (Framing::Chunked, Err(_)) => {
                        self.out.push(Bytes::from_static(b"0\r\n\r\n"));
                        Ok(())
                    }
                    _ => Ok(()),
                }
            }
        }
    }

    /// Reads more of the response into the buffer, making room for at least `want` bytes.
    pub(crate) fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        want: usize,
    ) -> Poll<io::Result<usize>> {
        if self.rbuf.capacity() - self.rbuf.len() < want / 4 {
            self.rbuf.reserve(want);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.rbuf)
    }

    /// Whether the exchange left the connection clean for another request: everything sent,
    /// nothing unread.
    pub(crate) fn is_clean(&self) -> bool {
        self.sending == Sending::Done && self.rbuf.is_empty()
    }

    /// Reads the next piece of the response body.
    pub(crate) fn poll_body(
        &mut self,
        cx: &mut Context<'_>,
        decoder: &mut BodyDecoder,
    ) -> Poll<Result<Decoded, ExchangeError>> {
        // Keep sending the request body while the response streams; its failure no longer
        // matters to the client, only to whether the connection can be reused.
        let _ = self.poll_send_side(cx);
        loop {
            match decoder.decode(&mut self.rbuf)? {
                Decoded::NeedMore => {}
                other => return Poll::Ready(Ok(other)),
            }
            match ready!(self.poll_fill(cx, BODY_READ)) {
                Ok(0) if *decoder == BodyDecoder::UntilClose => {
                    *decoder = BodyDecoder::Done;
                    return Poll::Ready(Ok(Decoded::End));
                }
                Ok(0) => return Poll::Ready(Err(ExchangeError::Closed)),
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(ExchangeError::Io(e))),
            }
        }
    }
}

fn short_body() -> BodyError {
    BodyError::Other("the request body ended before its content-length".into())
}

/// Why writing stopped.
#[derive(Debug)]
enum WriteError {
    /// The connection failed.
    Io(io::Error),
    /// The request body failed.
    Body(BodyError),
}
