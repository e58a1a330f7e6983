"""Malformed and hostile input on raw sockets, limits, and upstream failures.

Every error answer carries the JSON body ``{"error": {"code", "message", "request_id"}}``,
including those for requests hyper's HTTP/1 parser refuses itself (malformed request line,
header limits, framing conflicts), which the gateway rewrites on their way out; those also
close the connection."""

from __future__ import annotations

import time

import httpx
import pytest

from support.configs import one_route
from support.ports import free_port
from support.rawhttp import ConnectionClosed, RawConnection, build_request, raw_request

SIZE_LIMIT = [{"name": "request-size-limit", "config": {"max_bytes": 1000}}]


def assert_json_error(body: bytes | dict, code: str) -> dict:
    import json

    data = json.loads(body) if isinstance(body, (bytes, str)) else body
    assert set(data) == {"error"}, data
    err = data["error"]
    assert set(err) == {"code", "message", "request_id"}, err
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["request_id"], str) and err["request_id"]
    return err


def assert_no_complete_request(origin) -> None:
    """The origin never received a request it could act on (at most an aborted head)."""
    complete = [r for r in origin.requests if r.body_len is not None]
    assert complete == [], [(r.method, r.path, r.body_len) for r in complete]


@pytest.fixture
def gw(gateway_factory, origin):
    return gateway_factory(one_route(origin, policies=SIZE_LIMIT))


def assert_still_serving(gw, origin) -> None:
    r = httpx.get(gw.proxy_url + "/echo/after", timeout=10)
    assert r.status_code == 200
    assert origin.last().path == "/echo/after"
    assert "panicked" not in gw.stderr_text()
    assert gw.is_running()


# --------------------------------------------------------------------------- parser-level


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"GARBAGE\r\n\r\n", id="no-method-target-version"),
        pytest.param(b"GET /x HTTP/1.1 extra\r\nHost: a\r\n\r\n", id="extra-token"),
        pytest.param(b"GET /x HTTP/9.9\r\nHost: a\r\n\r\n", id="bad-version"),
        pytest.param(b"G@T /x HTTP/1.1\r\nHost: a\r\n\r\n", id="bad-method"),
        pytest.param(b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", id="obs-fold"),
        pytest.param(b"GET /x HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", id="space-before-colon"),
        pytest.param(b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", id="nul-in-value"),
        pytest.param(b"GET /x HTTP/1.1\r\nHost: a\r\nBad\x01Name: v\r\n\r\n", id="control-in-name"),
    ],
)
def test_malformed_request_head_is_400_and_connection_closed(gw, origin, data):
    r = raw_request(gw.proxy_port, data)
    assert r.status == 400
    assert r.closed
    err = assert_json_error(r.body, "bad_request")
    assert r.header("x-request-id") == err["request_id"]
    assert r.header("content-type") == "application/json"
    assert origin.requests == []


def test_differing_content_lengths_are_400_and_not_forwarded(gw, origin):
    data = b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
    r = raw_request(gw.proxy_port, data)
    assert r.status == 400 and r.closed
    assert_json_error(r.body, "bad_request")
    assert origin.requests == []
    assert_still_serving(gw, origin)


@pytest.mark.parametrize("value", ["+5", "5, 6", "-1", "0x5", "5 5"])
def test_invalid_content_length_is_400(gw, origin, value):
    data = f"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {value}\r\n\r\nhello".encode()
    r = raw_request(gw.proxy_port, data)
    assert r.status == 400 and r.closed
    assert_json_error(r.body, "bad_request")
    assert origin.requests == []


