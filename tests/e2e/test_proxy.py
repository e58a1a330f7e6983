"""Forwarding: protocols, bodies, trailers, upgrades, connection reuse, header hygiene,
forwarding headers, request ids and load balancing."""

from __future__ import annotations

import hashlib
import re
import socket
import time
from collections import Counter

import httpx
import pytest

from support.configs import one_route
from support.origin import pattern_sha256
from support.rawhttp import RawConnection, build_request, raw_request


def echo_of(resp) -> dict:
    assert resp.status_code == 200, resp.text
    return resp.json()


def headers_of(echo: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in echo["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


# --------------------------------------------------------------------------- protocols


def test_http1_get_and_post_body_reach_the_origin_intact(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    body = bytes(range(256)) * 1000
    with httpx.Client(base_url=gw.proxy_url) as c:
        r = c.get("/echo/x?a=1&b=%20")
        assert r.http_version == "HTTP/1.1"
        e = echo_of(r)
        assert (e["method"], e["path"], e["query"]) == ("GET", "/echo/x", "a=1&b=%20")
        e = echo_of(c.post("/echo/up", content=body))
    assert e["body_len"] == len(body)
    assert e["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert origin.last().header("content-length") == str(len(body))


def mock_echo_config(**extra) -> dict:
    """Everything answered by the gateway's own echo mock (no upstream involved)."""
    return {
        "services": [{"name": "echo", "mock": {"echo": True}}],
        "apis": [{"name": "api", "routes": [{"name": "r", "paths": ["/"], "service": "echo"}]}],
        **extra,
    }


def test_http2_over_tls_negotiated_by_alpn(gateway_factory, certs):
    gw = gateway_factory(mock_echo_config(tls={"certificates": [certs.localhost.as_config()]}))
    with httpx.Client(http2=True, verify=certs.client_context()) as c:
        r = c.post(gw.tls_url + "/alpn?x=1", content=b"hello")
        r1 = httpx.get(gw.tls_url + "/alpn", verify=certs.client_context())
    assert r.http_version == "HTTP/2"
    assert r.status_code == 200
    assert r.json()["body"] == "hello" and r.json()["query"] == "x=1"
    # Without h2 in ALPN the same listener speaks HTTP/1.1.
    assert r1.http_version == "HTTP/1.1" and r1.status_code == 200


def test_http2_prior_knowledge_on_the_plain_port(gateway_factory):
    gw = gateway_factory(mock_echo_config())
    with httpx.Client(http1=False, http2=True) as c:
        r = c.get(gw.proxy_url + "/h2c?x=1")
        r2 = c.post(gw.proxy_url + "/h2c", content=b"x" * 100_000)
    assert r.http_version == "HTTP/2" and r.status_code == 200
    assert r.json()["query"] == "x=1"
    assert len(r2.json()["body"]) == 100_000


@pytest.mark.parametrize("transport", ["h2c", "h2-tls"])
def test_http2_client_is_proxied_to_http1_upstream_with_host(gateway_factory, origin, certs, transport):
    gw = gateway_factory(one_route(origin, tls={"certificates": [certs.localhost.as_config()]}))
    if transport == "h2c":
        c = httpx.Client(http1=False, http2=True)
        base = gw.proxy_url
    else:
        c = httpx.Client(http2=True, verify=certs.client_context())
        base = gw.tls_url
    with c:
        r = c.post(base + "/echo/h2?x=1", content=b"hello")
    assert r.http_version == "HTTP/2"
    e = echo_of(r)
    assert (e["http_version"], e["query"], e["body_len"]) == ("1.1", "x=1", 5)
    h = headers_of(e)
    authority = base.split("//", 1)[1]
    assert h["host"] == [authority]
    assert h["x-forwarded-host"] == [authority]
    assert h["x-forwarded-proto"] == ["https" if transport == "h2-tls" else "http"]


def test_upstream_http2_prior_knowledge(gateway_factory, h2_origin):
    gw = gateway_factory(one_route(h2_origin, service={"protocol": "http2"}))
    with httpx.Client(base_url=gw.proxy_url) as c:
        e = echo_of(c.post("/echo/up?q=2", content=b"abc" * 1000))
        e2 = echo_of(c.get("/echo/again"))
    assert e["http_version"] == "2" and e2["http_version"] == "2"
    assert (e["path"], e["query"], e["body_len"]) == ("/echo/up", "q=2", 3000)
    h = headers_of(e)
    assert ":authority" in h or "host" in h
    # Both requests share one HTTP/2 connection.
    assert h2_origin.connections == 1


# --------------------------------------------------------------------------- bodies


def test_chunked_request_body_is_streamed_to_the_origin(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    chunks = [b"a" * 10, b"b" * 70000, b"c"]
    body = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks) + b"0\r\n\r\n"
    req = build_request("POST", "/upload", [("Transfer-Encoding", "chunked")], body)
    r = raw_request(gw.proxy_port, req, check_closed=False)
    assert r.status == 200
    assert r.json()["len"] == sum(map(len, chunks))
    assert r.json()["sha256"] == hashlib.sha256(b"".join(chunks)).hexdigest()
    rec = origin.last()
    assert rec.body_len == 70011
    # Forwarded without a length: still chunked upstream (never buffered to compute one).
    assert rec.header("transfer-encoding") == "chunked"
    assert not rec.has_header("content-length")


def test_chunked_response_is_streamed_to_the_client(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    n = 1_000_003
    r = raw_request(gw.proxy_port, build_request("GET", f"/bytes/{n}"), check_closed=False)
    assert r.status == 200
    assert r.chunked
    assert len(r.body) == n
    assert hashlib.sha256(r.body).hexdigest() == pattern_sha256(n)


def test_trailers_pass_through_http1(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    r = raw_request(gw.proxy_port, build_request("GET", "/trailers", [("TE", "trailers")]), check_closed=False)
    assert r.status == 200
    assert origin.last().header("te") == "trailers"
    assert r.chunked
    assert r.trailer("x-checksum") == hashlib.sha256(r.body).hexdigest(), (r.headers, r.trailers)


def test_trailers_pass_through_http2(gateway_factory, origin):
    import h2.config
    import h2.connection
    import h2.events

    gw = gateway_factory(one_route(origin))
    sock = socket.create_connection(("127.0.0.1", gw.proxy_port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", "gw.test"),
                          (":path", "/trailers"), ("te", "trailers"),
                          # An explicit host: keeps this test independent of the missing-Host bug.
                          ("host", "gw.test")], end_stream=True)
    sock.sendall(conn.data_to_send())
    body, trailers, done = b"", {}, False
    while not done:
        data = sock.recv(65536)
        assert data, "connection closed early"
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.DataReceived):
                body += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.TrailersReceived):
                trailers = {k.decode(): v.decode() for k, v in ev.headers}
            elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                done = True
        sock.sendall(conn.data_to_send())
    sock.close()
    assert trailers.get("x-checksum") == hashlib.sha256(body).hexdigest(), trailers


def test_expect_100_continue_is_answered_before_the_body_is_sent(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    body = b"z" * 50_000
    with RawConnection("127.0.0.1", gw.proxy_port) as c:
        c.send(build_request("POST", "/upload", [("Content-Length", str(len(body))), ("Expect", "100-continue")]))
        version, status, _, _ = c.read_head()
        assert status == 100, status
        c.send(body)
        r = c.read_response()
    assert r.status == 200
    assert r.json() == {"len": len(body), "sha256": hashlib.sha256(body).hexdigest(), "origin_name": "origin"}
    # The expectation is hop-by-hop: the gateway answered it; the origin never saw it.
    assert not origin.last().has_header("expect")


def test_unsupported_expectation_is_417(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    r = raw_request(gw.proxy_port, build_request("POST", "/upload", [("Content-Length", "0"), ("Expect", "teapot")]),
                    check_closed=False)
    assert r.status == 417
    assert r.json()["error"]["code"] == "expectation_failed"
    assert origin.requests == []


# --------------------------------------------------------------------------- WebSocket


def test_websocket_echo_through_the_gateway(gateway_factory, origin):
    from websockets.sync.client import connect

    gw = gateway_factory(one_route(origin))
    url = gw.proxy_url.replace("http://", "ws://") + "/ws"
    with connect(url, open_timeout=10, close_timeout=5) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00\x01binary")
        assert ws.recv(timeout=5) == b"\x00\x01binary"
        big = "x" * 200_000
        ws.send(big)
        assert ws.recv(timeout=5) == big
        ws.ping(b"p").wait(timeout=5)
    rec = origin.last()
    assert rec.path == "/ws"
    assert (rec.header("upgrade") or "").lower() == "websocket"
    assert "upgrade" in (rec.header("connection") or "").lower()
    assert rec.header("sec-websocket-key")


# --------------------------------------------------------------------------- connections


def test_upstream_connections_are_reused(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, server={"workers": 2}))
    n = 30
    for _ in range(n):
        # A new client connection each time: reuse must come from the upstream pool.
        with httpx.Client() as c:
            assert c.get(gw.proxy_url + "/echo/k").status_code == 200
    assert len(origin.requests) == n
    assert origin.connections <= 2, origin.connections
    assert len({r.connection_id for r in origin.requests}) <= 2


def test_client_keep_alive_serves_many_requests_on_one_connection(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    with RawConnection("127.0.0.1", gw.proxy_port) as c:
        for i in range(5):
            c.send(build_request("GET", f"/echo/{i}"))
            r = c.read_response()
            assert r.status == 200
            assert r.json()["path"] == f"/echo/{i}"
        assert not c.wait_closed(0.3)


# --------------------------------------------------------------------------- header hygiene


def test_hop_by_hop_request_headers_are_removed_including_connection_named(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    req = build_request("GET", "/echo/hop", [
        ("Connection", "keep-alive, X-Secret, x-other"),
        ("X-Secret", "1"),
        ("X-Other", "2"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Connection", "keep-alive"),
        ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
        ("TE", "gzip"),
        ("Upgrade", "h2c"),
        ("X-Kept", "yes"),
    ])
    r = raw_request(gw.proxy_port, req, check_closed=False)
    assert r.status == 200
    rec = origin.last()
    names = {k for k, _ in rec.headers}
    for gone in ("x-secret", "x-other", "keep-alive", "proxy-connection", "te", "upgrade", "transfer-encoding"):
        assert gone not in names, (gone, rec.headers)
    assert "keep-alive" not in (rec.header("connection") or "")
    assert rec.header("x-kept") == "yes"


def test_hop_by_hop_response_headers_are_removed(gateway_factory, origin_factory):
    def handler(rec):
        if rec.path == "/hop":
            return 200, [("Connection", "X-Resp-Secret"), ("X-Resp-Secret", "1"), ("Keep-Alive", "timeout=9"),
                         ("Proxy-Authenticate", "Basic"), ("X-Resp-Kept", "ok")], b"ok"
        return None

    o = origin_factory("hop", handler=handler)
    gw = gateway_factory(one_route(o))
    r = raw_request(gw.proxy_port, build_request("GET", "/hop"), check_closed=False)
    assert r.status == 200 and r.body == b"ok"
    names = {k for k, _ in r.headers}
    assert "x-resp-secret" not in names
    assert "keep-alive" not in names
    assert r.header("x-resp-kept") == "ok"
    assert r.header("connection") in (None, "keep-alive")


def test_forwarding_headers_from_untrusted_client_are_replaced(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    with httpx.Client() as c:
        e = echo_of(c.get(gw.proxy_url + "/echo/fwd", headers={
            "host": "shop.example",
            "x-forwarded-for": "6.6.6.6",
            "x-forwarded-proto": "https",
            "x-forwarded-host": "evil.example",
            "forwarded": "for=6.6.6.6;proto=https",
        }))
    h = headers_of(e)
    assert h["x-forwarded-for"] == ["127.0.0.1"]
    assert h["x-forwarded-proto"] == ["http"]
    assert h["x-forwarded-host"] == ["shop.example"]
    assert h["forwarded"] == ["for=127.0.0.1;host=shop.example;proto=http"]
    rec = gw.wait_for_access_log(lambda r: r["path"] == "/echo/fwd")
    assert rec["client_ip"] == "127.0.0.1"


def test_forwarding_headers_from_trusted_proxy_are_extended(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, server={"trusted_proxies": ["127.0.0.1/32"]}))
    with httpx.Client() as c:
        e = echo_of(c.get(gw.proxy_url + "/echo/fwd", headers={
            "host": "shop.example",
            "x-forwarded-for": "6.6.6.6",
            "x-forwarded-proto": "https",
            "x-forwarded-host": "public.example",
            "forwarded": "for=6.6.6.6;proto=https",
        }))
    h = headers_of(e)
    assert h["x-forwarded-for"] == ["6.6.6.6, 127.0.0.1"]
    assert h["x-forwarded-proto"] == ["https"]
    assert h["x-forwarded-host"] == ["public.example"]
    assert h["forwarded"] == ["for=6.6.6.6;proto=https, for=127.0.0.1;host=shop.example;proto=http"]
    rec = gw.wait_for_access_log(lambda r: r["path"] == "/echo/fwd")
    assert rec["client_ip"] == "6.6.6.6"


# --------------------------------------------------------------------------- request ids


def test_request_id_is_generated_returned_and_forwarded(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    with httpx.Client() as c:
        r1 = c.get(gw.proxy_url + "/echo/id")
        r2 = c.get(gw.proxy_url + "/echo/id")
    rid = r1.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid), rid
    assert r2.headers["x-request-id"] != rid
    assert headers_of(echo_of(r1))["x-request-id"] == [rid]
    assert gw.wait_for_access_log(lambda r: r["request_id"] == rid)["status"] == 200


def test_incoming_request_id_is_propagated(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    with httpx.Client() as c:
        r = c.get(gw.proxy_url + "/echo/id", headers={"x-request-id": "trace-abc.123"})
        bad = c.get(gw.proxy_url + "/echo/id", headers={"x-request-id": "x" * 300})
    assert r.headers["x-request-id"] == "trace-abc.123"
    assert headers_of(echo_of(r))["x-request-id"] == ["trace-abc.123"]
    # An id that is not well-formed (too long) is replaced by a generated one.
    assert re.fullmatch(r"[0-9a-f]{32}", bad.headers["x-request-id"])
    assert headers_of(echo_of(bad))["x-request-id"] == [bad.headers["x-request-id"]]


def test_request_id_on_gateway_errors_matches_the_body(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, ["/only"]))
    with httpx.Client() as c:
        r = c.get(gw.proxy_url + "/nope", headers={"x-request-id": "given-1"})
    assert r.status_code == 404
    assert r.headers["x-request-id"] == "given-1"
    assert r.json()["error"]["request_id"] == "given-1"


# --------------------------------------------------------------------------- balancing


def test_weighted_round_robin_gives_exact_proportions(gateway_factory, origin_factory):
    a, b, c_ = origin_factory("a"), origin_factory("b"), origin_factory("c")
    gw = gateway_factory(one_route([{"url": a.url, "weight": 3}, {"url": b.url, "weight": 1},
                                    {"url": c_.url, "weight": 1}]))
    seen = []
    with httpx.Client(base_url=gw.proxy_url) as c:
        for _ in range(100):
            r = c.get("/echo/lb")
            assert r.status_code == 200
            seen.append(r.headers["x-origin-name"])
    assert Counter(seen) == {"a": 60, "b": 20, "c": 20}
    assert (len(a.requests), len(b.requests), len(c_.requests)) == (60, 20, 20)
    # Smooth: every window of five consecutive picks is 3:1:1.
    for i in range(0, 100, 5):
        assert Counter(seen[i:i + 5]) == {"a": 3, "b": 1, "c": 1}, seen[i:i + 5]


def test_zero_weight_target_gets_no_traffic(gateway_factory, origin_factory):
    a, b = origin_factory("a"), origin_factory("b")
    gw = gateway_factory(one_route([{"url": a.url, "weight": 1}, {"url": b.url, "weight": 0}]))
    with httpx.Client(base_url=gw.proxy_url) as c:
        for _ in range(10):
            assert c.get("/echo/z").status_code == 200
    assert len(a.requests) == 10 and b.requests == []


# --------------------------------------------------------------------------- fidelity


def test_pipelined_requests_are_answered_in_order(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    with RawConnection("127.0.0.1", gw.proxy_port) as c:
        c.send(b"".join(build_request("GET", f"/slow/{ms}") for ms in (300, 0, 100)))
        got = [c.read_response().json()["path"] for _ in range(3)]
    assert got == ["/slow/300", "/slow/0", "/slow/100"]


@pytest.mark.parametrize("method", ["PATCH", "PURGE", "OPTIONS", "DELETE"])
def test_methods_are_forwarded_verbatim(gateway_factory, origin, method):
    gw = gateway_factory(one_route(origin))
    r = httpx.request(method, gw.proxy_url + "/echo/m", content=b"data")
    assert echo_of(r)["method"] == method
    assert origin.last().body_len == 4


def test_query_string_is_forwarded_byte_for_byte(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    query = "a=%2F&b=c+d&&e&f=%zz&g=%E2%82%AC&h=?x"
    r = raw_request(gw.proxy_port, build_request("GET", f"/echo/q?{query}"), check_closed=False)
    assert r.status == 200
    assert origin.last().query == query


def test_repeated_response_headers_are_all_passed_back(gateway_factory, origin_factory):
    o = origin_factory("cookies", handler=lambda rec: (200, [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
                                                               ("Vary", "accept"), ("Vary", "origin")], b"ok"))
    gw = gateway_factory(one_route(o))
    r = raw_request(gw.proxy_port, build_request("GET", "/c"), check_closed=False)
    assert r.header_all("set-cookie") == ["a=1", "b=2"]
    assert ", ".join(r.header_all("vary")) == "accept, origin"


def test_repeated_request_headers_reach_the_origin(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    req = build_request("GET", "/echo/r", [("X-Multi", "1"), ("X-Multi", "2"), ("Cookie", "a=1"), ("Cookie", "b=2")])
    assert raw_request(gw.proxy_port, req, check_closed=False).status == 200
    rec = origin.last()
    assert ",".join(v.replace(" ", "") for v in rec.header_all("x-multi")) == "1,2"
    assert rec.header_all("cookie") in (["a=1", "b=2"], ["a=1; b=2"])


def test_upstream_connection_close_is_honoured(gateway_factory, origin_factory):
    o = origin_factory("closer", handler=lambda rec: (200, [("Connection", "close")], b"bye"))
    gw = gateway_factory(one_route(o, server={"workers": 1}))
    with httpx.Client(base_url=gw.proxy_url) as c:
        for _ in range(5):
            r = c.get("/x")
            assert r.status_code == 200 and r.text == "bye"
            # hop-by-hop: the upstream's close does not close the client connection
            assert r.headers.get("connection") != "close"
    assert o.connections == 5


def test_upstream_idle_close_does_not_fail_the_next_request(gateway_factory, origin_factory):
    o = origin_factory("idle", idle_timeout=0.2)
    gw = gateway_factory(one_route(o, server={"workers": 1}))
    with httpx.Client(base_url=gw.proxy_url) as c:
        for _ in range(3):
            assert c.get("/echo/1").status_code == 200
            time.sleep(0.5)  # the origin closes the pooled connection meanwhile
    assert o.connections == 3


def test_request_id_header_name_and_trust_are_configurable(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, server={"request_id": {"header": "x-trace", "trust_incoming": False}}))
    r = httpx.get(gw.proxy_url + "/echo/t", headers={"x-trace": "client-chosen"})
    trace = r.headers["x-trace"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace)
    assert origin.last().header("x-trace") == trace
    assert "x-request-id" not in r.headers
