//! The response body of an HTTP/1.1 exchange, streamed from the connection; when it ends
//! cleanly the connection goes back to its worker's idle pool.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tollgate_plugin_api::BodyError;

use super::Checkin;
use super::body_decoder::{BodyDecoder, Decoded};
use super::exchange::Exchange;

/// A streamed response body. Dropped before its end, it closes the connection.
#[derive(Debug)]
pub(crate) struct ResponseBody {
    /// `None` once the body ended.
    exchange: Option<Exchange>,
    decoder: BodyDecoder,
    keep_alive: bool,
    checkin: Option<Checkin>,
}

impl ResponseBody {
    pub(crate) fn new(
        exchange: Exchange,
        decoder: BodyDecoder,
        keep_alive: bool,
        checkin: Checkin,
    ) -> Self {
        Self {
            exchange: Some(exchange),
            decoder,
            keep_alive,
            checkin: Some(checkin),
        }
    }

    /// The body ended: the connection is reused if nothing is left over on it.
    fn end(&mut self) {
        if let Some(exchange) = self.exchange.take()
            && self.keep_alive
            && exchange.is_clean()
            && let Some(mut checkin) = self.checkin.take()
        {
            // A streamed body may have taken long: the connection is idle from now.
            checkin.since = std::time::Instant::now();
            checkin.put(exchange.io);
            crate::recycle::keep_buffer(exchange.rbuf);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let Some(exchange) = this.exchange.as_mut() else {
            return Poll::Ready(None);
        };
        let decoded = match ready!(exchange.poll_body(cx, &mut this.decoder)) {
            Ok(decoded) => decoded,
            Err(e) => {
                this.exchange = None;
                return Poll::Ready(Some(Err(BodyError::Other(Box::new(e)))));
            }
        };
        match decoded {
            Decoded::Data(data) => {
                if this.decoder == BodyDecoder::Done {
                    this.end();
                }
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Decoded::Trailers(trailers) => {
                this.end();
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
            Decoded::End | Decoded::NeedMore => {
                this.end();
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.exchange.is_none() || self.decoder == BodyDecoder::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
