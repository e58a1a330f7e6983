//! The contract between the proxy and policies (plugins).
//!
//! A [`Policy`] is a configured plugin instance. It implements only the phases it needs; the
//! proxy runs each phase's hooks in priority order and obeys the [`Outcome`] each returns. A
//! [`PolicyFactory`] turns a JSON configuration into a policy, reporting errors with the field
//! path; the [`Registry`] is the explicit list of factories the binary was built with. This crate
//! is small and stable on purpose: plugins depend on it, not on the proxy.

mod body;
mod context;
mod error;
mod factory;
mod outcome;
mod policy;
mod streamed;

pub use body::{BodyError, PeerBody, ProxyBody};
pub use context::{Params, RequestCtx, RouteInfo};
pub use error::{ErrorSource, GatewayError};
pub use factory::{PolicyConfigError, PolicyFactory, Registry, parse_policy_config};
pub use outcome::{Hook, Outcome};
pub use policy::{Phases, Policy};
pub use streamed::{BodyItem, BodySender, StreamedBody, streamed};
