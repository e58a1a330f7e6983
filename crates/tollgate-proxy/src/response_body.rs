//! The response body handed to hyper: streams the inner body, counts bytes, and runs the log
//! phase (access log, metrics, `log` hooks) exactly once — when the body ends, fails, or is
//! dropped because the client went away.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tollgate_plugin_api::{BodyError, ProxyBody, RequestCtx};
use tollgate_runtime::Snapshot;

use crate::access_log::AccessRecord;
use crate::conn::Activity;
use crate::metrics::ProxyMetrics;
use crate::server::Shared;

/// What the log phase needs once the response is over.
pub(crate) struct LogState {
    /// Set once the log phase ran; a state dropped before that (the client went away, or
    /// shutdown cut the request) logs itself as aborted.
    pub(crate) done: bool,
    pub(crate) request_id: http::HeaderValue,
    pub(crate) client_ip: std::net::IpAddr,
    pub(crate) shared: Arc<Shared>,
    pub(crate) snapshot: Arc<Snapshot>,
    pub(crate) activity: Arc<Activity>,
    /// The request's context, once the pipeline is over (absent when the request was cut
    /// short, then `log` hooks do not run).
    pub(crate) cx: Option<RequestCtx>,
    /// Whether the access log was on when the request started.
    pub(crate) logging: bool,
    /// When the request head arrived.
    pub(crate) started: std::time::Instant,
    pub(crate) method: Method,
    pub(crate) host: String,
    pub(crate) path: String,
    /// Index into the snapshot's environments, once one is selected.
    pub(crate) environment: Option<usize>,
    pub(crate) route: Option<tollgate_runtime::RouteId>,
    /// `(service index, target index)`.
    pub(crate) target: Option<(usize, usize)>,
    pub(crate) status: StatusCode,
    pub(crate) bytes_in: BytesIn,
    /// The request's trace, on debug (sandbox) snapshots only.
    pub(crate) trace: Option<Box<tollgate_runtime::Trace>>,
    pub(crate) upstream_ms: Option<f64>,
    pub(crate) error: Option<&'static str>,
}

/// How many request body bytes were read.
pub(crate) enum BytesIn {
    Known(u64),
    Counted(Arc<AtomicU64>),
}

impl BytesIn {
    fn get(&self) -> u64 {
        match self {
            Self::Known(n) => *n,
            Self::Counted(c) => c.load(Ordering::Relaxed),
        }
    }
}

impl Drop for LogState {
    fn drop(&mut self) {
        if !self.done {
            // No response was produced: 499, as nginx logs a request the client abandoned.
            self.status = StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST);
            self.finish(0, true);
        }
    }
}

impl LogState {
    fn finish(&mut self, bytes_out: u64, aborted: bool) {
        if self.done {
            return;
        }
        self.done = true;
        let state = &*self;
        let elapsed = state.started.elapsed();
        let route = state.route.and_then(|r| state.snapshot.routes.get(r));
        let metrics: &ProxyMetrics = &state.shared.metrics;
        crate::metrics::cache::record_request(
            metrics,
            &state.snapshot,
            state.route,
            state.environment,
            &state.shared.empty,
            state.status.as_u16(),
            elapsed.as_secs_f64(),
        );

        if state.logging {
            let target =
                state
                    .target
                    .and_then(|(s, t)| match &state.snapshot.services.get(s)?.backend {
                        tollgate_runtime::Backend::Pool(p) => {
                            p.targets().get(t).map(|t| t.url.as_str())
                        }
                        tollgate_runtime::Backend::Mock(_) => None,
                    });
            let record = AccessRecord {
                time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
                request_id: state.request_id.to_str().unwrap_or(""),
                client_ip: state.client_ip.to_string(),
                method: state.method.as_str(),
                host: &state.host,
                path: &state.path,
                environment: state
                    .environment
                    .and_then(|e| state.snapshot.environments.get(e))
                    .map(|e| &*e.name),
                route: route.map(|r| &*r.info.route),
                api: route.map(|r| &*r.info.api),
                api_version: route.map(|r| &*r.api_version),
                service: route.map(|r| &*r.info.service),
                target,
                status: state.status.as_u16(),
                bytes_in: state.bytes_in.get(),
                bytes_out,
                duration_ms: elapsed.as_secs_f64() * 1000.0,
                upstream_ms: state.upstream_ms,
                error: if aborted {
                    Some("response_aborted")
                } else {
                    state.error
                },
            };
            if !state.shared.access_log.write(&record) {
                metrics.access_log_dropped.inc();
            }
        }
        let chain: &tollgate_runtime::Chain = route
            .and_then(|r| state.snapshot.chain(r))
            .unwrap_or(&state.snapshot.fallback_chain);
        if let Some(cx) = &state.cx {
            for policy in &chain.log {
                policy.log(cx, state.status);
            }
        }
        state.activity.end();
    }
}

