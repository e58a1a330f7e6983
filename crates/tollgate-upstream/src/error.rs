//! Errors building upstream pools and sending requests.

use crate::client::ConnectError;
use crate::h1::{EncodeError, ExchangeError};

/// Why an upstream pool could not be built.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// A target URL is invalid.
    #[error("invalid target: {0}")]
    Target(String),
    /// The CA certificates could not be parsed.
    #[error("cannot load CA certificates: {reason}")]
    CaFile {
        /// What went wrong.
        reason: String,
    },
    /// TLS settings are inconsistent.
    #[error("upstream TLS: {0}")]
    Tls(String),
}

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection could be opened; nothing was sent, so another target may be tried.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The request failed on an established connection driven by hyper (HTTP/2 or an
    /// upgrade; it may have reached the upstream).
    #[error("upstream request failed: {0}")]
    Request(#[source] hyper::Error),
    /// The request failed on an established HTTP/1.1 connection (it may have reached the
    /// upstream), or reading the client's body for it failed.
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    /// The request cannot be written as HTTP/1.1.
    #[error("cannot send the request upstream: {0}")]
    Encode(#[from] EncodeError),
}
