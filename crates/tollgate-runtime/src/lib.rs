//! From configuration to a running snapshot.
//!
//! [`compile`] turns a validated [`tollgate_model::Config`] into a [`Snapshot`]: one router per
//! environment (from the API versions live there, with `${vars.NAME}` resolved from the
//! environment's variables) and the tables that select an environment per request, each
//! route's ordered policy chain, the upstream pools (reusing the previous snapshot's pools
//! when a service did not change, so warm connections survive a reload) and the TLS
//! certificate resolver. Compiling happens off the request path; the result is
//! published with one atomic swap through a [`SnapshotHandle`], and a request uses the snapshot
//! it loaded when it started until it ends.

mod chain;
mod compile;
mod debug;
mod deprecation;
mod environments;
mod handle;
mod mock;
mod rewrite;
mod route_slot;
mod router;
mod routes;
mod snapshot;
mod tls;

pub use chain::Chain;
pub use compile::{CompileOptions, Compiler, compile};
pub use debug::{TRACE_HEADER, Trace, TraceStep, UpstreamTrace};
pub use deprecation::DeprecationHeaders;
pub use environments::{CompiledEnvironment, Environments};
pub use handle::SnapshotHandle;
pub use mock::MockResponse;
pub use rewrite::CompiledRewrite;
pub use route_slot::RouteSlot;
pub use router::{Match, RequestView, Router};
pub use routes::{RouteBlock, RouteId, Routes};
pub use snapshot::{Backend, CompiledRoute, CompiledService, ServerSettings, Snapshot};
pub use tls::TlsSettings;
