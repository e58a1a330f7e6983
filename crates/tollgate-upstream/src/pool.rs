//! A service's upstream pool: targets, balancer, and per-worker idle connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use tollgate_plugin_api::ProxyBody;

use crate::client::{Connector, Sender};
use crate::{Balancer, ClientSettings, SendError, SmoothWeightedRoundRobin, Target, UpstreamError};

/// A pooled connection idle at least this long may have been closed by the upstream as we
/// reuse it (many servers close idle keep-alive connections after a few seconds).
const STALE_AFTER: Duration = Duration::from_secs(1);

/// A copy of `req` to send again, if it is safe to: an idempotent method and no body.
fn replayable(req: &Request<ProxyBody>) -> Option<Box<Request<ProxyBody>>> {
    use http::Method;
    let idempotent = matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    );
    if !idempotent || !http_body::Body::is_end_stream(req.body()) {
        return None;
    }
    let mut copy = Request::new(ProxyBody::Empty);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    // Boxed: kept across an `.await`, an inline copy would enlarge every request's future.
    Some(Box::new(copy))
}

/// One worker's idle connections to one target. Touched only by that worker's thread, so the
/// lock is never contended (two atomic operations); it only makes the type `Sync` without
/// `unsafe`. This is per-worker state, not a lock shared by workers.
#[allow(clippy::disallowed_types)]
type WorkerSlot = std::sync::Mutex<Idle>;

/// Idle HTTP/1.1 connections of one target on one worker, most recently used last.
#[derive(Default)]
struct Idle {
    /// Oldest first; checkout takes from the back (warmest), expiry trims the front.
    http1:
        std::collections::VecDeque<(hyper::client::conn::http1::SendRequest<ProxyBody>, Instant)>,
    http2: Option<hyper::client::conn::http2::SendRequest<ProxyBody>>,
}

/// Targets, balancer, connector and per-worker connection pools of one service. Immutable
/// once built (but for the pools); a new snapshot reuses the whole pool when the service's
/// settings did not change, so warm connections survive reloads.
pub struct UpstreamPool {
    targets: Box<[Target]>,
    balancer: Arc<dyn Balancer>,
    connector: Connector,
    settings: ClientSettings,
    /// `[worker][target]`.
    idle: Box<[Box<[WorkerSlot]>]>,
}

