"""HTTP/1.1 over raw sockets: send exactly the bytes a test wants, read back exactly what came."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RawResponse:
    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]]  # (lower-cased name, value)
    body: bytes
    trailers: list[tuple[str, str]] = field(default_factory=list)
    chunked: bool = False
    closed: bool | None = None  # whether the server closed the connection after it

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]

    def trailer(self, name: str) -> str | None:
        for k, v in self.trailers:
            if k == name.lower():
                return v
        return None

    def json(self) -> Any:
        return json.loads(self.body)


class ConnectionClosed(Exception):
    """The peer closed the connection before a complete response."""


class RawConnection:
    """A client socket with a read buffer."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False

    def __enter__(self) -> "RawConnection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf.extend(chunk)
        return True

    def _read_until(self, sep: bytes) -> bytes:
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out = bytes(self.buf[: i + len(sep)])
                del self.buf[: i + len(sep)]
                return out
            if not self._fill():
                raise ConnectionClosed(f"closed while waiting for {sep!r}; have {bytes(self.buf)[:200]!r}")

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionClosed(f"closed after {len(self.buf)} of {n} bytes")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _read_to_eof(self) -> bytes:
        while self._fill():
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def read_head(self) -> tuple[str, int, str, list[tuple[str, str]]]:
        head = self._read_until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        headers = []
        for line in lines[1:]:
            if not line:
                continue
            k, _, v = line.partition(":")
            headers.append((k.strip().lower(), v.strip()))
        return version, int(code), reason, headers

    def read_response(self, *, head_request: bool = False, skip_informational: bool = True) -> RawResponse:
        """Reads one response (skipping 1xx unless told not to)."""
        while True:
            version, status, reason, headers = self.read_head()
            if 100 <= status < 200 and status != 101 and skip_informational:
                continue
            break
        resp = RawResponse(status=status, reason=reason, version=version, headers=headers, body=b"")
        te = (resp.header("transfer-encoding") or "").lower()
        cl = resp.header("content-length")
        if head_request or status in (204, 304) or 100 <= status < 200:
            return resp
        if "chunked" in te:
            resp.chunked = True
            body = bytearray()
            while True:
                size_line = self._read_until(b"\r\n").decode("latin-1").strip()
                size = int(size_line.split(";")[0], 16)
                if size == 0:
                    break
                body.extend(self._read_exact(size))
                self._read_exact(2)
            while True:
                line = self._read_until(b"\r\n").decode("latin-1")
                if line == "\r\n":
                    break
                k, _, v = line.partition(":")
                resp.trailers.append((k.strip().lower(), v.strip()))
            resp.body = bytes(body)
        elif cl is not None:
            resp.body = self._read_exact(int(cl))
        else:
            resp.body = self._read_to_eof()
        return resp

    def wait_closed(self, timeout: float = 3.0) -> bool:
        """True if the server closes the connection within `timeout` (any further bytes it
        sends are discarded)."""
        if self.eof:
            return True
        self.sock.settimeout(0.2)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    continue
                except (ConnectionResetError, BrokenPipeError):
                    self.eof = True
                    return True
                if not chunk:
                    self.eof = True
                    return True
                self.buf.extend(chunk)
            return False
        finally:
            self.sock.settimeout(10.0)


def raw_request(port: int, data: bytes, *, host: str = "127.0.0.1", timeout: float = 10.0,
                check_closed: bool = True, close_wait: float = 3.0,
                head_request: bool = False) -> RawResponse:
    """Sends `data` on a new connection, reads one response and (by default) whether the
    server closed the connection afterwards."""
    with RawConnection(host, port, timeout) as c:
        c.send(data)
        resp = c.read_response(head_request=head_request)
        if check_closed:
            resp.closed = c.wait_closed(close_wait)
        return resp


def build_request(method: str, target: str, headers: list[tuple[str, str]] | None = None,
                  body: bytes = b"", *, host: str = "gw.test", version: str = "HTTP/1.1") -> bytes:
    """A request head (and body, verbatim) as bytes; adds Host unless given."""
    headers = list(headers or [])
    if not any(k.lower() == "host" for k, _ in headers):
        headers.insert(0, ("Host", host))
    head = f"{method} {target} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("latin-1") + body
