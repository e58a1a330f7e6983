//! One upstream target, with everything the request path needs precomputed.

use http::HeaderValue;
use http::uri::{Authority, Scheme};
use tollgate_model::TargetUrl;

use crate::UpstreamError;

/// An upstream target: where to connect, what `Host` to send, which path prefix to add.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as configured (for logs).
    pub url: String,
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host name or IP (no brackets), for TLS server names.
    pub host: String,
    /// `host:port` to connect to.
    pub authority: Authority,
    /// The `Host` header value when the route sends the upstream's host.
    pub host_header: HeaderValue,
    /// Path prefix added in front of every forwarded path (no trailing slash).
    pub base_path: String,
    /// Balancing weight.
    pub weight: u32,
}

impl Target {
    /// Builds a target from its configured URL and weight.
    pub fn new(url: &str, weight: u32) -> Result<Self, UpstreamError> {
        let parsed = TargetUrl::parse(url).map_err(UpstreamError::Target)?;
        let host = if parsed.host.contains(':') {
            format!("[{}]", parsed.host)
        } else {
            parsed.host.clone()
        };
        let default_port = if parsed.tls { 443 } else { 80 };
        let authority_text = format!("{host}:{}", parsed.port);
        let host_text = if parsed.port == default_port {
            host
        } else {
            authority_text.clone()
        };
        Ok(Self {
            host: parsed.host.clone(),
            url: url.to_owned(),
            scheme: if parsed.tls {
                Scheme::HTTPS
            } else {
                Scheme::HTTP
            },
            authority: authority_text
                .parse()
                .map_err(|e| UpstreamError::Target(format!("{url}: {e}")))?,
            host_header: HeaderValue::from_str(&host_text)
                .map_err(|e| UpstreamError::Target(format!("{url}: {e}")))?,
            base_path: parsed.base_path,
            weight,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precomputes_authority_and_host() {
        let t = Target::new("http://127.0.0.1:8080/base", 3).unwrap();
        assert_eq!(t.authority.as_str(), "127.0.0.1:8080");
        assert_eq!(t.host_header, "127.0.0.1:8080");
        assert_eq!(t.base_path, "/base");
        let t = Target::new("https://example.com", 1).unwrap();
        assert_eq!(t.authority.as_str(), "example.com:443");
        assert_eq!(t.host_header, "example.com");
        let t = Target::new("http://[::1]:9000", 1).unwrap();
        assert_eq!(t.authority.as_str(), "[::1]:9000");
    }
}
