//! `mock` services: a fixed response, or the request echoed back as JSON.

use std::collections::BTreeMap;

use http::{Response, request};
use http_body_util::BodyExt;
use tollgate_plugin_api::{BodyError, GatewayError, ProxyBody, RequestCtx};
use tollgate_runtime::MockResponse;

use crate::error::errors;

/// Largest request body an echo mock reads.
const ECHO_BODY_LIMIT: usize = 1024 * 1024;

pub(crate) async fn mock_response(
    mock: &MockResponse,
    cx: &RequestCtx,
    parts: &request::Parts,
    body: ProxyBody,
) -> Result<Response<ProxyBody>, GatewayError> {
    let bytes = if mock.echo {
        let received = http_body_util::Limited::new(body, ECHO_BODY_LIMIT)
            .collect()
            .await
            .map_err(|e| match e.downcast::<BodyError>() {
                Ok(b) => match *b {
                    BodyError::TooLarge { limit } => errors::body_too_large(limit),
                    other => errors::bad_request_owned(other.to_string()),
                },
                Err(_) => errors::body_too_large(ECHO_BODY_LIMIT as u64),
            })?
            .to_bytes();
        echo_json(cx, parts, &received)
    } else {
        mock.body.clone()
    };
    let mut response = Response::new(ProxyBody::full(bytes));
    *response.status_mut() = mock.status;
    *response.headers_mut() = mock.headers.clone();
    Ok(response)
}

fn echo_json(cx: &RequestCtx, parts: &request::Parts, body: &[u8]) -> bytes::Bytes {
    let mut headers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, value) in &parts.headers {
        headers
            .entry(name.as_str())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let headers: BTreeMap<&str, serde_json::Value> = headers
        .into_iter()
        .map(|(k, mut v)| {
            let value = if v.len() == 1 {
                serde_json::Value::String(v.remove(0))
            } else {
                serde_json::Value::from(v)
            };
            (k, value)
        })
        .collect();
    let params: BTreeMap<&str, &str> = cx
        .params
        .0
        .iter()
        .map(|(k, v)| (&**k, v.as_str()))
        .collect();
    let value = serde_json::json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(body),
        "client_ip": cx.client_addr.to_string(),
        "request_id": cx.request_id.to_str().unwrap_or(""),
        "environment": cx.environment.as_deref(),
        "api": cx.route.as_ref().map(|r| &*r.api),
        "route": cx.route.as_ref().map(|r| &*r.route),
        "params": params,
    });
    let mut out = serde_json::to_vec_pretty(&value).unwrap_or_default();
    out.push(b'\n');
    out.into()
}
