//! The parking lot: one worker's idle plain-text HTTP/1.1 keep-alive connections, held as bare
//! sockets in an epoll set of their own and watched by one task with one timer.
//!
//! A connection quiet for [`super::PARK_AFTER`] hands its socket here and its task ends, so an
//! idle connection costs a slot of a few dozen bytes instead of a task (the task's allocation
//! is as large as the largest state of the connection's future, and tokio's registration of the
//! socket is another allocation). This is what nginx does with idle keep-alive connections:
//! their buffers are freed and only the connection's preallocated slot remains. When the
//! client sends again, the socket goes back to tokio and a new task serves it; when the idle
//! timeout passes first, or the process shuts down, the socket is closed.
//!
//! The lot's epoll set is a [`mio::Poll`], itself watched by tokio's (epoll sets nest), so the
//! lot's task wakes once for any number of connections that became readable. Sockets are moved
//! in and out with `epoll_ctl`: two calls on the way in (out of tokio's set, into the lot's)
//! and two on the way out, only for connections that were quiet for 50 ms. TLS connections
//! are not parked here (their session state is the expensive part and lives above the socket).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mio::{Events, Interest, Registry, Token};
use slab::Slab;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::server::{Open, Shared};

/// Events taken from the lot's epoll set per call.
const EVENTS: usize = 256;

/// A connection on its way into the lot.
pub(crate) struct Parked {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    open: Open,
    /// When the connection is closed unless the client sent something before.
    deadline: Instant,
}

/// Hands connections to their worker's lot.
#[derive(Clone)]
pub(crate) struct LotHandle {
    tx: mpsc::UnboundedSender<Parked>,
}

impl LotHandle {
    /// Parks `stream` until it is readable (then a new task serves it) or `idle` passes (then
    /// it is closed). When the lot is gone (shutdown, or it could not start) the stream and
    /// its guard are given back, to wait in the connection's own task.
    pub(crate) fn park(
        &self,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
        open: Open,
        idle: Duration,
    ) -> Result<(), (tokio::net::TcpStream, Open)> {
        if self.tx.is_closed() {
            return Err((stream, open));
        }
        let deadline = Instant::now() + idle;
        // Out of tokio's epoll set; the socket stays non-blocking. On failure it is closed.
        let Ok(stream) = stream.into_std() else {
            return Ok(());
        };
        // The lot can only have gone since the check above when shutting down: the
        // connection is then closed with the lot's queue.
        let _ = self.tx.send(Parked {
            stream,
            peer,
            open,
            deadline,
        });
        Ok(())
    }
}

/// One parked connection.
struct Slot {
    stream: mio::net::TcpStream,
    peer: SocketAddr,
    open: Open,
    /// Tells this connection from a later one in the same slot, for the expiry queue.
    ticket: u64,
}

/// A worker's lot: its task's state.
pub(crate) struct Lot {
    rx: mpsc::UnboundedReceiver<Parked>,
    handle: LotHandle,
    slots: Slab<Slot>,
    /// Slot, ticket and deadline, in the order connections were parked. Connections resumed
    /// before their deadline leave their entry behind; it is skipped when it comes up.
    expiry: VecDeque<(usize, u64, Instant)>,
    next_ticket: u64,
    worker: usize,
    shared: Arc<Shared>,
    /// Given to the tasks of resumed connections.
    shutdown: watch::Receiver<bool>,
}

impl Lot {
    /// A lot for `worker`, and the handle connections park with.
    pub(crate) fn new(
        worker: usize,
        shared: Arc<Shared>,
        shutdown: watch::Receiver<bool>,
    ) -> (Self, LotHandle) {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = LotHandle { tx };
        let lot = Lot {
            rx,
            handle: handle.clone(),
            slots: Slab::new(),
            expiry: VecDeque::new(),
            next_ticket: 0,
            worker,
            shared,
            shutdown,
        };
        (lot, handle)
    }

