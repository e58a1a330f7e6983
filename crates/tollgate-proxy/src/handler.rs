//! The request pipeline: select the environment, normalize, route, access, upstream, forward,
//! response, log.

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use http::{Response, header, request};
use tollgate_plugin_api::{GatewayError, Hook, Outcome, PeerBody, ProxyBody, RequestCtx};
use tollgate_runtime::{Backend, Chain, Match, RequestView, Snapshot};

use crate::conn::ConnInfo;
use crate::error::{error_response, errors};
use crate::headers::{Seen, client_ip, first, has};
use crate::normalize::{self, normalize_path};
use crate::request_id::request_id;
use crate::response_body::{BytesIn, LogState, ResponseBody};
use crate::server::Shared;

/// Serves one request (its head and body apart: a `Request` taken apart in the future would be
/// held twice). Never fails: every error becomes a response here.
///
/// An `async` block rather than an `async fn`: an `async fn`'s future holds its arguments
/// twice, as it was created with them and as its first poll moves them into the body's locals;
/// a block's captures are used where they are (1.5 % fewer instructions per request with
/// `send_h1` done the same way, `bench/callgrind.sh`).
#[allow(clippy::manual_async_fn)]
pub(crate) fn handle(
    mut parts: request::Parts,
    body: PeerBody,
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
) -> impl Future<Output = Result<Response<ResponseBody>, Infallible>> + Send {
    async move {
        let snapshot = shared.snapshots.load();
        conn.activity.begin();
        let server = &snapshot.server;
        let id = request_id(
            &parts.headers,
            &server.request_id_header,
            server.trust_request_id,
        );
        let mut cx = RequestCtx::new(id, conn.peer, conn.tls);
        cx.client_addr = client_ip(conn.peer.ip(), &parts.headers, &server.trusted_proxies);

        let logging = shared.access_log.enabled();
        let mut log = LogState {
            done: false,
            request_id: cx.request_id.clone(),
            client_ip: cx.client_addr,
            // Moved: the request needs it no further (one reference count fewer).
            shared,
            snapshot: snapshot.clone(),
            activity: conn.activity.clone(),
            cx: None,
            logging,
            started: cx.started,
            method: parts.method.clone(),
            host: if logging {
                host_of(&parts).unwrap_or("").to_owned()
            } else {
                String::new()
            },
            path: String::new(),
            environment: None,
            route: None,
            target: None,
            status: http::StatusCode::OK,
            bytes_in: BytesIn::Known(0),
            upstream_ms: None,
            error: None,
            trace: snapshot.debug.then(Box::default),
        }
        .boxed();

        let result = pipeline(&snapshot, &mut cx, &mut parts, body, &conn, &mut log).await;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                log.error = Some(e.code);
                error_response(&e, &cx.request_id)
            }
        };

        let route = log.route.and_then(|r| snapshot.routes.get(r));
        let chain: &Chain = route
            .and_then(|r| snapshot.chain(r))
            .unwrap_or(&snapshot.fallback_chain);
        let (mut rparts, mut rbody) = response.into_parts();
        // Before the response policies, so that `response-headers` can still change them.
        if let Some(deprecation) = route.and_then(|r| r.deprecation.as_deref()) {
            deprecation.apply(&mut rparts.headers);
        }
        for policy in &chain.response {
            // The clock is read for the debug trace only, as in the other phases.
            let started = log.trace.is_some().then(std::time::Instant::now);
            policy.response(&mut cx, &mut rparts);
            if let (Some(trace), Some(started)) = (&mut log.trace, started) {
                trace.step("response", policy.name(), "continue", None, None, started);
            }
        }
        if !chain.body.is_empty() {
            rbody = match Box::pin(crate::forward::transform_body(
                chain,
                &mut cx,
                &mut rparts,
                rbody,
            ))
            .await
            {
                Ok(b) => b,
                Err(e) => {
                    log.error = Some(e.code);
                    let (p, b) = error_response(&e, &cx.request_id).into_parts();
                    rparts = p;
                    b
                }
            };
        }
        // HTTP/1.x is answered by Tollgate's own server, which writes the request id with the
        // head (replacing an upstream's field of that name); hyper's HTTP/2 needs it in the map.
        let id_field = (server.request_id_header.clone(), cx.request_id.clone());
        let id_field = if parts.version == http::Version::HTTP_2 {
            rparts.headers.insert(id_field.0, id_field.1);
            None
        } else {
            Some(id_field)
        };
        if logging && log.path.is_empty() {
            log.path.push_str(parts.uri.path());
        }
        log.status = rparts.status;
        if log.trace.is_some() {
            crate::debug::finish_trace(&snapshot, &cx, &mut log, &mut rparts.headers);
        }
        log.cx = Some(cx);
        let head = log.method == http::Method::HEAD;
        let body = ResponseBody::new(rbody, log, head);
        let body = match id_field {
            Some(field) => body.with_id_field(field),
            None => body,
        };
        Ok(Response::from_parts(rparts, body))
    }
}

