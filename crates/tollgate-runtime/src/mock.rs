//! Precomputed responses of `mock` services.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tollgate_model::MockBackend;

/// A mock service's response, built once per snapshot.
#[derive(Debug, Clone)]
pub struct MockResponse {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body (ignored when `echo`).
    pub body: Bytes,
    /// Answer with the request as JSON.
    pub echo: bool,
}

impl MockResponse {
    /// Compiles a mock backend; errors name the offending header.
    pub fn new(mock: &MockBackend) -> Result<Self, String> {
        let status = StatusCode::from_u16(mock.status)
            .map_err(|_| format!("{} is not an HTTP status code", mock.status))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &mock.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{name:?} is not a valid header name"))?;
            let v = HeaderValue::from_str(value)
                .map_err(|_| format!("header {name:?} has an invalid value"))?;
            headers.append(n, v);
        }
        if !headers.contains_key(http::header::CONTENT_TYPE) {
            let ct = if mock.echo {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        Ok(Self {
            status,
            headers,
            body: Bytes::from(mock.body.clone()),
            echo: mock.echo,
        })
    }
}
