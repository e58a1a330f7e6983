//! The data plane.
//!
//! One worker thread per core, each with a single-threaded tokio runtime and its own
//! `SO_REUSEPORT` listening sockets, so a connection lives and dies on one core and its
//! upstream connections come from that worker's pool (the layout nginx uses; DESIGN.md §4 has
//! the measurements behind it). For each request the worker loads the current
//! [`tollgate_runtime::Snapshot`] once, normalizes the path, routes, runs the policy phases
//! (access, upstream, response, body, log) and forwards with streamed bodies. Errors become
//! responses in one place ([`error`]), with the stable JSON body.

mod access_log;
mod conn;
mod deadline;
pub mod debug;
mod echo;
pub mod error;
mod forward;
mod h1;
mod handler;
mod headers;
mod listener;
mod metrics;
pub mod normalize;
mod request_id;
mod response_body;
mod rewind;
mod server;
pub mod slice;
mod upgrade;
mod values;

pub use access_log::AccessLogSink;
pub use metrics::ProxyMetrics;
pub use server::{Proxy, ProxyConfig, ProxyHandle};