    /// Watches the parked connections until shutdown, then closes them.
    pub(crate) async fn run(mut self) {
        let mut shutdown = self.shutdown.clone();
        let (mut watched, registry) = match watch_epoll() {
            Ok(pair) => pair,
            Err(e) => {
                // The lot closes its queue: connections then wait in their own tasks.
                tracing::error!(error = %e, "cannot create the idle connection set");
                return;
            }
        };
        let mut events = Events::with_capacity(EVENTS);
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        if *shutdown.borrow() {
            return;
        }
        loop {
            let next = self.expiry.front().map(|&(_, _, at)| at);
            if next != armed {
                if let Some(at) = next {
                    timer.as_mut().reset(at);
                }
                armed = next;
            }
            tokio::select! {
                parked = self.rx.recv() => match parked {
                    Some(parked) => self.admit(&registry, parked),
                    None => return,
                },
                ready = watched.readable_mut() => match ready {
                    Ok(mut guard) => loop {
                        let polled = guard
                            .get_inner_mut()
                            .poll(&mut events, Some(Duration::ZERO));
                        match polled {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                            // The set is unusable: its connections are closed, and later ones
                            // wait in their own tasks (the queue closes with the lot).
                            Err(e) => {
                                tracing::error!(error = %e, "polling idle connections failed");
                                return;
                            }
                        }
                        if events.is_empty() {
                            guard.clear_ready();
                            break;
                        }
                        for event in &events {
                            self.resume(&registry, event.token().0);
                        }
                    },
                    Err(e) => {
                        tracing::error!(error = %e, "idle connection set failed");
                        return;
                    }
                },
                () = &mut timer, if armed.is_some() => self.expire(Instant::now()),
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }

    /// Takes a connection in, or resumes it at once when it cannot be watched.
    fn admit(&mut self, registry: &Registry, parked: Parked) {
        let entry = self.slots.vacant_entry();
        let key = entry.key();
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let mut stream = mio::net::TcpStream::from_std(parked.stream);
        if let Err(e) = registry.register(&mut stream, Token(key), Interest::READABLE) {
            tracing::debug!(error = %e, "cannot park a connection; serving it on");
            self.spawn(stream.into(), parked.peer, parked.open);
            return;
        }
        entry.insert(Slot {
            stream,
            peer: parked.peer,
            open: parked.open,
            ticket,
        });
        self.expiry.push_back((key, ticket, parked.deadline));
        self.shared.metrics.parked.inc();
    }

    /// The client of slot `key` sent something (or closed): a new task serves it.
    fn resume(&mut self, registry: &Registry, key: usize) {
        let Some(mut slot) = self.slots.try_remove(key) else {
            return;
        };
        self.shared.metrics.parked.dec();
        if registry.deregister(&mut slot.stream).is_err() {
            // Not watched any more either way; closing is the safe answer.
            return;
        }
        self.spawn(slot.stream.into(), slot.peer, slot.open);
    }

    /// Closes connections whose idle timeout passed by `now`.
    fn expire(&mut self, now: Instant) {
        while let Some(&(key, ticket, at)) = self.expiry.front() {
            if at > now {
                break;
            }
            self.expiry.pop_front();
            if self
                .slots
                .get(key)
                .is_some_and(|slot| slot.ticket == ticket)
            {
                // Closing the socket also takes it out of the epoll set.
                self.slots.remove(key);
                self.shared.metrics.parked.dec();
            }
        }
    }

    fn spawn(&self, stream: std::net::TcpStream, peer: SocketAddr, open: Open) {
        match tokio::net::TcpStream::from_std(stream) {
            Ok(stream) => {
                tokio::spawn(super::resume(
                    stream,
                    peer,
                    self.worker,
                    self.shared.clone(),
                    self.shutdown.clone(),
                    self.handle.clone(),
                    open,
                ));
            }
            Err(e) => tracing::debug!(error = %e, "cannot resume a parked connection"),
        }
    }
}

impl Drop for Lot {
    fn drop(&mut self) {
        let parked = self.slots.len();
        for _ in 0..parked {
            self.shared.metrics.parked.dec();
        }
    }
}

/// The lot's epoll set, watched by tokio's, and a handle to add sockets to it.
#[allow(unsafe_code)]
fn watch_epoll() -> std::io::Result<(AsyncFd<mio::Poll>, Registry)> {
    let poll = mio::Poll::new()?;
    let registry = poll.registry().try_clone()?;
    // SAFETY: `register_with_interest` requires that the descriptor `inner.as_raw_fd()` returns
    // stays open, refers to the same file description and is the one returned for as long as
    // the `AsyncFd` owns `inner`. `mio::Poll` owns its epoll descriptor: it opens it in `new`,
    // closes it only when dropped, and `as_raw_fd` always returns that field. The `AsyncFd`
    // owns the `Poll` and lends it out only as `&mut Poll` through its ready guard, used solely
    // to call `Poll::poll`, which does not replace the descriptor. (`registry` is a separate
    // descriptor, a `dup` of it.)
    let watched = unsafe { AsyncFd::register_with_interest(poll, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)?;
    Ok((watched, registry))
}
