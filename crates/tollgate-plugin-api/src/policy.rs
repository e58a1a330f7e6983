//! The policy trait and its phases.

use bytes::Bytes;
use http::{request, response};

use crate::{GatewayError, Hook, Outcome, RequestCtx};

/// The set of phases a policy takes part in; the proxy only calls hooks in this set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Phases(u8);

impl Phases {
    /// No phase.
    pub const NONE: Self = Self(0);
    /// Access: authentication, authorization, limits, validation. May respond.
    pub const ACCESS: Self = Self(1);
    /// Upstream: rewrite the request before it is forwarded.
    pub const UPSTREAM: Self = Self(1 << 1);
    /// Response: edit the response head (status, headers) before it is sent.
    pub const RESPONSE: Self = Self(1 << 2);
    /// Body: transform the whole response body (buffered, bounded). Costs memory: use sparingly.
    pub const BODY: Self = Self(1 << 3);
    /// Log: observe the finished exchange.
    pub const LOG: Self = Self(1 << 4);

    /// True when every phase of `other` is in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Phases {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// A configured plugin instance. Built once per configuration snapshot by its
/// [`PolicyFactory`](crate::PolicyFactory) and shared by every request on every worker, so it is
/// immutable (interior state, if any, is atomics or sharded maps).
///
/// Every hook has a default that does nothing and continues; [`Policy::phases`] must name the
/// hooks a policy overrides, since the proxy skips the others without calling them.
pub trait Policy: Send + Sync + 'static {
    /// The plugin name (as in configuration), for logs and traces.
    fn name(&self) -> &'static str;

    /// The phases this policy's hooks take part in.
    fn phases(&self) -> Phases;

    /// Access phase: called after routing, before anything is sent upstream, in priority order.
    /// `req` is the request head as received (path normalized). Returning anything but
    /// `Continue` ends the access phase and answers the client.
    fn access<'a>(&'a self, _cx: &'a mut RequestCtx, _req: &'a mut request::Parts) -> Hook<'a> {
        Hook::Ready(Outcome::Continue)
    }

    /// Upstream phase: called after access, just before forwarding; may edit the request head
    /// (headers, path) that goes upstream.
    fn upstream(&self, _cx: &mut RequestCtx, _req: &mut request::Parts) -> Outcome {
        Outcome::Continue
    }

    /// Response phase: called on every response — from the upstream, a policy, or an error —
    /// before its head is sent; may edit status and headers.
    fn response(&self, _cx: &mut RequestCtx, _res: &mut response::Parts) {}

    /// Body phase: called with the complete response body (bounded by the proxy) for policies
    /// that transform it. Returns the new body.
    fn body(
        &self,
        _cx: &mut RequestCtx,
        _res: &response::Parts,
        body: Bytes,
    ) -> Result<Bytes, GatewayError> {
        Ok(body)
    }

    /// Log phase: called once the exchange is over (response sent or connection lost).
    fn log(&self, _cx: &RequestCtx, _status: http::StatusCode) {}
}
