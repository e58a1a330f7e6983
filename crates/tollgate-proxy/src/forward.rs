//! Forwarding to an upstream target, and the body phase.

use std::error::Error as _;
use std::time::Instant;

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Response, StatusCode, Uri, Version, header, request, response};
use http_body_util::BodyExt;
use tollgate_model::{HostPolicy, Protocol};
use tollgate_plugin_api::{BodyError, GatewayError, ProxyBody, RequestCtx};
use tollgate_runtime::{Chain, CompiledRoute, CompiledService};
use tollgate_upstream::{Overrides, SendError, UpstreamPool};

use crate::conn::ConnInfo;
use crate::error::errors;
use crate::headers::{Seen, is_trusted, set_forwarded, strip_hop_by_hop};
use crate::response_body::LogState;

/// Largest response body the body phase buffers.
const BODY_PHASE_LIMIT: usize = 8 * 1024 * 1024;

pub(crate) struct Forward<'a> {
    pub(crate) pool: &'a UpstreamPool,
    pub(crate) service: &'a CompiledService,
    pub(crate) route: &'a CompiledRoute,
    /// The client's host (before policies), for the forwarding headers.
    pub(crate) client_host: Option<HeaderValue>,
    /// The request's fields as the policies left them.
    pub(crate) seen: Seen,
    pub(crate) cx: &'a mut RequestCtx,
    pub(crate) parts: &'a mut request::Parts,
    pub(crate) body: ProxyBody,
    pub(crate) conn: &'a ConnInfo,
    pub(crate) log: &'a mut LogState,
}

/// Sends the request to a target of the route's service and returns its response.
///
/// Not an `async fn`: that would keep `f` for as long as it runs besides the fields taken out
/// of it. The returned future holds only the fields.
pub(crate) fn forward(
    f: Forward<'_>,
) -> impl Future<Output = Result<Response<ProxyBody>, GatewayError>> + Send {
    let Forward {
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
    } = f;
    async move {
        let Some((target_index, target)) = pool.select() else {
            return Err(errors::no_target());
        };
        log.target = Some((route.service, target_index));

        let upgrade = seen.has(Seen::UPGRADE) && is_upgrade(parts);
        // The client's side can be switched: its connection is served by Tollgate's HTTP/1.1
        // server, which hands the socket over once the `101` is written.
        let client_upgrade = upgrade
            && parts
                .extensions
                .remove::<crate::h1::ClientUpgrade>()
                .is_some();
        // Whether `Host` is there after the policies (the handler put the URI authority there).
        let has_host = seen.has(Seen::HOST);

        let started = Instant::now();
        // Everything the upstream request is built from lives in this block only, so that none
        // of it keeps room in this function's future while the request is in flight.
        let sent = {
            let mut headers = std::mem::take(&mut parts.headers);
            strip_hop_by_hop(&mut headers, client_upgrade);
            if seen.has(Seen::EXPECT) {
                headers.remove(header::EXPECT);
            }
            // The fields the gateway sets are written with the request head, replacing the client's
            // of the same names (see `tollgate_upstream::Overrides`).
            let id_name = log.snapshot.server.request_id_header.clone();
            let mut overrides = Overrides::default();
            let trusted = is_trusted(conn.peer.ip(), &log.snapshot.server.trusted_proxies);
            set_forwarded(
                &mut headers,
                &mut overrides,
                &conn.peer_info,
                trusted,
                conn.tls,
                client_host.as_ref(),
            );
            match (route.host_header, has_host) {
                // The client's own `Host` stays where it is.
                (HostPolicy::Pass, true) => {}
                // HTTP/1.0 clients may omit Host; upstreams speak HTTP/1.1 and need one.
                (HostPolicy::Pass, false) | (HostPolicy::Upstream, _) => {
                    let _ = overrides.set(&header::HOST, target.host_header.clone());
                }
            }
            let _ = overrides.set(&id_name, cx.request_id.clone());

            let protocol = pool.settings().protocol;
            let path_and_query = parts.uri.path_and_query().cloned();
            let pq = match (&path_and_query, target.base_path.is_empty()) {
                (Some(pq), true) => pq.clone(),
                (pq, _) => PathAndQuery::try_from(format!(
                    "{}{}",
                    target.base_path,
                    pq.as_ref().map_or("/", PathAndQuery::as_str)
                ))
                .map_err(|_| errors::bad_request("the upstream path is not a valid URI"))?,
            };
            let uri = match protocol {
                // HTTP/1.1 upstreams get the origin form (`/path?query`).
                Protocol::Http1 => Uri::from(pq),
                // HTTP/2 needs :scheme and :authority; the authority is the Host we would send.
                Protocol::Http2 => {
                    overrides.apply_to(&mut headers);
                    overrides = Overrides::default();
                    let authority = headers
                        .remove(header::HOST)
                        .and_then(|h| http::uri::Authority::try_from(h.as_bytes()).ok())
                        .unwrap_or_else(|| target.authority.clone());
                    Uri::builder()
                        .scheme(target.scheme.clone())
                        .authority(authority)
                        .path_and_query(pq)
                        .build()
                        .map_err(|e| {
                            GatewayError::internal(format!("cannot build upstream URI: {e}"))
                        })?
                }
            };

            let mut upstream_req = Request::new(body);
            *upstream_req.method_mut() = parts.method.clone();
            *upstream_req.uri_mut() = uri;
            *upstream_req.version_mut() = match protocol {
                Protocol::Http1 => Version::HTTP_11,
                Protocol::Http2 => Version::HTTP_2,
            };
            *upstream_req.headers_mut() = headers;

            pool.send(conn.worker, target_index, upstream_req, &overrides, started)
        };
        // HTTP/1.x requests are served by a connection driver that polls them every 50 ms: their
        // deadline needs no timer (see `deadline`).
        let result = if parts.version == Version::HTTP_2 {
            tokio::time::timeout(service.response_timeout, sent)
                .await
                .map_err(|_| crate::deadline::Elapsed)
        } else {
            crate::deadline::PolledTimeout::new(sent, started + service.response_timeout).await
        };
        let elapsed = started.elapsed();
        log.upstream_ms = Some(elapsed.as_secs_f64() * 1000.0);
        crate::metrics::cache::record_upstream(
            &log.shared.metrics,
            &log.snapshot,
            route.service,
            elapsed.as_secs_f64(),
        );
        let mut response = match result {
            Err(_) => return Err(errors::upstream_timeout()),
            Ok(Err(e)) => return Err(send_error(&e, cx)),
            Ok(Ok(r)) => r,
        };

        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            if client_upgrade {
                // The upstream's side rides in the response; the HTTP/1.1 connection takes it and
                // tunnels once the 101 is written.
                let upstream = hyper::upgrade::on(&mut response);
                let (mut parts, _) = response.into_parts();
                parts.extensions.insert(upstream);
                return Ok(Response::from_parts(parts, ProxyBody::Empty));
            }
            return Err(errors::upstream_failed(
                "the upstream switched protocols without being asked to".into(),
            ));
        }
        let (mut rparts, rbody) = response.into_parts();
        strip_hop_by_hop(&mut rparts.headers, false);
        Ok(Response::from_parts(rparts, rbody))
    }
}