async fn pipeline(
    snapshot: &Arc<Snapshot>,
    cx: &mut RequestCtx,
    parts: &mut request::Parts,
    body: PeerBody,
    conn: &ConnInfo,
    log: &mut LogState,
) -> Result<Response<ProxyBody>, GatewayError> {
    let server = &snapshot.server;
    check_head(
        parts,
        server.limits.max_headers,
        server.limits.max_header_bytes,
    )?;
    let mut seen = Seen::of(&parts.headers);
    check_framing(parts, seen)?;

    let norm = &server.path_normalization;
    let options = normalize::Options {
        remove_dot_segments: norm.remove_dot_segments,
        decode_unreserved: norm.decode_unreserved,
        merge_slashes: norm.merge_slashes,
        escaped_slashes: match norm.escaped_slashes {
            tollgate_model::EscapedSlashes::Keep => normalize::EscapedSlashes::Keep,
            tollgate_model::EscapedSlashes::Reject => normalize::EscapedSlashes::Reject,
            tollgate_model::EscapedSlashes::Unescape => normalize::EscapedSlashes::Unescape,
        },
    };
    if parts.method == http::Method::CONNECT {
        return Err(errors::bad_request("CONNECT is not supported"));
    }
    // One source of truth for the host: the URI authority of an HTTP/2 or absolute-form
    // request replaces `Host` (RFC 9112 §3.2.2). Policies may then change `Host`.
    if let Some(authority) = parts.uri.authority()
        && let Ok(value) = http::HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(header::HOST, value);
        seen.add(Seen::HOST);
    }
    let client_host = if seen.has(Seen::HOST) {
        first(&parts.headers, &header::HOST).cloned()
    } else {
        None
    };
    let host = client_host
        .as_ref()
        .and_then(|h| h.to_str().ok())
        .and_then(host_part);
    let environments = &snapshot.environments;
    let selected = environments.select(|| host, &parts.headers);
    // The environment header is for the gateway: never forwarded, not seen by policies.
    // Comparing the few names a request has is cheaper than hashing one (`remove` would,
    // on every request, for a header that is almost never there).
    let env_header = environments.header();
    if parts.headers.keys().any(|name| name == env_header) {
        parts.headers.remove(env_header);
    }
    let Some((env_index, environment)) = selected else {
        return Err(errors::no_environment());
    };
    log.environment = Some(env_index);
    cx.environment = Some(environment.name.clone());
    let router = &environment.router;
    // Normalize, route, and work out the path the upstream receives: what was matched,
    // rewritten if the route says so. The common case (already normalized, no rewrite)
    // allocates nothing and keeps the request's URI as it is.
    let (found, route, new_path) = {
        let raw_path = parts.uri.path();
        let normalized: Cow<'_, str> =
            normalize_path(raw_path, &options).map_err(|e| errors::bad_path(e.to_string()))?;
        let path: &str = &normalized;
        if log.logging {
            log.path.push_str(path);
        }
        let query = parts.uri.query();
        let view = RequestView {
            host,
            method: &parts.method,
            path,
            query,
            headers: &parts.headers,
        };
        // A CORS preflight is routed as the request it announces (falling back to OPTIONS),
        // so the route that will serve the real request, and its `cors` policy, answer it.
        let found: Option<Match> = match preflight_method(parts) {
            Some(announced) => router
                .find(&RequestView {
                    method: &announced,
                    ..view
                })
                .or_else(|| router.find(&view)),
            None => router.find(&view),
        };
        let Some(found) = found else {
            return Err(errors::not_found());
        };
        // Router matches always name a route of their snapshot.
        let route = snapshot
            .routes
            .get(found.route)
            .ok_or_else(errors::not_found)?;
        let with_query = |p: String| match query {
            Some(q) => format!("{p}?{q}"),
            None => p,
        };
        let rewritten = route
            .rewrite
            .as_ref()
            .map(|rw| with_query(rw.apply(path, &found)));
        let normalized = match normalized {
            Cow::Owned(p) => Some(with_query(p)),
            Cow::Borrowed(_) => None,
        };
        (found, route, (normalized, rewritten))
    };
    let (normalized_path, rewritten_path) = new_path;
    // Never run a route without its policies.
    let chain = snapshot.chain(route).ok_or_else(|| {
        GatewayError::internal("the route's policies are missing from the snapshot")
    })?;
    log.route = Some(found.route);
    cx.route = Some(route.info.clone());
    cx.params = found.params;
    // Access policies see the normalized path as the client addressed it; the upstream
    // receives the rewritten one.
    if let Some(path_and_query) = normalized_path {
        set_path(parts, path_and_query)?;
    }

    for policy in &chain.access {
        let started = log.trace.is_some().then(std::time::Instant::now);
        let outcome = match policy.access(cx, parts) {
            Hook::Ready(o) => o,
            Hook::Pending(f) => f.await,
        };
        if let (Some(trace), Some(started)) = (&mut log.trace, started) {
            crate::debug::record(trace, "access", policy.name(), &outcome, started);
        }
        match outcome {
            Outcome::Continue => {}
            Outcome::Respond(r) => return Ok(r),
            Outcome::Reject(e) => return Err(e),
        }
    }

    // Access policies may have changed the fields.
    if !chain.access.is_empty() {
        seen = Seen::of(&parts.headers);
    }
    if let Some(expect) = seen
        .has(Seen::EXPECT)
        .then(|| first(&parts.headers, &header::EXPECT))
        .flatten()
        && !expect.as_bytes().eq_ignore_ascii_case(b"100-continue")
    {
        return Err(GatewayError::downstream(
            http::StatusCode::EXPECTATION_FAILED,
            "expectation_failed",
            "only Expect: 100-continue is supported",
        ));
    }
    let content_length = seen
        .has(Seen::CONTENT_LENGTH)
        .then(|| first(&parts.headers, &header::CONTENT_LENGTH))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = cx.body_limit.unwrap_or(u64::MAX);
    if let Some(len) = content_length {
        if len > limit {
            return Err(errors::body_too_large(limit));
        }
        log.bytes_in = BytesIn::Known(len);
    }
    let body = if content_length.is_some() || !log.logging {
        ProxyBody::limited(body, limit)
    } else {
        let counter = Arc::new(AtomicU64::new(0));
        log.bytes_in = BytesIn::Counted(counter.clone());
        ProxyBody::counted(body, limit, counter)
    };

    if let Some(path_and_query) = rewritten_path {
        set_path(parts, path_and_query)?;
    }
    for policy in &chain.upstream {
        let started = log.trace.is_some().then(std::time::Instant::now);
        let outcome = policy.upstream(cx, parts);
        if let (Some(trace), Some(started)) = (&mut log.trace, started) {
            crate::debug::record(trace, "upstream", policy.name(), &outcome, started);
        }
        match outcome {
            Outcome::Continue => {}
            Outcome::Respond(r) => return Ok(r),
            Outcome::Reject(e) => return Err(e),
        }
    }
    // Upstream policies may have changed the fields too.
    if !chain.upstream.is_empty() {
        seen = Seen::of(&parts.headers);
    }
    let service = &snapshot.services[route.service];
    match &service.backend {
        // Boxed: keeps the (buffering) mock future out of every proxied request's future.
        Backend::Mock(mock) => Box::pin(crate::echo::mock_response(mock, cx, parts, body)).await,
        Backend::Pool(pool) => {
            crate::forward::forward(crate::forward::Forward {
                pool,
                service,
                route,
                client_host,
                seen,
                cx,
                parts,
                body,
                conn,
                log,
            })
            .await
        }
    }
}