@pytest.mark.parametrize("framing", [
    pytest.param(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", id="length-first"),
    pytest.param(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", id="coding-first"),
])
def test_content_length_with_transfer_encoding_is_400_and_not_forwarded(gw, origin, framing):
    data = b"POST /upload HTTP/1.1\r\nHost: a\r\n" + framing + b"\r\n5\r\nhello\r\n0\r\n\r\n"
    r = raw_request(gw.proxy_port, data)
    assert r.status == 400
    assert r.closed
    err = assert_json_error(r.body, "bad_request")
    assert "content-length and transfer-encoding" in err["message"]
    time.sleep(0.2)
    assert origin.requests == []


def test_content_length_with_transfer_encoding_never_reaches_origin_with_both(gw, origin):
    # Whatever the status, the smuggling precondition must not be passed on: the origin must
    # never see both framings, and the client connection must be closed afterwards.
    data = (b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n0\r\n\r\n")
    r = raw_request(gw.proxy_port, data)
    assert r.closed
    for rec in origin.requests:
        assert not (rec.has_header("content-length") and rec.has_header("transfer-encoding")), rec.headers


@pytest.mark.parametrize("te", ["gzip", "chunked, identity", "identity"])
def test_transfer_encoding_not_ending_in_chunked_is_400(gw, origin, te):
    data = f"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {te}\r\n\r\n5\r\nhello\r\n0\r\n\r\n".encode()
    r = raw_request(gw.proxy_port, data)
    assert r.status == 400 and r.closed
    assert_json_error(r.body, "bad_request")
    time.sleep(0.2)
    assert_no_complete_request(origin)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"zz\r\nhello\r\n0\r\n\r\n", id="first-chunk-size-invalid"),
        pytest.param(b"5\r\nhello\r\nzz\r\n0\r\n\r\n", id="second-chunk-size-invalid"),
        pytest.param(b"5\r\nhelloXX0\r\n\r\n", id="missing-chunk-crlf"),
    ],
)
def test_invalid_chunked_body_is_400_and_not_forwarded(gw, origin, body):
    data = b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    r = raw_request(gw.proxy_port, data)
    time.sleep(0.2)
    assert_no_complete_request(origin)
    assert r.closed
    assert r.status == 400


def test_invalid_chunked_body_never_completes_upstream_and_connection_closes(gw, origin):
    data = b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n0\r\n\r\n"
    r = raw_request(gw.proxy_port, data)
    assert r.status >= 400 and r.closed
    time.sleep(0.3)
    assert_no_complete_request(origin)
    assert_still_serving(gw, origin)


# --------------------------------------------------------------------------- header limits


def test_oversized_headers_are_431_and_connection_closed(gw, origin):
    data = build_request("GET", "/echo/x", [("X-Big", "a" * 40_000)])
    r = raw_request(gw.proxy_port, data)
    assert r.status == 431 and r.closed
    assert_json_error(r.body, "headers_too_large")
    assert origin.requests == []
    assert_still_serving(gw, origin)


def test_too_many_headers_are_431_and_connection_closed(gw, origin):
    data = build_request("GET", "/echo/x", [(f"X-H{i}", "v") for i in range(150)])
    r = raw_request(gw.proxy_port, data)
    assert r.status == 431 and r.closed
    assert_json_error(r.body, "headers_too_large")
    assert origin.requests == []


def test_configured_header_limits_answer_431_json(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, server={"limits": {"max_header_bytes": 4096, "max_headers": 20}}))
    # Above max_header_bytes but below hyper's own minimum buffer: the gateway's check answers.
    r = raw_request(gw.proxy_port, build_request("GET", "/echo/x", [("X-Big", "a" * 6000)]))
    assert r.status == 431 and r.closed
    assert_json_error(r.body, "headers_too_large")
    r = raw_request(gw.proxy_port, build_request("GET", "/echo/x", [(f"X-H{i}", "v") for i in range(25)]))
    assert r.status == 431 and r.closed
    assert origin.requests == []
    # At the limit is fine.
    r = raw_request(gw.proxy_port, build_request("GET", "/echo/x", [(f"X-H{i}", "v") for i in range(10)]),
                    check_closed=False)
    assert r.status == 200


def test_http2_headers_over_the_limit_are_refused(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, server={"limits": {"max_header_bytes": 4096, "max_headers": 20}}))
    with httpx.Client(http1=False, http2=True) as c:
        try:
            r = c.get(gw.proxy_url + "/echo/x", headers={f"x-h{i}": "v" for i in range(30)})
            assert r.status_code == 431
            assert_json_error(r.content, "headers_too_large")
        except httpx.RemoteProtocolError:
            pass  # refusing the stream at the HTTP/2 layer is fine too
    assert origin.requests == []


