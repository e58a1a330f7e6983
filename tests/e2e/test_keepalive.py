"""Idle keep-alive connections: plain HTTP/1.1 connections release their server state when
quiet ("parked") and resume transparently when the client speaks again."""

from __future__ import annotations

import contextlib
import random
import time

from support.configs import one_route
from support.rawhttp import RawConnection, build_request

# The gateway parks a plain HTTP/1.1 connection after 50 ms without a request.
PAST_PARK = 0.2


def get(path: str, extra: list[tuple[str, str]] | None = None) -> bytes:
    return build_request("GET", path, [("Host", "a.test"), *(extra or [])])


def test_a_parked_connection_serves_the_next_request(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    with RawConnection("127.0.0.1", gw.proxy_port) as c:
        for i in range(3):
            c.send(get(f"/echo/{i}"))
            r = c.read_response()
            assert r.status == 200
            assert r.json()["path"] == f"/echo/{i}"
            time.sleep(PAST_PARK)
        assert not c.eof


def test_pipelined_requests_survive_parking(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    with RawConnection("127.0.0.1", gw.proxy_port) as c:
        c.send(get("/echo/a"))
        assert c.read_response().status == 200
        time.sleep(PAST_PARK)
        # Two requests in one write, right after the connection was parked.
        c.send(get("/echo/b") + get("/echo/c"))
        assert c.read_response().json()["path"] == "/echo/b"
        assert c.read_response().json()["path"] == "/echo/c"


def test_a_request_head_split_across_the_park_delay_is_served(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    with RawConnection("127.0.0.1", gw.proxy_port) as c:
        c.send(get("/echo/first"))
        assert c.read_response().status == 200
        data = get("/echo/split")
        c.send(data[:10])
        time.sleep(PAST_PARK)
        c.send(data[10:])
        r = c.read_response()
        assert r.status == 200 and r.json()["path"] == "/echo/split"


def test_websocket_after_the_connection_was_parked(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    with RawConnection("127.0.0.1", gw.proxy_port) as c:
        c.send(get("/echo/before"))
        assert c.read_response().status == 200
        time.sleep(PAST_PARK)
        c.send(
            get(
                "/ws",
                [
                    ("Connection", "Upgrade"),
                    ("Upgrade", "websocket"),
                    ("Sec-WebSocket-Version", "13"),
                    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ],
            )
        )
        _, status, _, headers = c.read_head()
        assert status == 101
        assert dict(headers).get("upgrade", "").lower() == "websocket"
        # A masked text frame "hi"; the echo server answers with an unmasked "hi".
        mask = b"\x01\x02\x03\x04"
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(b"hi"))
        c.send(b"\x81\x82" + mask + payload)
        frame = c._read_exact(4)
        assert frame == b"\x81\x02hi"


def test_idle_timeout_closes_a_parked_connection(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, server={"timeouts": {"idle": "1s"}}))
    with RawConnection("127.0.0.1", gw.proxy_port, timeout=5) as c:
        c.send(get("/echo/x"))
        assert c.read_response().status == 200
        started = time.monotonic()
        assert c._read_to_eof() == b""
        waited = time.monotonic() - started
        assert 0.5 <= waited <= 3.5, waited


def parked_gauge(gw) -> float:
    for line in gw.metrics().splitlines():
        if line.startswith("tollgate_connections_parked "):
            return float(line.split()[1])
    raise AssertionError("tollgate_connections_parked missing from /metrics")


@contextlib.contextmanager
def raw_connections(gw, n: int):
    """`n` open connections to the proxy, closed on the way out."""
    conns = [RawConnection("127.0.0.1", gw.proxy_port) for _ in range(n)]
    try:
        yield conns
    finally:
        for c in conns:
            c.close()


@contextlib.contextmanager
def parked_connections(gw, n: int):
    """`n` connections that each served one request and were then left quiet (parked)."""
    with raw_connections(gw, n) as conns:
        for c in conns:
            c.send(get("/echo/p"))
            assert c.read_response().status == 200
        time.sleep(PAST_PARK)
        yield conns


def test_quiet_connections_are_parked_and_counted(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    with parked_connections(gw, 5) as conns:
        assert parked_gauge(gw) == 5
        conns[0].send(get("/echo/again"))
        assert conns[0].read_response().status == 200
        assert parked_gauge(gw) == 4


def test_many_parked_connections_each_resume_on_their_own_socket(gateway_factory, origin):
    # Parked plain connections wait as bare sockets in their worker's lot; each must come back
    # to its own client, also after slots were freed and reused by other connections.
    gw = gateway_factory(one_route(origin))
    with raw_connections(gw, 120) as conns:
        for rnd in range(4):
            order = list(range(len(conns)))
            random.Random(rnd).shuffle(order)
            # Every connection in the first round (a connection that never sent a request is
            # not parked), a shuffled part of them after.
            some = order if rnd == 0 else order[: len(order) // 2 + rnd * 20]
            for i in some:
                conns[i].send(get(f"/echo/{rnd}/{i}"))
            for i in some:
                r = conns[i].read_response()
                assert r.status == 200
                assert r.json()["path"] == f"/echo/{rnd}/{i}"
            time.sleep(PAST_PARK)
        assert parked_gauge(gw) == len(conns) - sum(1 for c in conns if c.eof)
        assert not any(c.eof for c in conns)


def test_a_parked_connection_its_client_closes_is_forgotten(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    with parked_connections(gw, 5) as conns:
        assert parked_gauge(gw) == 5
        for c in conns[:3]:
            c.close()
        deadline = time.monotonic() + 3
        while parked_gauge(gw) != 2:
            assert time.monotonic() < deadline, parked_gauge(gw)
            time.sleep(0.05)
        conns[4].send(get("/echo/still"))
        assert conns[4].read_response().json()["path"] == "/echo/still"


def test_a_connection_parked_again_gets_a_whole_idle_period(gateway_factory, origin):
    # The idle deadline of an earlier parking must not close the connection parked again.
    gw = gateway_factory(one_route(origin, server={"timeouts": {"idle": "1s"}}))
    with RawConnection("127.0.0.1", gw.proxy_port, timeout=5) as c:
        c.send(get("/echo/1"))
        assert c.read_response().status == 200
        time.sleep(0.7)
        c.send(get("/echo/2"))
        assert c.read_response().status == 200
        time.sleep(0.7)
        # 1.4 s after the first parking: past its deadline, within the second one's.
        c.send(get("/echo/3"))
        assert c.read_response().json()["path"] == "/echo/3"
        started = time.monotonic()
        assert c._read_to_eof() == b""
        assert 0.5 <= time.monotonic() - started <= 3.5


def test_a_request_head_dribbled_byte_by_byte_is_cut_off_after_client_header(gateway_factory, origin):
    # Parking must not restart the header-read timer: a head sent one byte every 30 ms never
    # completes and the connection is closed once `client_header` has passed.
    gw = gateway_factory(one_route(origin, server={"timeouts": {"client_header": "1s"}}))
    with RawConnection("127.0.0.1", gw.proxy_port, timeout=10) as c:
        c.send(get("/echo/first"))
        assert c.read_response().status == 200
        time.sleep(PAST_PARK)
        started = time.monotonic()
        closed = False
        c.sock.setblocking(False)
        for byte in get("/echo/slow") * 20:
            try:
                c.sock.sendall(bytes([byte]))
                if c.sock.recv(65536) == b"":
                    closed = True
            except BlockingIOError:
                pass
            except OSError:
                closed = True
            if closed or time.monotonic() - started > 4:
                break
            time.sleep(0.03)
        assert closed, "the dribbling client was not cut off"
        assert time.monotonic() - started < 3


# ------------------------------------------------------------------------------------ TLS


def tls_get(sock, path: str) -> bytes:
    sock.sendall(get(path))
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = next(int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length"))
    while len(rest) < length:
        rest += sock.recv(65536)
    return head.split(b"\r\n")[0]


def test_tls_keepalive_connection_outlives_client_header_and_is_parked(gateway_factory, origin, certs):
    import socket as _socket

    gw = gateway_factory(one_route(
        origin,
        server={"timeouts": {"client_header": "1s", "idle": "20s"}},
        tls={"certificates": [certs.localhost.as_config()]},
    ))
    ctx = certs.client_context(alpn=["http/1.1"])
    raw = _socket.create_connection(("127.0.0.1", gw.tls_port), timeout=5)
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        assert b" 200 " in tls_get(s, "/echo/one")
        time.sleep(PAST_PARK)
        assert parked_gauge(gw) == 1
        time.sleep(1.5)  # longer than client_header: the idle limit is `idle`
        assert b" 200 " in tls_get(s, "/echo/two")
        assert parked_gauge(gw) == 0


def test_secure_websocket_after_the_connection_was_parked(gateway_factory, origin, certs):
    import socket as _socket

    gw = gateway_factory(one_route(origin, tls={"certificates": [certs.localhost.as_config()]}))
    ctx = certs.client_context(alpn=["http/1.1"])
    raw = _socket.create_connection(("127.0.0.1", gw.tls_port), timeout=5)
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        assert b" 200 " in tls_get(s, "/echo/before")
        time.sleep(PAST_PARK)
        s.sendall(get("/ws", [
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]))
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        head, _, rest = buf.partition(b"\r\n\r\n")
        assert b" 101 " in head.split(b"\r\n")[0]
        mask = b"\x01\x02\x03\x04"
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(b"hi"))
        s.sendall(b"\x81\x82" + mask + payload)
        while len(rest) < 4:
            rest += s.recv(65536)
        assert rest[:4] == b"\x81\x02hi"
