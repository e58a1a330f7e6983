//! Successful responses: JSON bodies with the object's revision as `ETag`, and `Location`
//! for created objects.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A JSON object with its revision as a strong entity tag (`ETag: "12"`).
#[derive(Debug)]
pub(crate) struct Tagged<T> {
    status: StatusCode,
    revision: i64,
    location: Option<String>,
    body: T,
}

impl<T: Serialize> Tagged<T> {
    /// 200 with `body` at `revision`.
    pub(crate) fn ok(revision: i64, body: T) -> Self {
        Self {
            status: StatusCode::OK,
            revision,
            location: None,
            body,
        }
    }

    /// 201 with `body` at `revision`, created at `location`.
    pub(crate) fn created(revision: i64, location: String, body: T) -> Self {
        Self {
            status: StatusCode::CREATED,
            revision,
            location: Some(location),
            body,
        }
    }
}

/// The entity tag of a revision.
pub(crate) fn etag(revision: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{revision}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

impl<T: Serialize> IntoResponse for Tagged<T> {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::ETAG, etag(self.revision));
        if let Some(location) = self.location
            && let Ok(value) = HeaderValue::from_str(&location)
        {
            headers.insert(header::LOCATION, value);
        }
        response
    }
}

/// Percent-encodes a path segment for `Location` headers.
pub(crate) fn segment(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