def test_http2_header_block_a_little_over_the_limit_gets_the_json_431(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, server={"limits": {"max_header_bytes": 4096}}))
    with httpx.Client(http1=False, http2=True) as c:
        r = c.get(gw.proxy_url + "/echo/x", headers={"x-big": "a" * 6000})
        assert r.http_version == "HTTP/2"
        assert r.status_code == 431
        err = assert_json_error(r.content, "headers_too_large")
        assert r.headers["x-request-id"] == err["request_id"]
        # Within the limit, the same connection still serves.
        assert c.get(gw.proxy_url + "/echo/y", headers={"x-small": "a" * 100}).status_code == 200
    assert [rec.path for rec in origin.requests] == ["/echo/y"]


def test_slow_request_head_times_out(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, server={"timeouts": {"client_header": "1s"}}))
    with RawConnection("127.0.0.1", gw.proxy_port) as c:
        c.send(b"GET /echo/slow HTTP/1.1\r\nHost: a\r\nX-Partial: ")
        started = time.monotonic()
        closed = c.wait_closed(6)
        elapsed = time.monotonic() - started
        assert closed, "the gateway kept a connection whose head never completed"
        assert elapsed < 5
        if c.buf:
            assert c.buf.startswith(b"HTTP/1.1 408"), bytes(c.buf[:100])
    assert origin.requests == []


# --------------------------------------------------------------------------- body size limit


def test_body_over_limit_with_content_length_is_413_before_forwarding(gw, origin):
    data = build_request("POST", "/upload", [("Content-Length", "5000")], b"a" * 5000)
    r = raw_request(gw.proxy_port, data, check_closed=False)
    assert r.status == 413
    assert_json_error(r.body, "payload_too_large")
    assert origin.requests == []


def test_body_over_limit_with_expect_continue_is_413_without_100(gw, origin):
    with RawConnection("127.0.0.1", gw.proxy_port) as c:
        c.send(build_request("POST", "/upload", [("Content-Length", "5000"), ("Expect", "100-continue")]))
        version, status, _, headers = c.read_head()
        assert status == 413  # no "100 Continue" first: the client never uploads
    assert origin.requests == []


def test_connection_after_413_is_not_desynchronised(gw, origin):
    # The unread body must be drained or the connection closed: the body bytes must never be
    # parsed as a second request.
    smuggled = b"GET /echo/smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
    body = smuggled + b"a" * (5000 - len(smuggled))
    with RawConnection("127.0.0.1", gw.proxy_port) as c:
        c.send(build_request("POST", "/upload", [("Content-Length", str(len(body)))], body))
        assert c.read_response().status == 413
        try:
            c.send(build_request("GET", "/echo/next"))
            r = c.read_response()
            assert r.status == 200
            assert r.json()["path"] == "/echo/next"
        except (ConnectionClosed, BrokenPipeError, ConnectionResetError):
            pass  # closing the connection is a correct answer too
    time.sleep(0.2)
    assert "/echo/smuggled" not in origin.paths()


def test_a_small_unread_body_is_drained_and_the_connection_kept(gw, origin):
    # Refused before its body was read, a small body is read and dropped after the answer, so
    # the connection (which the answer did not say to close) serves the next request.
    with RawConnection("127.0.0.1", gw.proxy_port) as c:
        c.send(build_request("POST", "/upload", [("Content-Length", "2000")], b"a" * 2000))
        r = c.read_response()
        assert r.status == 413
        assert (r.header("connection") or "").lower() != "close"
        c.send(build_request("GET", "/echo/next"))
        r = c.read_response()
        assert r.status == 200 and r.json()["path"] == "/echo/next"


