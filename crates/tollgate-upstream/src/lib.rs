//! Upstream pools: where a request goes once it is routed.
//!
//! A [`UpstreamPool`] holds a service's targets, its balancer and one HTTP client (with its own
//! connection pool) per worker, so a worker's upstream connections live on that worker's runtime
//! and are never shared across threads. The request path only calls [`UpstreamPool::select`];
//! balancing is behind the [`Balancer`] trait so further algorithms, health checks and discovery
//! plug in without touching the proxy.

mod balance;
mod client;
mod error;
mod h1;
mod io;
mod pool;
mod target;

pub use balance::{Balancer, SmoothWeightedRoundRobin};
pub use client::{ClientSettings, ConnectError};
pub use error::{SendError, UpstreamError};
pub use h1::{EncodeError, ExchangeError, ProtocolError};
pub use pool::UpstreamPool;
pub use target::Target;
