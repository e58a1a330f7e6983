//! The timer behind hyper's header-read timeout (`client_header`) on HTTP/1.1 connections.
//!
//! hyper arms its header-read timer for every request head. With tokio's timer that is an
//! allocation, a registration in the timer wheel and its removal for each request (about 1,100
//! instructions, 3 % of a proxied request's user-space work). These deadlines register nothing:
//! a deadline is checked when hyper polls it, which it does each time it polls for the head.
//! The connection driver (`serve_round` in [`super::plain`]) polls the connection at least every
//! [`super::PARK_AFTER`] for as long as a round lasts, so a head that does not arrive in time is
//! still answered with hyper's `408` and the connection closed, at most 50 ms late.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A [`hyper::rt::Timer`] whose sleeps are deadlines checked when polled (no wake-up of their
/// own): only for timers whose owner is polled periodically anyway.
#[derive(Debug, Clone, Copy)]
pub(super) struct PolledDeadlines;

impl hyper::rt::Timer for PolledDeadlines {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Deadline(deadline))
    }
}

/// Ready once its instant has passed, checked on each poll.
struct Deadline(Instant);

impl Future for Deadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl hyper::rt::Sleep for Deadline {}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use hyper::rt::Timer;

    use super::*;

    #[test]
    fn a_deadline_is_ready_once_passed_and_not_before() {
        let mut cx = Context::from_waker(Waker::noop());
        let mut later = PolledDeadlines.sleep(Duration::from_secs(60));
        assert!(later.as_mut().poll(&mut cx).is_pending());
        let mut passed = PolledDeadlines.sleep_until(Instant::now());
        assert!(passed.as_mut().poll(&mut cx).is_ready());
    }
}
