//! A request body read by the gateway's own HTTP/1.1 server and handed to whoever consumes it
//! (the upstream client, a policy, a mock).
//!
//! The connection reads the client's socket; the request's consumer polls the body. They meet
//! in a one-item slot with demand signalling: the connection decodes the next piece of the body
//! only once the consumer asks for it ([`BodySender::wanted`]), so a body is read no faster than
//! it is forwarded (constant memory), and a body nobody reads is never read at all, which is
//! also when `Expect: 100-continue` is answered: at the first demand.
//!
//! Both sides usually run in the same task (the connection task polls the request's future), but
//! the consumer may also be a task of its own (hyper's HTTP/2 client polls request bodies from
//! its connection task), so the slot is shared through atomics, and the item itself through a
//! lock that is only ever tried (`try_lock`), never waited for: a side that finds it taken
//! (which needs the other side on another thread at that very instant) tries again at its next
//! poll.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use http_body::{Frame, SizeHint};

use crate::BodyError;

/// One frame of the body, or the error that ends it.
pub type BodyItem = Result<Frame<Bytes>, BodyError>;

#[derive(Debug, Default)]
struct Slot {
    /// The next item, not yet taken.
    item: tokio::sync::Mutex<Option<BodyItem>>,
    /// The consumer waits for the next item.
    wanted: AtomicBool,
    /// The sender is done: nothing follows what is in `item`.
    ended: AtomicBool,
    /// The consumer dropped the body.
    dropped: AtomicBool,
    consumer: AtomicWaker,
    producer: AtomicWaker,
}

impl Slot {
    /// Takes the waiting item. `Err`: the lock was busy.
    fn take(&self) -> Result<Option<BodyItem>, ()> {
        self.item
            .try_lock()
            .map(|mut item| item.take())
            .map_err(drop)
    }
}

/// The consuming end: an [`http_body::Body`] (through [`crate::ProxyBody`]).
#[derive(Debug)]
pub struct StreamedBody {
    slot: Arc<Slot>,
    /// Bytes still to come, when the length is known (`Content-Length`).
    remaining: Option<u64>,
    done: bool,
}

/// The producing end, kept by the connection.
#[derive(Debug)]
pub struct BodySender {
    slot: Arc<Slot>,
}

/// A body of `length` bytes when known (`Content-Length`), or of unknown length (chunked).
pub fn streamed(length: Option<u64>) -> (BodySender, StreamedBody) {
    let slot = Arc::new(Slot::default());
    (
        BodySender { slot: slot.clone() },
        StreamedBody {
            slot,
            remaining: length,
            done: length == Some(0),
        },
    )
}

impl StreamedBody {
    pub(crate) fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<BodyItem>> {
        if self.done {
            return Poll::Ready(None);
        }
        self.slot.consumer.register(cx.waker());
        let Ok(taken) = self.slot.take() else {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        };
        if let Some(item) = taken {
            return Poll::Ready(Some(self.took(item)));
        }
        if self.slot.ended.load(Ordering::Acquire) {
            // The last item may have been stored just before `ended`: look once more.
            match self.slot.take() {
                Ok(Some(item)) => return Poll::Ready(Some(self.took(item))),
                Ok(None) => {
                    self.done = true;
                    return Poll::Ready(None);
                }
                Err(()) => {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
        }
        self.slot.wanted.store(true, Ordering::Release);
        self.slot.producer.wake();
        Poll::Pending
    }

    fn took(&mut self, item: BodyItem) -> BodyItem {
        match &item {
            Ok(frame) => {
                if let (Some(data), Some(left)) = (frame.data_ref(), &mut self.remaining) {
                    *left = left.saturating_sub(data.len() as u64);
                }
            }
            Err(_) => self.done = true,
        }
        item
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.done
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl Drop for StreamedBody {
    fn drop(&mut self) {
        self.slot.dropped.store(true, Ordering::Release);
        self.slot.producer.wake();
    }
}

impl BodySender {
    /// Whether the consumer waits for the next item. When not, `cx` is woken once it does
    /// (or drops the body).
    pub fn poll_wanted(&self, cx: &Context<'_>) -> bool {
        self.slot.producer.register(cx.waker());
        if !self.slot.wanted.load(Ordering::Acquire) || self.is_dropped() {
            return false;
        }
        match self.slot.item.try_lock() {
            Ok(item) => item.is_none(),
            Err(_) => {
                cx.waker().wake_by_ref();
                false
            }
        }
    }

    /// Whether the consumer dropped the body (nothing more will be read from it).
    pub fn is_dropped(&self) -> bool {
        self.slot.dropped.load(Ordering::Acquire)
    }

    /// Hands over the next frame, or an error that ends the body; call when
    /// [`BodySender::poll_wanted`] said so. `Err` gives the item back when the slot was busy
    /// (try again at the next poll).
    pub fn send(&self, item: BodyItem) -> Result<(), BodyItem> {
        match self.slot.item.try_lock() {
            Ok(mut slot) => *slot = Some(item),
            Err(_) => return Err(item),
        }
        self.slot.wanted.store(false, Ordering::Release);
        self.slot.consumer.wake();
        Ok(())
    }
}

impl Drop for BodySender {
    fn drop(&mut self) {
        self.slot.ended.store(true, Ordering::Release);
        self.slot.consumer.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::task::Waker;

    fn cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    #[test]
    fn frames_flow_one_at_a_time_on_demand_then_end() {
        let (tx, mut rx) = streamed(Some(5));
        assert!(!tx.poll_wanted(&cx()), "no demand before the first poll");
        assert!(rx.poll_frame(&mut cx()).is_pending());
        assert!(tx.poll_wanted(&cx()));
        tx.send(Ok(Frame::data(Bytes::from_static(b"hel"))))
            .unwrap();
        assert!(!tx.poll_wanted(&cx()), "the slot is full");
        assert_eq!(rx.size_hint().exact(), Some(5));
        let Poll::Ready(Some(Ok(frame))) = rx.poll_frame(&mut cx()) else {
            panic!("a frame expected");
        };
        assert_eq!(frame.into_data().ok(), Some(Bytes::from_static(b"hel")));
        assert_eq!(rx.size_hint().exact(), Some(2));
        assert!(rx.poll_frame(&mut cx()).is_pending());
        tx.send(Ok(Frame::data(Bytes::from_static(b"lo")))).unwrap();
        drop(tx);
        assert!(matches!(rx.poll_frame(&mut cx()), Poll::Ready(Some(Ok(_)))));
        assert!(matches!(rx.poll_frame(&mut cx()), Poll::Ready(None)));
        assert!(rx.is_end_stream());
    }

    #[test]
    fn an_error_ends_the_body_and_a_dropped_body_is_seen() {
        let (tx, mut rx) = streamed(None);
        assert!(rx.poll_frame(&mut cx()).is_pending());
        tx.send(Err(BodyError::Client("cut short".into()))).unwrap();
        assert!(matches!(
            rx.poll_frame(&mut cx()),
            Poll::Ready(Some(Err(_)))
        ));
        assert!(matches!(rx.poll_frame(&mut cx()), Poll::Ready(None)));
        drop(rx);
        assert!(tx.is_dropped());
        assert!(!tx.poll_wanted(&cx()));
    }

    #[test]
    fn an_empty_body_is_over_before_it_starts() {
        let (_tx, mut rx) = streamed(Some(0));
        assert!(rx.is_end_stream());
        assert!(matches!(rx.poll_frame(&mut cx()), Poll::Ready(None)));
    }
}