impl std::fmt::Debug for UpstreamPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamPool")
            .field("targets", &self.targets)
            .field("balancer", &self.balancer)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl UpstreamPool {
    /// A pool over `targets` for `workers` workers.
    pub fn new(
        targets: Vec<Target>,
        settings: ClientSettings,
        workers: usize,
    ) -> Result<Self, UpstreamError> {
        let weights: Vec<u32> = targets.iter().map(|t| t.weight).collect();
        let connector = Connector::new(&settings)?;
        let idle = (0..workers.max(1))
            .map(|_| {
                targets
                    .iter()
                    .map(|_| WorkerSlot::new(Idle::default()))
                    .collect()
            })
            .collect();
        Ok(Self {
            targets: targets.into_boxed_slice(),
            balancer: Arc::new(SmoothWeightedRoundRobin::new(&weights)),
            connector,
            settings,
            idle,
        })
    }

    /// The next target with its index in [`UpstreamPool::targets`], or `None` when none can
    /// take traffic.
    pub fn select(&self) -> Option<(usize, &Target)> {
        let i = self.balancer.select()?;
        self.targets.get(i).map(|t| (i, t))
    }

    /// The settings the pool was built with.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// The targets.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Whether this pool can serve a service configured with `targets` and `settings`.
    pub fn same_shape(&self, targets: &[Target], settings: &ClientSettings) -> bool {
        self.settings == *settings
            && self.targets.len() == targets.len()
            && self
                .targets
                .iter()
                .zip(targets)
                .all(|(a, b)| a.url == b.url && a.weight == b.weight)
    }

    /// Sends `req` (origin-form URI for HTTP/1.1, absolute for HTTP/2) to target `target` on
    /// a pooled connection of worker `worker`, opening one when none is free. Must be called
    /// on that worker's runtime. `now` is the caller's clock reading (saves reading it again).
    pub async fn send(
        &self,
        worker: usize,
        target: usize,
        req: Request<ProxyBody>,
        now: Instant,
    ) -> Result<Response<Incoming>, SendError> {
        let Some(slot) = self.idle.get(worker).and_then(|w| w.get(target)) else {
            return Err(SendError::Connect(crate::client::ConnectError::Timeout(
                "no such target".into(),
            )));
        };
        let Some(t) = self.targets.get(target) else {
            return Err(SendError::Connect(crate::client::ConnectError::Timeout(
                "no such target".into(),
            )));
        };
        let mut req = req;
        // A pooled connection can turn out closed before the request is written; then the
        // request comes back untouched and goes out on another connection.
        for _ in 0..3 {
            let (sender, idle_for) = match self.checkout(slot, now) {
                Some((s, idle_for)) => (s, Some(idle_for)),
                // Boxed: connecting (TCP, TLS, handshake) is rare and its future is large;
                // inline it would make every request's future kilobytes bigger.
                None => (Box::pin(self.connector.connect(t)).await?, None),
            };
            match sender {
                Sender::Http1(mut s) => {
                    // An upstream may close a keep-alive connection it considers idle just as
                    // we reuse it: the request is lost with no answer. A request that can be
                    // replayed safely (idempotent method, no body) on a connection idle long
                    // enough for that to happen is kept, and sent once more on a new
                    // connection if that race occurs.
                    let replay = idle_for
                        .filter(|d| *d >= STALE_AFTER)
                        .and_then(|_| replayable(&req));
                    match s.try_send_request(req).await {
                        Ok(res) => {
                            self.checkin_http1(slot, s, now);
                            return Ok(res);
                        }
                        Err(mut e) => match e.take_message() {
                            Some(back) => req = back,
                            None => {
                                let error = e.into_error();
                                return match replay {
                                    Some(again)
                                        if error.is_incomplete_message() || error.is_canceled() =>
                                    {
                                        tracing::debug!(error = %error, "pooled connection closed under the request; sending it again on a new one");
                                        Box::pin(self.send_fresh(t, *again)).await
                                    }
                                    _ => Err(SendError::Request(error)),
                                };
                            }
                        },
                    }
                }
                Sender::Http2(mut s) => {
                    let keep = s.clone();
                    match s.try_send_request(req).await {
                        Ok(res) => {
                            self.checkin_http2(slot, keep);
                            return Ok(res);
                        }
                        Err(mut e) => match e.take_message() {
                            Some(back) => req = back,
                            None => return Err(SendError::Request(e.into_error())),
                        },
                    }
                }
            }
        }
        // Three connections in a row closed under us: open a fresh one and give up after it.
        Box::pin(self.send_fresh(t, req)).await
    }

    async fn send_fresh(
        &self,
        target: &Target,
        req: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, SendError> {
        let result = match self.connector.connect(target).await? {
            Sender::Http1(mut s) => s.send_request(req).await,
            Sender::Http2(mut s) => s.send_request(req).await,
        };
        result.map_err(SendError::Request)
    }

    fn checkout(&self, slot: &WorkerSlot, now: Instant) -> Option<(Sender, Duration)> {
        let mut idle = slot.lock().ok()?;
        if let Some(h2) = &idle.http2 {
            if !h2.is_closed() {
                return Some((Sender::Http2(h2.clone()), Duration::ZERO));
            }
            idle.http2 = None;
        }
        let max_idle = self.settings.idle_timeout;
        // Expire from the oldest end: usually one comparison.
        while let Some((s, since)) = idle.http1.front() {
            if s.is_closed() || now.saturating_duration_since(*since) >= max_idle {
                idle.http1.pop_front();
            } else {
                break;
            }
        }
        // Take the warmest ready connection; busy ones (still streaming a response body) go
        // back to the oldest end, closed ones are dropped.
        let mut busy = 0;
        while let Some((sender, since)) = idle.http1.pop_back() {
            if sender.is_ready() {
                return Some((Sender::Http1(sender), now.saturating_duration_since(since)));
            }
            if !sender.is_closed() {
                idle.http1.push_front((sender, since));
                busy += 1;
                if busy >= idle.http1.len() {
                    break;
                }
            }
        }
        None
    }

    fn checkin_http1(
        &self,
        slot: &WorkerSlot,
        sender: hyper::client::conn::http1::SendRequest<ProxyBody>,
        now: Instant,
    ) {
        if let Ok(mut idle) = slot.lock()
            && idle.http1.len() < self.settings.max_idle_per_target
        {
            idle.http1.push_back((sender, now));
        }
    }

    fn checkin_http2(
        &self,
        slot: &WorkerSlot,
        sender: hyper::client::conn::http2::SendRequest<ProxyBody>,
    ) {
        if let Ok(mut idle) = slot.lock()
            && idle.http2.is_none()
        {
            idle.http2 = Some(sender);
        }
    }
}

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;

    fn request(method: Method, body: ProxyBody) -> Request<ProxyBody> {
        let mut r = Request::new(body);
        *r.method_mut() = method;
        *r.uri_mut() = "/a?b=1".parse().unwrap();
        r.headers_mut().insert("x-k", "v".parse().unwrap());
        r
    }

    #[test]
    fn only_idempotent_bodiless_requests_are_replayable() {
        let copy = replayable(&request(Method::GET, ProxyBody::Empty)).unwrap();
        assert_eq!(copy.uri(), "/a?b=1");
        assert_eq!(copy.headers()["x-k"], "v");
        assert!(replayable(&request(Method::DELETE, ProxyBody::Empty)).is_some());
        assert!(replayable(&request(Method::POST, ProxyBody::Empty)).is_none());
        assert!(replayable(&request(Method::PUT, ProxyBody::full("data"))).is_none());
    }
}
