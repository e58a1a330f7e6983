//! The one body type that flows through the gateway, both directions.
//!
//! An enum rather than a boxed trait object, so the common cases (empty, a buffer, a streamed
//! hyper body) cost no allocation.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;

use crate::streamed::StreamedBody;

/// A body streamed from a peer: a client's request body (hyper's for HTTP/2, the gateway's own
/// HTTP/1.1 server's otherwise) or an upstream's response body read by hyper.
#[derive(Debug)]
pub enum PeerBody {
    /// No body (a request without one).
    Empty,
    /// Read by hyper.
    Hyper(hyper::body::Incoming),
    /// Read by the gateway's HTTP/1.1 server.
    Streamed(StreamedBody),
}

impl From<hyper::body::Incoming> for PeerBody {
    fn from(body: hyper::body::Incoming) -> Self {
        Self::Hyper(body)
    }
}

impl From<StreamedBody> for PeerBody {
    fn from(body: StreamedBody) -> Self {
        Self::Streamed(body)
    }
}

impl Body for PeerBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            Self::Empty => Poll::Ready(None),
            Self::Hyper(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(BodyError::Hyper))),
            Self::Streamed(body) => body.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Hyper(body) => body.is_end_stream(),
            Self::Streamed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Empty => SizeHint::with_exact(0),
            Self::Hyper(body) => body.size_hint(),
            Self::Streamed(body) => body.size_hint(),
        }
    }
}

/// A body error.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// A streamed body passed its size limit.
    #[error("body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The connection failed while streaming.
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
    /// The client's body is malformed (bad chunk coding) or was cut short.
    #[error("{0}")]
    Client(Box<dyn std::error::Error + Send + Sync>),
    /// Any other body failure.
    #[error("{0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// A request or response body.
#[derive(Default)]
pub enum ProxyBody {
    /// No body.
    #[default]
    Empty,
    /// One buffer (taken when polled).
    Full(Option<Bytes>),
    /// Streamed from a peer, optionally bounded.
    Incoming {
        /// The peer's body.
        body: PeerBody,
        /// Most bytes allowed (`u64::MAX`: unbounded).
        limit: u64,
        /// Bytes seen so far.
        seen: u64,
        /// Where to publish the byte count as it grows (for access logs), if anyone asks.
        counter: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    },
    /// Anything else.
    Boxed(UnsyncBoxBody<Bytes, BodyError>),
}

impl ProxyBody {
    /// A body holding `bytes`.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            Self::Empty
        } else {
            Self::Full(Some(bytes))
        }
    }

    /// A streamed peer body with no limit.
    pub fn incoming(body: impl Into<PeerBody>) -> Self {
        Self::Incoming {
            body: body.into(),
            limit: u64::MAX,
            seen: 0,
            counter: None,
        }
    }

    /// A streamed peer body that fails with [`BodyError::TooLarge`] past `limit` bytes.
    pub fn limited(body: impl Into<PeerBody>, limit: u64) -> Self {
        Self::Incoming {
            body: body.into(),
            limit,
            seen: 0,
            counter: None,
        }
    }

    /// Like [`ProxyBody::limited`], also publishing the bytes read so far to `counter`.
    pub fn counted(
        body: impl Into<PeerBody>,
        limit: u64,
        counter: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        Self::Incoming {
            body: body.into(),
            limit,
            seen: 0,
            counter: Some(counter),
        }
    }

    /// Wraps any body.
    pub fn boxed<B>(body: B) -> Self
    where
        B: Body<Data = Bytes, Error = BodyError> + Send + 'static,
    {
        Self::Boxed(UnsyncBoxBody::new(body))
    }
}

impl std::fmt::Debug for ProxyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("Empty"),
            Self::Full(b) => write!(f, "Full({} bytes)", b.as_ref().map_or(0, Bytes::len)),
            Self::Incoming { limit, seen, .. } => {
                write!(f, "Incoming {{ limit: {limit}, seen: {seen} }}")
            }
            Self::Boxed(_) => f.write_str("Boxed"),
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            Self::Empty => Poll::Ready(None),
            Self::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Incoming {
                body,
                limit,
                seen,
                counter,
            } => match Pin::new(body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        *seen = seen.saturating_add(data.len() as u64);
                        if let Some(c) = counter {
                            c.store(*seen, std::sync::atomic::Ordering::Relaxed);
                        }
                        if *seen > *limit {
                            return Poll::Ready(Some(Err(BodyError::TooLarge { limit: *limit })));
                        }
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            Self::Boxed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Full(bytes) => bytes.is_none(),
            Self::Incoming { body, .. } => body.is_end_stream(),
            Self::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Empty => SizeHint::with_exact(0),
            Self::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Self::Incoming { body, .. } => body.size_hint(),
            Self::Boxed(body) => body.size_hint(),
        }
    }
}