/// Replaces the path and query of the request, keeping scheme and authority.
fn set_path(parts: &mut request::Parts, path_and_query: String) -> Result<(), GatewayError> {
    let invalid = || errors::bad_request("the rewritten path is not a valid URI");
    let mut uri = std::mem::take(&mut parts.uri).into_parts();
    uri.path_and_query =
        Some(http::uri::PathAndQuery::try_from(path_and_query).map_err(|_| invalid())?);
    parts.uri = http::Uri::from_parts(uri).map_err(|_| invalid())?;
    Ok(())
}

/// The method a CORS preflight announces, if this is one.
fn preflight_method(parts: &request::Parts) -> Option<http::Method> {
    if parts.method != http::Method::OPTIONS || !has(&parts.headers, &header::ORIGIN) {
        return None;
    }
    let announced = parts
        .headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)?
        .as_bytes();
    http::Method::from_bytes(announced).ok()
}

/// The request's host without port, from `Host` (HTTP/1) or the URI authority (HTTP/2).
/// `None` when there is none, or it is not visible ASCII.
pub(crate) fn host_of(parts: &request::Parts) -> Option<&str> {
    host_part(match parts.uri.authority() {
        Some(a) => a.as_str(),
        None => first(&parts.headers, &header::HOST)?.to_str().ok()?,
    })
}

