"""Reusing pooled upstream connections: a keep-alive connection the upstream closes just as
it is reused loses the request; a safe request is sent again on a new connection."""

from __future__ import annotations

import socket
import threading
import time

import httpx

from support.configs import one_route

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"


def closing_second_request_script():
    """Connection 1 answers its first request, then closes when the second one arrives (as a
    server whose idle timeout fired at that moment). Later connections answer everything."""
    lock = threading.Lock()
    seen = {"connections": 0}

    def script(sock: socket.socket, head: bytes) -> None:
        with lock:
            seen["connections"] += 1
            first = seen["connections"] == 1
        sock.sendall(OK)
        while True:
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
            if first:
                sock.close()
                return
            sock.sendall(OK)

    return script


def test_idempotent_request_is_replayed_when_a_stale_pooled_connection_closes(gateway_factory, scripted_origin_factory):
    origin = scripted_origin_factory(closing_second_request_script())
    gw = gateway_factory(one_route(origin.url, server={"workers": 1}))  # one pool
    assert httpx.get(gw.proxy_url + "/a", timeout=5).status_code == 200
    time.sleep(1.3)  # the pooled connection is now "stale" (idle over 1 s)
    r = httpx.get(gw.proxy_url + "/b", timeout=5)
    assert r.status_code == 200, r.text
    assert origin.connections == 2


def test_request_with_a_body_is_not_replayed(gateway_factory, scripted_origin_factory):
    origin = scripted_origin_factory(closing_second_request_script())
    gw = gateway_factory(one_route(origin.url, server={"workers": 1}))  # one pool
    assert httpx.get(gw.proxy_url + "/a", timeout=5).status_code == 200
    time.sleep(1.3)
    r = httpx.post(gw.proxy_url + "/b", content=b"payload", timeout=5)
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_error"
    assert origin.connections == 1
