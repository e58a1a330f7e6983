//! Errors building upstream pools.

/// Why an upstream pool could not be built.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// A target URL is invalid.
    #[error("invalid target: {0}")]
    Target(String),
    /// The CA file could not be read or parsed.
    #[error("cannot load CA certificates from {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// TLS settings are inconsistent.
    #[error("upstream TLS: {0}")]
    Tls(String),
}
