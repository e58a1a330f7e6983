//! The one place where errors become HTTP responses.
//!
//! Every error answered by the gateway, whether raised by the proxy or by a policy, goes
//! through [`error_response`] and gets the stable body
//! `{"error": {"code": "...", "message": "...", "request_id": "..."}}`.

use bytes::{BufMut, BytesMut};
use http::{HeaderValue, Response, StatusCode, header};
use tollgate_plugin_api::{GatewayError, ProxyBody};

/// Builds the JSON error response for `error`.
pub fn error_response(error: &GatewayError, request_id: &HeaderValue) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(error_body(error, request_id)));
    *response.status_mut() = error.status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if error.status == StatusCode::BAD_REQUEST
        || error.status == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The JSON body of the error response for `error`.
pub(crate) fn error_body(error: &GatewayError, request_id: &HeaderValue) -> bytes::Bytes {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        error: Inner<'a>,
    }
    #[derive(serde::Serialize)]
    struct Inner<'a> {
        code: &'a str,
        message: &'a str,
        request_id: &'a str,
    }
    let body = Body {
        error: Inner {
            code: error.code,
            message: &error.message,
            request_id: request_id.to_str().unwrap_or(""),
        },
    };
    let mut buf = BytesMut::with_capacity(128).writer();
    // Serializing plain strings into memory cannot fail.
    let _ = serde_json::to_writer(&mut buf, &body);
    buf.get_mut().put_u8(b'\n');
    buf.into_inner().freeze()
}

/// Errors the proxy raises itself.
pub(crate) mod errors {
    use http::StatusCode;
    use tollgate_plugin_api::GatewayError;

    pub(crate) fn not_found() -> GatewayError {
        GatewayError::downstream(
            StatusCode::NOT_FOUND,
            "route_not_found",
            "no route matches this request",
        )
    }

    pub(crate) fn no_environment() -> GatewayError {
        GatewayError::downstream(
            StatusCode::NOT_FOUND,
            "no_environment",
            "no environment serves this host",
        )
    }

    pub(crate) fn bad_path(reason: String) -> GatewayError {
        GatewayError::downstream(StatusCode::BAD_REQUEST, "invalid_path", reason)
    }

    pub(crate) fn headers_too_large(what: &'static str) -> GatewayError {
        GatewayError::downstream(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            what,
        )
    }

    pub(crate) fn body_too_large(limit: u64) -> GatewayError {
        GatewayError::downstream(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body exceeds {limit} bytes"),
        )
    }

    pub(crate) fn bad_request(message: &'static str) -> GatewayError {
        GatewayError::downstream(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn bad_request_owned(message: String) -> GatewayError {
        GatewayError::downstream(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn unreachable(message: String) -> GatewayError {
        GatewayError::upstream(
            StatusCode::BAD_GATEWAY,
            "upstream_unreachable",
            message,
            true,
        )
    }

    pub(crate) fn upstream_failed(message: String) -> GatewayError {
        GatewayError::upstream(StatusCode::BAD_GATEWAY, "upstream_error", message, false)
    }

    pub(crate) fn upstream_timeout() -> GatewayError {
        GatewayError::upstream(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            "the upstream did not answer in time",
            false,
        )
    }

    pub(crate) fn no_target() -> GatewayError {
        GatewayError::upstream(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_upstream_target",
            "no upstream target can take this request",
            false,
        )
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn body_is_stable_json() {
        let e = errors::not_found();
        let r = error_response(&e, &HeaderValue::from_static("abc"));
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "route_not_found");
        assert_eq!(v["error"]["request_id"], "abc");
        assert!(v["error"]["message"].is_string());
    }
}