/// The host of an authority (`Host` value), without user info and port; `None` when an IPv6
/// literal is not closed.
fn host_part(raw: &str) -> Option<&str> {
    // One pass over the bytes (this runs for every request): user info ends at the last
    // `@`, the port starts at the first `:` after it (outside an IPv6 literal's brackets).
    // The positions are of ASCII bytes, so slicing there keeps the `str` whole.
    let bytes = raw.as_bytes();
    let mut start = 0;
    let mut colon = None;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'@' => {
                start = i + 1;
                colon = None;
            }
            b':' if colon.is_none() => colon = Some(i),
            _ => {}
        }
    }
    if bytes.get(start) == Some(&b'[') {
        let v6 = &raw[start + 1..];
        return v6.split_once(']').map(|(h, _)| h);
    }
    raw.get(start..colon.unwrap_or(raw.len()))
}

/// Refuses an HTTP/1.1 request without `Host`, and, as a guard for requests that reach the
/// pipeline by another path than the two parsers (which refuse it already: Tollgate's HTTP/1.1
/// parser with `400`, HTTP/2's as malformed), one with both `Content-Length` and
/// `Transfer-Encoding` (a request smuggling vector).
fn check_framing(parts: &request::Parts, seen: Seen) -> Result<(), GatewayError> {
    if seen.has(Seen::TRANSFER_ENCODING) && seen.has(Seen::CONTENT_LENGTH) {
        return Err(errors::bad_request(
            "a request must not have both Content-Length and Transfer-Encoding",
        ));
    }
    if parts.version == http::Version::HTTP_11
        && parts.uri.authority().is_none()
        && !seen.has(Seen::HOST)
    {
        return Err(errors::bad_request(
            "an HTTP/1.1 request needs a Host header",
        ));
    }
    Ok(())
}

