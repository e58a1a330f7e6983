//! A service's upstream pool: targets, balancer, and per-worker idle connections.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::Either;
use http::{Request, Response};
use tollgate_model::Protocol;
use tollgate_plugin_api::ProxyBody;

use crate::Overrides;
use crate::client::{Connector, Sender};
use crate::h1::{self, Checkin, Prepared};
use crate::io::Io;
use crate::{Balancer, ClientSettings, SendError, SmoothWeightedRoundRobin, Target, UpstreamError};

/// A pooled connection idle at least this long may have been closed by the upstream as we
/// reuse it (many servers close idle keep-alive connections after a few seconds).
const STALE_AFTER: Duration = Duration::from_secs(1);

/// One worker's idle connections to one target. Touched only by that worker's thread, so the
/// lock is never contended (two atomic operations); it only makes the type `Sync` without
/// `unsafe`. This is per-worker state, not a lock shared by workers.
#[allow(clippy::disallowed_types)]
pub(crate) type WorkerSlot = std::sync::Mutex<Idle>;

/// Idle connections of one target on one worker.
#[derive(Debug, Default)]
pub(crate) struct Idle {
    /// HTTP/1.1 connections with when they went idle, oldest first; checkout takes from the
    /// back (warmest), expiry trims the front. Each is only its socket.
    pub(crate) http1: std::collections::VecDeque<(Io, Instant)>,
    /// The one HTTP/2 connection, shared by every request of the worker.
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
    /// `[worker][target]`; shared with response bodies, which return connections.
    idle: Box<[Box<[Arc<WorkerSlot>]>]>,
}