/// Most spare [`LogState`] allocations a worker thread keeps.
const SPARE_LOG_STATES: usize = 64;

thread_local! {
    /// Allocations of finished [`LogState`]s, reused by the next requests. Every request needs
    /// one, and with more than a few requests in flight glibc's per-thread cache (7 blocks per
    /// size) overflows into `malloc`'s slow paths. (The boxes are the point: each is an
    /// allocation to hand out again.)
    #[allow(clippy::vec_box)]
    static SPARE: std::cell::RefCell<Vec<Box<MaybeUninit<LogState>>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl LogState {
    /// Boxes `self`, in a spare allocation when the thread has one.
    pub(crate) fn boxed(self) -> Box<LogState> {
        match SPARE.with_borrow_mut(Vec::pop) {
            Some(spare) => Box::write(spare, self),
            None => Box::new(self),
        }
    }

    /// Drops the state (running the log phase if it has not run) and keeps its allocation
    /// for [`LogState::boxed`].
    #[allow(unsafe_code)]
    fn release(state: Box<LogState>) {
        let raw = Box::into_raw(state);
        // SAFETY: `raw` comes from `Box::into_raw` of a `Box<LogState>`: it is non-null,
        // aligned, points to an initialized `LogState` and is owned by nobody else, so the
        // value may be dropped in place exactly once; nothing reads it afterwards. If that
        // drop panics, the allocation is leaked, never freed twice.
        unsafe { std::ptr::drop_in_place(raw) };
        // SAFETY: the allocation was made by the global allocator for a `LogState`, and
        // `MaybeUninit<LogState>` has the same size and alignment, so the box may own and
        // free it; its contents, dropped above, are now uninitialized, which `MaybeUninit`
        // allows.
        let spare = unsafe { Box::from_raw(raw.cast::<MaybeUninit<LogState>>()) };
        SPARE.with_borrow_mut(|spares| {
            if spares.len() < SPARE_LOG_STATES {
                spares.push(spare);
            }
        });
    }
}

/// A response body that reports to the log phase when it is over.
pub(crate) struct ResponseBody {
    inner: ProxyBody,
    bytes: u64,
    expected: Option<u64>,
    log: Option<Box<LogState>>,
    /// The request id field, for Tollgate's HTTP/1.1 server to write with the head instead of
    /// the response's map holding it (see [`ResponseBody::with_id_field`]).
    id_field: Option<(http::HeaderName, http::HeaderValue)>,
}

impl ResponseBody {
    /// `head`: the response to a HEAD request, whose body hyper never sends.
    pub(crate) fn new(inner: ProxyBody, log: Box<LogState>, head: bool) -> Self {
        let expected = inner.size_hint().exact();
        let mut body = Self {
            inner,
            bytes: 0,
            expected,
            log: Some(log),
            id_field: None,
        };
        if head || body.inner.is_end_stream() {
            // hyper never polls an empty body, nor any body of a HEAD response: log now.
            body.finish(false);
        }
        body
    }

    /// Carries the request id `field` for the HTTP/1.1 server, which writes it with the head,
    /// replacing a response field of the same name: inserting it into the response's map
    /// would hash its name for every request.
    pub(crate) fn with_id_field(mut self, field: (http::HeaderName, http::HeaderValue)) -> Self {
        self.id_field = Some(field);
        self
    }

    /// The request id field carried by [`ResponseBody::with_id_field`].
    pub(crate) fn take_id_field(&mut self) -> Option<(http::HeaderName, http::HeaderValue)> {
        self.id_field.take()
    }

    fn finish(&mut self, aborted: bool) {
        if let Some(mut log) = self.log.take() {
            log.finish(self.bytes, aborted);
            LogState::release(log);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
                if this.inner.is_end_stream() {
                    this.finish(false);
                }
            }
            Poll::Ready(Some(Err(_))) => this.finish(true),
            Poll::Ready(None) => this.finish(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // hyper may stop polling once a body of known length is written.
        let complete = self.expected.is_some_and(|e| self.bytes >= e);
        self.finish(!complete);
    }
}