@pytest.mark.parametrize("headers,body", [
    pytest.param([("Transfer-Encoding", "chunked")], b"400\r\n" + b"a" * 1024 + b"\r\n", id="chunked"),
    pytest.param([("Content-Length", "200000")], b"", id="large"),
    pytest.param([("Content-Length", "2000"), ("Expect", "100-continue")], b"", id="expect-continue"),
])
def test_an_answer_before_an_undrainable_body_says_connection_close(gw, origin, headers, body):
    # A body of unknown or large size, or one the client may never send (it waits for
    # "100 Continue"), cannot be skipped: the answer must tell the client the connection ends.
    with RawConnection("127.0.0.1", gw.proxy_port) as c:
        c.send(build_request("POST", "/upload", headers, body))
        version, status, _, head = c.read_head()
        assert status == 413
        assert dict((k.lower(), v) for k, v in head).get("connection", "").lower() == "close", head


def test_chunked_body_over_limit_is_413(gw, origin):
    data = build_request("POST", "/upload", [("Transfer-Encoding", "chunked")],
                         b"400\r\n" + b"a" * 1024 + b"\r\n400\r\n" + b"b" * 1024 + b"\r\n0\r\n\r\n")
    r = raw_request(gw.proxy_port, data, check_closed=False)
    assert r.status == 413
    assert_json_error(r.body, "payload_too_large")
    time.sleep(0.2)
    assert_no_complete_request(origin)
    assert_still_serving(gw, origin)


def test_body_at_limit_is_forwarded(gw, origin):
    data = build_request("POST", "/upload", [("Transfer-Encoding", "chunked")],
                         b"3e8\r\n" + b"a" * 1000 + b"\r\n0\r\n\r\n")
    r = raw_request(gw.proxy_port, data, check_closed=False)
    assert r.status == 200 and r.json()["len"] == 1000


def test_http2_body_over_limit_is_413(gateway_factory):
    gw = gateway_factory({
        "services": [{"name": "echo", "mock": {"echo": True}}],
        "apis": [{"name": "api", "routes": [{"name": "r", "paths": ["/"], "service": "echo"}]}],
        "policies": SIZE_LIMIT,
    })

    def gen():
        for _ in range(4):
            yield b"x" * 1000

    with httpx.Client(http1=False, http2=True) as c:
        r = c.post(gw.proxy_url + "/up", content=gen())
    assert r.status_code == 413
    assert_json_error(r.content, "payload_too_large")


# --------------------------------------------------------------------------- upstream failures


def test_unreachable_upstream_is_502_json(gateway_factory):
    port = free_port()  # nothing listens there
    gw = gateway_factory(one_route(f"http://127.0.0.1:{port}"))
    r = httpx.get(gw.proxy_url + "/x", timeout=15)
    assert r.status_code == 502
    assert r.headers["content-type"].startswith("application/json")
    err = assert_json_error(r.content, "upstream_unreachable")
    assert err["request_id"] == r.headers["x-request-id"]
    rec = gw.wait_for_access_log(lambda x: x["request_id"] == err["request_id"])
    assert rec["status"] == 502


def test_upstream_closing_without_answer_is_502_json(gw, origin):
    r = httpx.get(gw.proxy_url + "/close", timeout=15)
    assert r.status_code == 502
    assert_json_error(r.content, "upstream_error")
    assert_still_serving(gw, origin)


def test_upstream_slower_than_response_timeout_is_504_json(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, service={"timeouts": {"response": "500ms"}}))
    started = time.monotonic()
    r = httpx.get(gw.proxy_url + "/slow/5000", timeout=15)
    elapsed = time.monotonic() - started
    assert r.status_code == 504
    assert_json_error(r.content, "upstream_timeout")
    assert 0.4 < elapsed < 3, elapsed
    # A fast request on the same service still works.
    assert httpx.get(gw.proxy_url + "/slow/10", timeout=15).status_code == 200
    assert "panicked" not in gw.stderr_text()


def test_upstream_error_status_is_passed_through_not_rewritten(gw, origin):
    r = httpx.get(gw.proxy_url + "/status/503", timeout=10)
    assert r.status_code == 503
    assert r.json() == {"status": 503, "origin_name": "origin"}