/// The future of a request that is not sent by Tollgate's own HTTP/1.1 client (rare).
type Boxed<'a> = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, SendError>> + Send + 'a>>;

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
                    .map(|_| Arc::new(WorkerSlot::new(Idle::default())))
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
    /// a pooled connection of worker `worker`, opening one when none is free, with `overrides`
    /// replacing its fields of their names. Must be called on that worker's runtime. `now` is
    /// the caller's clock reading (saves reading it again).
    ///
    /// An HTTP/1.1 request head is encoded here, before the returned future is first polled:
    /// the future then holds the encoded request rather than the request and room for it
    /// (an `async fn` keeps its arguments for as long as it runs), and `overrides` need not
    /// outlive this call.
    pub fn send<'a>(
        &'a self,
        worker: usize,
        target: usize,
        mut req: Request<ProxyBody>,
        overrides: &Overrides<'_>,
        now: Instant,
    ) -> impl Future<Output = Result<Response<ProxyBody>, SendError>> + Send + use<'a> {
        let found = self
            .idle
            .get(worker)
            .and_then(|w| w.get(target))
            .zip(self.targets.get(target));
        let plan = match self.connector.protocol() {
            Protocol::Http1 if !req.headers().contains_key(http::header::UPGRADE) => {
                match Prepared::new(req, overrides) {
                    Ok(prepared) => Plan::Http1(prepared),
                    Err(e) => Plan::Failed(e.into()),
                }
            }
            protocol => {
                overrides.apply_to(req.headers_mut());
                Plan::Hyper(req, protocol)
            }
        };
        // The HTTP/1.1 exchange's future is returned as it is, not awaited inside another
        // future: that one would hold the plan it was made from besides it, and be copied.
        let Some((slot, t)) = found else {
            return Either::Right(Either::Right(std::future::ready(Err(SendError::Connect(
                crate::client::ConnectError::Timeout("no such target".into()),
            )))));
        };
        match plan {
            Plan::Http1(prepared) => Either::Left(self.send_h1(slot, t, prepared, now)),
            Plan::Hyper(req, Protocol::Http2) => Either::Right(Either::Left(Box::pin(
                self.send_h2(slot, t, req),
            )
                as Boxed<'a>)),
            // An upgrade needs hyper's upgrade handle; the connection is consumed by it.
            Plan::Hyper(req, _) => {
                Either::Right(Either::Left(Box::pin(self.send_hyper(t, req)) as Boxed<'a>))
            }
            Plan::Failed(e) => Either::Right(Either::Right(std::future::ready(Err(e)))),
        }
    }

    /// An `async` block rather than an `async fn`, so that the future holds the request once
    /// (see `tollgate_proxy`'s `handle`: an `async fn`'s future holds its arguments twice).
    #[allow(clippy::manual_async_fn)]
    fn send_h1(
        &self,
        slot: &Arc<WorkerSlot>,
        target: &Target,
        mut req: Prepared,
        now: Instant,
    ) -> impl Future<Output = Result<Response<ProxyBody>, SendError>> {
        async move {
            let replayable = req.replayable();
            // An upstream may close a keep-alive connection it considers idle just as we reuse
            // it. A replayable request (idempotent, no body) that a reused connection fails before
            // any byte of the response goes out again; the last attempt is on a new connection.
            for attempt in 0..3 {
                let pooled = if attempt < 2 {
                    self.checkout_h1(slot, now)
                } else {
                    None
                };
                let reused = pooled.is_some();
                let io = match pooled {
                    Some(io) => io,
                    // Boxed: connecting (TCP, TLS) is rare and its future is large; inline it
                    // would make every request's future bigger.
                    None => Box::pin(self.connector.connect(target)).await?,
                };
                let checkin = Checkin {
                    slot: slot.clone(),
                    max_idle: self.settings.max_idle_per_target,
                    since: now,
                };
                match h1::send(io, req, checkin, reused && replayable).await {
                    Ok(response) => return Ok(response),
                    Err(h1::Failed {
                        error,
                        retry: Some(again),
                    }) => {
                        tracing::debug!(error = %error, "pooled connection closed under the request; sending it again");
                        req = again;
                    }
                    Err(failed) => return Err(failed.error.into()),
                }
            }
            Err(SendError::Exchange(h1::ExchangeError::Closed))
        }
    }

    async fn send_h2(
        &self,
        slot: &WorkerSlot,
        target: &Target,
        mut req: Request<ProxyBody>,
    ) -> Result<Response<ProxyBody>, SendError> {
        // A shared connection can turn out closed before the request is written; then the
        // request comes back untouched and goes out on a new connection.
        for _ in 0..3 {
            let mut sender = match self.checkout_h2(slot) {
                Some(s) => s,
                None => match Box::pin(self.connector.connect_hyper(target)).await? {
                    Sender::Http2(s) => s,
                    Sender::Http1(_) => {
                        return Err(SendError::Connect(crate::client::ConnectError::Timeout(
                            "protocol mismatch".into(),
                        )));
                    }
                },
            };
            let keep = sender.clone();
            match sender.try_send_request(req).await {
                Ok(res) => {
                    self.checkin_h2(slot, keep);
                    return Ok(res.map(ProxyBody::incoming));
                }
                Err(mut e) => match e.take_message() {
                    Some(back) => req = back,
                    None => return Err(SendError::Request(e.into_error())),
                },
            }
        }
        Box::pin(self.send_hyper(target, req)).await
    }

    /// Sends `req` on a new hyper-driven connection (not pooled).
    async fn send_hyper(
        &self,
        target: &Target,
        req: Request<ProxyBody>,
    ) -> Result<Response<ProxyBody>, SendError> {
        let result = match self.connector.connect_hyper(target).await? {
            Sender::Http1(mut s) => s.send_request(req).await,
            Sender::Http2(mut s) => s.send_request(req).await,
        };
        result
            .map(|res| res.map(ProxyBody::incoming))
            .map_err(SendError::Request)
    }

    /// The warmest idle HTTP/1.1 connection that is still usable.
    fn checkout_h1(&self, slot: &WorkerSlot, now: Instant) -> Option<Io> {
        let mut idle = slot.lock().ok()?;
        let max_idle = self.settings.idle_timeout;
        // Expire from the oldest end: usually one comparison.
        while let Some((_, since)) = idle.http1.front() {
            if now.saturating_duration_since(*since) >= max_idle {
                idle.http1.pop_front();
            } else {
                break;
            }
        }
        while let Some((io, since)) = idle.http1.pop_back() {
            // A connection idle long enough for the upstream to have closed it is checked
            // first (no system call unless its socket saw an event).
            if now.saturating_duration_since(since) < STALE_AFTER || !io.is_stale() {
                return Some(io);
            }
        }
        None
    }

    fn checkout_h2(
        &self,
        slot: &WorkerSlot,
    ) -> Option<hyper::client::conn::http2::SendRequest<ProxyBody>> {
        let mut idle = slot.lock().ok()?;
        match &idle.http2 {
            Some(h2) if !h2.is_closed() => Some(h2.clone()),
            Some(_) => {
                idle.http2 = None;
                None
            }
            None => None,
        }
    }

    fn checkin_h2(
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

/// How a request goes out, decided before its future runs.
enum Plan {
    /// Tollgate's own HTTP/1.1 client, the head encoded.
    Http1(Prepared),
    /// Through hyper: HTTP/2, or an HTTP/1.1 protocol upgrade.
    Hyper(Request<ProxyBody>, Protocol),
    /// Encoding failed.
    Failed(SendError),
}
