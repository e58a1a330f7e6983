"""Graceful shutdown: SIGTERM / SIGINT drain in-flight requests, refuse new connections, honour
`server.timeouts.shutdown_grace`, and exit 0."""

from __future__ import annotations

import signal
import socket
import threading
import time

import httpx
import pytest

from support.configs import one_route


def slow_config(origin, grace: str | None = None) -> dict:
    cfg = one_route(origin, ["/slow", "/echo"])
    if grace is not None:
        cfg["server"] = {"timeouts": {"shutdown_grace": grace}}
    return cfg


class SlowRequest(threading.Thread):
    """GET `path` on its own connection; remembers the response or the error and when it ended."""

    def __init__(self, url: str, timeout: float = 20) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.timeout = timeout
        self.response: httpx.Response | None = None
        self.error: Exception | None = None
        self.ended: float | None = None

    def run(self) -> None:
        try:
            with httpx.Client(timeout=self.timeout) as c:
                self.response = c.get(self.url)
        except Exception as e:  # noqa: BLE001
            self.error = e
        self.ended = time.monotonic()


def wait_origin_saw(origin, path: str, n: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while sum(1 for r in origin.requests if r.path == path) < n:
        assert time.monotonic() < deadline, f"origin saw only {origin.paths()}"
        time.sleep(0.005)


def connect_refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        try:
            s.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
        return False


def wait_refused(port: int, timeout: float = 2.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if connect_refused(port):
            return time.monotonic()
        time.sleep(0.01)
    raise AssertionError(f"port {port} still accepts connections {timeout}s after the signal")


def drain_and_exit(gateway_factory, origin, sig: int) -> None:
    gw = gateway_factory(slow_config(origin))
    # An idle keep-alive connection must not hold the exit back for the 30 s default grace.
    idle = httpx.Client(base_url=gw.proxy_url, timeout=5)
    assert idle.get("/echo/warm").status_code == 200

    slow = [SlowRequest(f"{gw.proxy_url}/slow/1500") for _ in range(3)]
    for t in slow:
        t.start()
    wait_origin_saw(origin, "/slow/1500", 3)

    t_sig = time.monotonic()
    gw.proc.send_signal(sig)
    t_refused = wait_refused(gw.proxy_port)
    assert all(t.is_alive() for t in slow), "slow requests ended before the listener closed"
    assert t_refused - t_sig < 1.0

    for t in slow:
        t.join(timeout=10)
    for t in slow:
        assert t.error is None, f"in-flight request failed during shutdown: {t.error!r}"
        assert t.response.status_code == 200
        assert t.response.json()["path"] == "/slow/1500"
        assert t.response.headers.get("connection") == "close"  # no reuse of a closing connection
        assert t.ended - t_sig > 1.0  # it really was in flight for the whole drain

    code = gw.proc.wait(timeout=10)
    t_exit = time.monotonic()
    assert code == 0, gw.stderr_text()[-3000:]
    last_end = max(t.ended for t in slow)
    assert t_exit - last_end < 3.0, f"exit {t_exit - last_end:.1f}s after the last request ended"
    assert "shutting down" in gw.stderr_text()
    with pytest.raises(httpx.TransportError):
        idle.get("/echo/after", timeout=2)
    idle.close()
    # The access log has a line for each drained request.
    logged = [rec for rec in gw.access_log() if rec.get("path") == "/slow/1500"]
    assert len(logged) == 3 and all(rec["status"] == 200 for rec in logged)


def test_sigterm_lets_in_flight_requests_finish_refuses_new_connections_and_exits_0(gateway_factory, origin):
    drain_and_exit(gateway_factory, origin, signal.SIGTERM)


def test_sigint_drains_like_sigterm_and_exits_0(gateway_factory, origin):
    drain_and_exit(gateway_factory, origin, signal.SIGINT)


def test_sigterm_without_traffic_exits_0_promptly(gateway_factory, origin):
    gw = gateway_factory(slow_config(origin))
    t = time.monotonic()
    assert gw.stop(signal.SIGTERM, timeout=10) == 0
    assert time.monotonic() - t < 2.0


def test_sigterm_closes_parked_connections_and_exits_0_promptly(gateway_factory, origin):
    gw = gateway_factory(slow_config(origin))
    conns = []
    try:
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", gw.proxy_port), timeout=5)
            s.sendall(b"GET /echo/x HTTP/1.1\r\nHost: a.test\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200")
            conns.append(s)
        time.sleep(0.3)  # parked: quiet for more than 50 ms
        t = time.monotonic()
        assert gw.stop(signal.SIGTERM, timeout=10) == 0
        assert time.monotonic() - t < 2.0
        for s in conns:
            assert s.recv(1) == b""
    finally:
        for s in conns:
            s.close()


def test_shutdown_grace_cuts_requests_longer_than_grace_and_exits_0_shortly_after(gateway_factory, origin):
    gw = gateway_factory(slow_config(origin, grace="1s"))
    long = SlowRequest(f"{gw.proxy_url}/slow/8000")
    long.start()
    wait_origin_saw(origin, "/slow/8000", 1)

    t_sig = time.monotonic()
    gw.proc.send_signal(signal.SIGTERM)
    code = gw.proc.wait(timeout=10)
    exited = time.monotonic() - t_sig
    long.join(timeout=10)

    assert code == 0, gw.stderr_text()[-3000:]
    assert 0.9 <= exited <= 3.0, f"exited {exited:.2f}s after SIGTERM with a 1s grace"
    assert long.response is None or long.response.status_code != 200, "the request outlived the grace period"
    assert long.ended is not None and long.ended - t_sig < 4.0, "the client was left hanging after the exit"
    assert "grace period over" in gw.stderr_text()


def test_shutdown_grace_set_by_a_reload_is_the_one_used(gateway_factory, origin):
    gw = gateway_factory(slow_config(origin))  # default grace: 30s
    gw.write_config(slow_config(origin, grace="1s"))
    gw.reload()
    gw.wait_for_log("configuration reloaded", timeout=5)
    long = SlowRequest(f"{gw.proxy_url}/slow/8000")
    long.start()
    wait_origin_saw(origin, "/slow/8000", 1)
    t_sig = time.monotonic()
    gw.proc.send_signal(signal.SIGTERM)
    code = gw.proc.wait(timeout=10)
    assert code == 0
    assert time.monotonic() - t_sig <= 3.0
    long.join(timeout=10)
    assert long.response is None or long.response.status_code != 200


def test_request_cut_by_shutdown_grace_is_still_logged(gateway_factory, origin):
    gw = gateway_factory(slow_config(origin, grace="1s"))
    long = SlowRequest(f"{gw.proxy_url}/slow/8000")
    long.start()
    wait_origin_saw(origin, "/slow/8000", 1)
    gw.proc.send_signal(signal.SIGTERM)
    assert gw.proc.wait(timeout=10) == 0
    long.join(timeout=10)
    assert long.error is not None  # it was cut
    logged = [rec for rec in gw.access_log() if rec.get("path") == "/slow/8000"]
    assert logged, "no access log line for the request cut by the shutdown"