# --------------------------------------------------------------------------- Host header


def test_http11_request_without_host_is_400(gw, origin):
    r = raw_request(gw.proxy_port, b"GET /echo/nohost HTTP/1.1\r\n\r\n", check_closed=False)
    assert r.status == 400
    assert origin.requests == []


def test_http10_request_without_host_is_forwarded_with_a_host(gw, origin):
    r = raw_request(gw.proxy_port, b"GET /echo/old HTTP/1.0\r\n\r\n")
    assert r.status == 200
    assert origin.last().header("host")


def test_absolute_form_target_routes_and_forwards_the_same_host(gateway_factory, origin_factory):
    internal, public = origin_factory("internal"), origin_factory("public")
    gw = gateway_factory({
        "services": [{"name": "internal", "targets": [{"url": internal.url}]},
                     {"name": "public", "targets": [{"url": public.url}]}],
        "apis": [
            {"name": "internal", "hosts": ["internal.test"], "routes": [{"name": "r", "paths": ["/"], "service": "internal"}]},
            {"name": "public", "hosts": ["public.test"], "routes": [{"name": "r", "paths": ["/"], "service": "public"}]},
        ],
    })
    data = b"GET http://internal.test/echo/abs HTTP/1.1\r\nHost: public.test\r\n\r\n"
    r = raw_request(gw.proxy_port, data, check_closed=False)
    assert r.status == 200
    served = r.header("x-origin-name")
    rec = (internal if served == "internal" else public).last()
    # Whichever API was chosen, the backend must see the host the routing decision used.
    assert rec.header("host") == f"{served}.test", (served, rec.headers)


def test_gateway_survives_a_burst_of_bad_input(gw, origin):
    bad = [
        b"GARBAGE\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40,  # TLS on the plain port
        b"GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        build_request("GET", "/echo/x", [("X-Big", "a" * 70_000)]),
        b"\r\n\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00" * 30,  # h2 preface then junk
    ]
    for data in bad * 3:
        with RawConnection("127.0.0.1", gw.proxy_port, timeout=5) as c:
            try:
                c.send(data)
                c.wait_closed(0.3)
            except OSError:
                pass
    assert_still_serving(gw, origin)


# --------------------------------------------------------------------------- misbehaving peers


def test_garbage_from_upstream_is_502_json(gateway_factory, scripted_origin_factory):
    o = scripted_origin_factory(lambda sock, head: sock.sendall(b"NOT HTTP AT ALL\r\n\r\n"))
    gw = gateway_factory(one_route(o.url))
    r = httpx.get(gw.proxy_url + "/x", timeout=15)
    assert r.status_code == 502
    assert_json_error(r.content, "upstream_error")
    assert len(o.heads) >= 1


def test_upstream_response_with_conflicting_framing_is_502(gateway_factory, scripted_origin_factory):
    o = scripted_origin_factory(lambda sock, head: sock.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"))
    gw = gateway_factory(one_route(o.url))
    r = httpx.get(gw.proxy_url + "/x", timeout=15)
    assert r.status_code == 502
    assert_json_error(r.content, "upstream_error")


def test_truncated_upstream_body_aborts_the_client_connection(gateway_factory, scripted_origin_factory):
    def script(sock, head):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        time.sleep(0.2)

    o = scripted_origin_factory(script)
    gw = gateway_factory(one_route(o.url))
    with RawConnection("127.0.0.1", gw.proxy_port, timeout=10) as c:
        c.send(build_request("GET", "/x"))
        with pytest.raises(ConnectionClosed):
            c.read_response()  # must not complete (nor hang until the timeout)
    assert "panicked" not in gw.stderr_text()


def test_client_abort_mid_upload_does_not_complete_upstream(gw, origin):
    with RawConnection("127.0.0.1", gw.proxy_port) as c:
        c.send(build_request("POST", "/upload", [("Content-Length", "900")], b"a" * 300))
        time.sleep(0.3)
    time.sleep(0.3)
    assert_no_complete_request(origin)
    assert_still_serving(gw, origin)