/// Enforces header count and size (HTTP/2 has no parser-level count limit).
fn check_head(
    parts: &request::Parts,
    max_headers: usize,
    max_bytes: usize,
) -> Result<(), GatewayError> {
    if parts.headers.len() > max_headers {
        return Err(errors::headers_too_large("too many request headers"));
    }
    let mut size = parts.uri.path_and_query().map_or(1, |p| p.as_str().len()) + 16;
    for (name, value) in &parts.headers {
        size += name.as_str().len() + value.len() + 4;
    }
    if size > max_bytes {
        return Err(errors::headers_too_large("request headers are too large"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use http::{Method, Request, Version};

    use super::*;

    fn parts(build: http::request::Builder) -> request::Parts {
        build.body(()).unwrap().into_parts().0
    }

    #[test]
    fn host_comes_from_authority_or_host_header_without_port() {
        let p = parts(Request::get("http://api.example.com:8443/x"));
        assert_eq!(host_of(&p), Some("api.example.com"));
        let p = parts(Request::get("/x").header("host", "a.test:8080"));
        assert_eq!(host_of(&p), Some("a.test"));
        let p = parts(Request::get("/x").header("host", "[::1]:8080"));
        assert_eq!(host_of(&p), Some("::1"));
        assert_eq!(host_of(&parts(Request::get("/x"))), None);
        let p = parts(Request::get("http://user:pw@b.test:81/x"));
        assert_eq!(host_of(&p), Some("b.test"));
        let p = parts(Request::get("/x").header("host", "[2001:db8::1]"));
        assert_eq!(host_of(&p), Some("2001:db8::1"));
        let p = parts(Request::get("/x").header("host", "[::1"));
        assert_eq!(host_of(&p), None);
        let p = parts(Request::get("/x").header("host", "c.test"));
        assert_eq!(host_of(&p), Some("c.test"));
        let utf8 = http::HeaderValue::from_bytes("ü.test".as_bytes()).unwrap();
        let p = parts(Request::get("/x").header("host", utf8));
        assert_eq!(host_of(&p), None);
    }

    #[test]
    fn framing_refuses_missing_host_and_double_framing() {
        let ok = parts(Request::get("/x").header("host", "a"));
        assert!(check_framing(&ok, Seen::of(&ok.headers)).is_ok());
        let no_host = parts(Request::get("/x").version(Version::HTTP_11));
        assert_eq!(
            check_framing(&no_host, Seen::of(&no_host.headers))
                .unwrap_err()
                .status,
            400
        );
        let http10 = parts(Request::get("/x").version(Version::HTTP_10));
        assert!(check_framing(&http10, Seen::of(&http10.headers)).is_ok());
        let both = parts(
            Request::post("/x")
                .header("host", "a")
                .header("content-length", "5")
                .header("transfer-encoding", "chunked"),
        );
        assert_eq!(
            check_framing(&both, Seen::of(&both.headers))
                .unwrap_err()
                .code,
            "bad_request"
        );
    }

    #[test]
    fn preflight_is_recognised_only_with_origin_and_announced_method() {
        let pre = parts(
            Request::options("/x")
                .header("origin", "https://a.test")
                .header("access-control-request-method", "PUT"),
        );
        assert_eq!(preflight_method(&pre), Some(Method::PUT));
        let plain = parts(Request::options("/x").header("origin", "https://a.test"));
        assert_eq!(preflight_method(&plain), None);
        let get = parts(
            Request::get("/x")
                .header("origin", "https://a.test")
                .header("access-control-request-method", "PUT"),
        );
        assert_eq!(preflight_method(&get), None);
    }

    #[test]
    fn set_path_keeps_scheme_and_authority() {
        let mut p = parts(Request::get("https://a.test/old?x=1"));
        set_path(&mut p, "/new?y=2".to_owned()).unwrap();
        assert_eq!(p.uri.to_string(), "https://a.test/new?y=2");
        let mut p = parts(Request::get("/old"));
        set_path(&mut p, "/new".to_owned()).unwrap();
        assert_eq!(p.uri.to_string(), "/new");
        assert!(set_path(&mut p, "no slash".to_owned()).is_err());
    }

    #[test]
    fn header_limits_count_and_size() {
        let many = {
            let mut b = Request::get("/x");
            for i in 0..5 {
                b = b.header(format!("x-{i}"), "v");
            }
            parts(b)
        };
        assert!(check_head(&many, 5, 10_000).is_ok());
        assert_eq!(check_head(&many, 4, 10_000).unwrap_err().status, 431);
        assert_eq!(check_head(&many, 5, 40).unwrap_err().status, 431);
    }
}
