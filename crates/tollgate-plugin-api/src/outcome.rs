//! What a hook tells the proxy to do next.

use std::future::Future;
use std::pin::Pin;

use http::Response;

use crate::{GatewayError, ProxyBody};

/// The decision of a hook.
#[derive(Debug)]
pub enum Outcome {
    /// Go on with the next hook or phase.
    Continue,
    /// Stop processing and answer with this response (e.g. a CORS preflight or a mock).
    /// The response phase still runs on it.
    Respond(Response<ProxyBody>),
    /// Stop processing and answer with this error, rendered as the standard JSON error body.
    Reject(GatewayError),
}

/// The result of an access hook: decided now (no allocation), or later by a future (for
/// policies that must do I/O, such as token introspection).
pub enum Hook<'a> {
    /// Decided.
    Ready(Outcome),
    /// Decided when the future completes.
    Pending(Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>),
}

impl From<Outcome> for Hook<'_> {
    fn from(outcome: Outcome) -> Self {
        Self::Ready(outcome)
    }
}

impl std::fmt::Debug for Hook<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ready(o) => f.debug_tuple("Ready").field(o).finish(),
            Self::Pending(_) => f.write_str("Pending(..)"),
        }
    }
}
