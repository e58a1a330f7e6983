//! Test helpers: a request context, request and response heads, and hook results.

use std::net::{Ipv4Addr, SocketAddr};

use http::{HeaderValue, request, response};
use tollgate_plugin_api::{Hook, Outcome, PolicyConfigError, PolicyFactory, RequestCtx};

/// A fresh context for a plain-HTTP request from 192.0.2.1.
pub(crate) fn ctx() -> RequestCtx {
    RequestCtx::new(
        HeaderValue::from_static("req-1"),
        SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 40000)),
        false,
    )
}

/// A request head.
pub(crate) fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> request::Parts {
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

/// A response head.
pub(crate) fn response(status: u16, headers: &[(&str, &str)]) -> response::Parts {
    let mut builder = http::Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

/// The outcome of a hook that must decide without waiting.
pub(crate) fn ready(hook: Hook<'_>) -> Outcome {
    match hook {
        Hook::Ready(outcome) => outcome,
        Hook::Pending(_) => panic!("hook should decide synchronously"),
    }
}

/// The error `factory` reports for `config`.
pub(crate) fn build_error(
    factory: &dyn PolicyFactory,
    config: serde_json::Value,
) -> PolicyConfigError {
    match factory.build(&config) {
        Ok(_) => panic!("config should be refused: {config}"),
        Err(e) => e,
    }
}

/// All values of header `name`, as text.
pub(crate) fn values<'a>(headers: &'a http::HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}
