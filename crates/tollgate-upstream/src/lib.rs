//! Upstream pools: where a request goes once it is routed.
//!
//! A [`UpstreamPool`] holds a service's targets, its balancer and, per worker, the idle
//! connections to each target, so a worker's upstream connections live on that worker's runtime
//! and are never shared across threads. HTTP/1.1 requests go through Tollgate's own client
//! (`h1`), driven by the request's future; HTTP/2 and protocol upgrades through hyper's. The
//! request path only calls [`UpstreamPool::select`] and [`UpstreamPool::send`]; balancing is
//! behind the [`Balancer`] trait so further algorithms, health checks and discovery plug in
//! without touching the proxy.

mod balance;
mod client;
mod error;
mod h1;
mod io;
mod overrides;
mod pool;
pub mod recycle;
mod target;

pub use balance::{Balancer, SmoothWeightedRoundRobin};
pub use client::{ClientSettings, ConnectError};
pub use error::{SendError, UpstreamError};
pub use h1::{EncodeError, ExchangeError, ProtocolError, codec};
pub use overrides::{MAX_OVERRIDES, Overrides, TooManyOverrides};
pub use pool::UpstreamPool;
pub use target::Target;