/// Whether a request with an `Upgrade` field asks for a protocol upgrade (HTTP/1.1
/// `Connection: upgrade`).
fn is_upgrade(parts: &request::Parts) -> bool {
    parts.version == Version::HTTP_11
        && parts
            .headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Maps a forwarding failure to the right answer: our own body limit is the client's fault
/// (413), a failed connect is 502 `upstream_unreachable`, anything else 502 `upstream_error`.
fn send_error(e: &SendError, cx: &RequestCtx) -> GatewayError {
    let mut source = e.source();
    while let Some(s) = source {
        match s.downcast_ref::<BodyError>() {
            Some(BodyError::TooLarge { limit }) => return errors::body_too_large(*limit),
            // Reading the client's body failed: malformed chunking or a truncated upload.
            Some(BodyError::Hyper(client)) => {
                return errors::bad_request_owned(format!("invalid request body: {client}"));
            }
            Some(BodyError::Client(client)) => {
                return errors::bad_request_owned(format!("invalid request body: {client}"));
            }
            _ => {}
        }
        source = s.source();
    }
    // The whole cause chain, without repeating what a message already includes.
    let mut detail = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !detail.contains(&text) {
            detail.push_str(": ");
            detail.push_str(&text);
        }
        cause = c.source();
    }
    // Details (addresses, OS errors) go to the process log, not to the client.
    tracing::warn!(request_id = ?cx.request_id, error = %detail, "upstream request failed");
    match e {
        SendError::Connect(_) => errors::unreachable("cannot connect to the upstream".into()),
        _ => errors::upstream_failed("the upstream request failed".into()),
    }
}

/// Runs the body phase: buffers the response body (bounded) and lets each policy transform it.
pub(crate) async fn transform_body(
    chain: &Chain,
    cx: &mut RequestCtx,
    parts: &mut response::Parts,
    body: ProxyBody,
) -> Result<ProxyBody, GatewayError> {
    let collected = http_body_util::Limited::new(body, BODY_PHASE_LIMIT)
        .collect()
        .await
        .map_err(|_| {
            errors::upstream_failed("the response body is too large to transform".into())
        })?;
    let mut bytes: Bytes = collected.to_bytes();
    for policy in &chain.body {
        bytes = policy.body(cx, parts, bytes)?;
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Ok(ProxyBody::full(bytes))
}
