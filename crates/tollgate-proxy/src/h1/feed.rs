//! Feeding a request body to its consumer on demand, and draining the rest of one nobody
//! reads once the response is written.

use std::task::Context;

use bytes::{Bytes, BytesMut};
use http_body::Frame;
use tollgate_plugin_api::{BodyError, BodyItem, BodySender};
use tollgate_upstream::codec::{BodyDecoder, Decoded, Out};

/// Most bytes of an unread request body drained to keep the connection; a larger rest closes it.
pub(super) const DRAIN_LIMIT: u64 = 64 * 1024;
/// The interim answer to `Expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The request body while there is more of it to read.
pub(super) struct Feed {
    pub(super) decoder: BodyDecoder,
    pub(super) tx: BodySender,
    /// `Expect: 100-continue` not answered yet: answered at the first demand for the body.
    pub(super) continue_pending: bool,
    /// The consumer waits and the buffer holds no more of the body: read.
    pub(super) needs_read: bool,
    /// An item the busy slot did not take yet, and what follows once it does.
    pub(super) unsent: Option<(BodyItem, FeedStep)>,
    /// The response is written and nobody reads the rest of the body: it is read and dropped,
    /// up to this many more bytes.
    pub(super) drain: Option<u64>,
}

/// What feeding the request body did.
#[derive(Debug, Clone, Copy)]
pub(super) enum FeedStep {
    /// Nothing to do until the consumer asks or bytes arrive.
    Waiting,
    Progress,
    /// The whole body was handed over.
    Finished,
    /// The body is malformed; the consumer got the error.
    Failed,
}

/// Hands the consumer the next piece of the request body when it asks for one.
pub(super) fn poll_feed(
    feed: &mut Feed,
    rbuf: &mut BytesMut,
    out: &mut Out,
    responding: bool,
    cx: &mut Context<'_>,
) -> FeedStep {
    feed.needs_read = false;
    if let Some(budget) = &mut feed.drain {
        return drain(&mut feed.decoder, budget, &mut feed.needs_read, rbuf);
    }
    if let Some((item, then)) = feed.unsent.take() {
        return hand_over(feed, item, then, cx);
    }
    if feed.tx.is_dropped() || !feed.tx.poll_wanted(cx) {
        return FeedStep::Waiting;
    }
    let mut step = FeedStep::Waiting;
    if feed.continue_pending {
        feed.continue_pending = false;
        if !responding && out.room() > 0 {
            out.push(Bytes::from_static(CONTINUE));
            step = FeedStep::Progress;
        }
    }
    match feed.decoder.decode(rbuf) {
        Ok(Decoded::Data(data)) => {
            let then = if feed.decoder.remaining() == Some(0) {
                FeedStep::Finished
            } else {
                FeedStep::Progress
            };
            hand_over(feed, Ok(Frame::data(data)), then, cx)
        }
        Ok(Decoded::Trailers(trailers)) => {
            hand_over(feed, Ok(Frame::trailers(trailers)), FeedStep::Finished, cx)
        }
        Ok(Decoded::End) => FeedStep::Finished,
        Ok(Decoded::NeedMore) => {
            feed.needs_read = true;
            step
        }
        Err(e) => hand_over(
            feed,
            Err(BodyError::Client(Box::new(e))),
            FeedStep::Failed,
            cx,
        ),
    }
}

/// Reads and drops what is buffered of a body nobody reads, within `budget` bytes.
fn drain(
    decoder: &mut BodyDecoder,
    budget: &mut u64,
    needs_read: &mut bool,
    rbuf: &mut BytesMut,
) -> FeedStep {
    let mut step = FeedStep::Waiting;
    loop {
        match decoder.decode(rbuf) {
            Ok(Decoded::Data(data)) => match budget.checked_sub(data.len() as u64) {
                Some(left) => {
                    *budget = left;
                    step = FeedStep::Progress;
                }
                None => return FeedStep::Failed,
            },
            Ok(Decoded::Trailers(_) | Decoded::End) => return FeedStep::Finished,
            Ok(Decoded::NeedMore) => {
                *needs_read = true;
                return step;
            }
            Err(_) => return FeedStep::Failed,
        }
    }
}

/// Sends `item`, or keeps it for the next poll when the slot is busy.
fn hand_over(feed: &mut Feed, item: BodyItem, then: FeedStep, cx: &mut Context<'_>) -> FeedStep {
    match feed.tx.send(item) {
        Ok(()) => then,
        Err(item) => {
            feed.unsent = Some((item, then));
            cx.waker().wake_by_ref();
            FeedStep::Waiting
        }
    }
}
