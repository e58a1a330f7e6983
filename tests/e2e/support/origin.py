"""Origin servers the gateway forwards to: HTTP/1.1 (h11) and HTTP/2 with prior knowledge (h2),
each on its own asyncio loop in a background thread, recording what arrived on the wire.

HTTP/1.1 endpoints (any path not listed is answered like ``/echo``):

- ``/echo/...``      any method: JSON {method, path, query, headers, body_len, body_sha256,
                     origin_name, http_version}
- ``/status/<code>`` that status, small JSON body
- ``/slow/<ms>``     sleeps, then 200 (echo JSON)
- ``/bytes/<n>``     n bytes, chunked, in 64 KiB chunks of the pattern ``pattern_chunk()``
- ``/upload``        reads the body streaming, answers {len, sha256}
- ``/trailers``      chunked body with a trailer ``x-checksum`` (sha256 hex of the body)
- ``/ws``            WebSocket echo
- ``/close``         closes the connection without answering
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import h11

CHUNK = 64 * 1024
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def pattern_chunk() -> bytes:
    """The 64 KiB block ``/bytes/<n>`` repeats (its last chunk is a prefix of it)."""
    return bytes(range(256)) * (CHUNK // 256)


def pattern_sha256(n: int) -> str:
    """The sha256 hex of the first n bytes ``/bytes/<n>`` sends."""
    h = hashlib.sha256()
    block = pattern_chunk()
    full, rest = divmod(n, CHUNK)
    for _ in range(full):
        h.update(block)
    h.update(block[:rest])
    return h.hexdigest()


@dataclass
class RecordedRequest:
    """A request as the origin received it."""

    method: str
    target: str  # the raw request target, exactly as on the wire
    path: str  # raw path (the target before '?')
    query: str  # raw query ('' when none)
    headers: list[tuple[str, str]]  # (lower-cased name, value), in order, repeats kept
    http_version: str
    connection_id: int
    body_len: int | None = None  # set once the body has been read
    body_sha256: str | None = None
    received_at: float = field(default_factory=time.monotonic)

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of a header (case-insensitive)."""
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def has_header(self, name: str) -> bool:
        return any(k == name.lower() for k, _ in self.headers)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": [list(p) for p in self.headers],
            "http_version": self.http_version,
        }


class _Loop:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


class _BaseOrigin:
    scheme = "http"

    def __init__(self, name: str, ssl_context: ssl.SSLContext | None = None,
                 host: str = "127.0.0.1") -> None:
        self.name = name
        self.host = host
        self.ssl_context = ssl_context
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []  # protocol errors seen on connections
        self.connections = 0  # TCP connections accepted
        self.open_connections = 0
        self._lock = threading.Lock()
        self._loop = _Loop(f"origin-{name}")
        self._server: asyncio.base_events.Server | None = None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        sock.listen(1024)
        sock.setblocking(False)
        self.port: int = sock.getsockname()[1]
        self._loop.call(self._start(sock))

    async def _start(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_server(
            self._on_connection, sock=sock, ssl=self.ssl_context, limit=1 << 20
        )

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.connections = 0

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def last(self) -> RecordedRequest:
        assert self.requests, f"origin {self.name!r} received no request"
        return self.requests[-1]

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.requests)

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(req)

    async def _on_connection(self, reader, writer) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            # Do not wait for handlers (upgraded/slow connections) beyond a moment.
            try:
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            except (asyncio.TimeoutError, Exception):
                pass
        for task in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
            task.cancel()

    def close(self) -> None:
        try:
            self._loop.call(self._close(), timeout=5)
        except Exception:
            pass
        self._loop.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.url}>"


class Origin(_BaseOrigin):
    """HTTP/1.1 origin (see the module docstring for its endpoints). ``handler`` may override
    the answer for a request: ``handler(recorded) -> (status, headers, body) | None``."""

    def __init__(self, name: str = "origin", ssl_context: ssl.SSLContext | None = None,
                 handler: Callable[[RecordedRequest], Any] | None = None,
                 host: str = "127.0.0.1", idle_timeout: float | None = None) -> None:
        self.handler = handler
        # Close keep-alive connections idle for this long (silently, as servers do).
        self.idle_timeout = idle_timeout
        self._conn_seq = 0
        super().__init__(name, ssl_context, host)

    # ------------------------------------------------------------------ connection loop
    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self.connections += 1
            self.open_connections += 1
            self._conn_seq += 1
            conn_id = self._conn_seq
        _nodelay(writer)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=256 * 1024)
        try:
            while True:
                event = await self._next_event(conn, reader)
                if isinstance(event, h11.ConnectionClosed) or event is None:
                    break
                if not isinstance(event, h11.Request):
                    break
                keep_going = await self._serve(conn, event, reader, writer, conn_id)
                if not keep_going:
                    break
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    break
                try:
                    conn.start_next_cycle()
                except h11.LocalProtocolError:
                    break
        except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError, ssl.SSLError, OSError) as e:
            # Kept for diagnosis: a gateway sending malformed HTTP shows up here.
            self.errors.append(f"{type(e).__name__}: {e}")
        except asyncio.CancelledError:
            pass
        finally:
            with self._lock:
                self.open_connections -= 1
            try:
                writer.close()
            except Exception:
                pass

    async def _next_event(self, conn: h11.Connection, reader: asyncio.StreamReader):
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if self.idle_timeout is not None and conn.their_state is h11.IDLE:
                    try:
                        data = await asyncio.wait_for(reader.read(256 * 1024), self.idle_timeout)
                    except asyncio.TimeoutError:
                        return None
                    conn.receive_data(data)
                    continue
                data = await reader.read(256 * 1024)
                conn.receive_data(data)
                continue
            if event is h11.PAUSED:
                return None
            return event

    async def _send(self, conn: h11.Connection, writer: asyncio.StreamWriter, event) -> None:
        data = conn.send(event)
        if data:
            writer.write(data)
            await writer.drain()

    async def _read_body(self, conn, reader, writer, rec: RecordedRequest | None = None):
        """Reads the whole request body streaming; returns (length, sha256 hex)."""
        if conn.they_are_waiting_for_100_continue:
            await self._send(conn, writer, h11.InformationalResponse(status_code=100, headers=[]))
        h = hashlib.sha256()
        n = 0
        while True:
            event = await self._next_event(conn, reader)
            if isinstance(event, h11.Data):
                n += len(event.data)
                h.update(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise ConnectionError(f"unexpected event {event!r}")
        if rec is not None:
            rec.body_len = n
            rec.body_sha256 = h.hexdigest()
        return n, h.hexdigest()

    async def _respond(self, conn, writer, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        hdrs = [(k, v) for k, v in headers]
        if not any(k.lower() == "content-length" for k, _ in hdrs) and status not in (204, 304) and status >= 200:
            hdrs.append(("content-length", str(len(body))))
        hdrs.append(("x-origin-name", self.name))
        # One write for the whole response (no Nagle/delayed-ACK stalls between head and body).
        out = conn.send(h11.Response(status_code=status, headers=hdrs))
        if body and getattr(conn, "_request_method", None) != b"HEAD":
            out += conn.send(h11.Data(data=body))
        out += conn.send(h11.EndOfMessage())
        writer.write(out)
        await writer.drain()

    def _echo_json(self, rec: RecordedRequest, n: int, digest: str) -> bytes:
        return json.dumps(
            {
                "method": rec.method,
                "path": rec.path,
                "query": rec.query,
                "headers": [list(p) for p in rec.headers],
                "body_len": n,
                "body_sha256": digest,
                "origin_name": self.name,
                "http_version": rec.http_version,
            }
        ).encode()

    async def _serve(self, conn, req: h11.Request, reader, writer, conn_id: int) -> bool:
        target = req.target.decode("latin-1")
        path, _, query = target.partition("?")
        rec = RecordedRequest(
            method=req.method.decode(),
            target=target,
            path=path,
            query=query,
            headers=[(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in req.headers],
            http_version=req.http_version.decode(),
            connection_id=conn_id,
        )
        self._record(rec)
        json_ct = [("content-type", "application/json")]

        if self.handler is not None:
            answer = self.handler(rec)
            if answer is not None:
                await self._read_body(conn, reader, writer, rec)
                status, headers, body = answer
                await self._respond(conn, writer, status, list(headers), body)
                return True

        if path == "/close" or path.startswith("/close/"):
            return False  # close without answering

        if path == "/ws" or path.startswith("/ws/"):
            return await self._websocket(conn, rec, reader, writer)

        if path.startswith("/status/"):
            n, digest = await self._read_body(conn, reader, writer, rec)
            try:
                code = int(path.split("/")[2])
            except ValueError:
                code = 400
            body = b"" if code in (204, 304) or code < 200 else json.dumps(
                {"status": code, "origin_name": self.name}).encode()
            await self._respond(conn, writer, code, json_ct if body else [], body)
            return True

        if path.startswith("/slow/"):
            n, digest = await self._read_body(conn, reader, writer, rec)
            try:
                ms = int(path.split("/")[2])
            except ValueError:
                ms = 1000
            await asyncio.sleep(ms / 1000)
            await self._respond(conn, writer, 200, json_ct, self._echo_json(rec, n, digest))
            return True

        if path.startswith("/bytes/"):
            await self._read_body(conn, reader, writer, rec)
            total = int(path.split("/")[2])
            await self._send(conn, writer, h11.Response(
                status_code=200,
                headers=[("content-type", "application/octet-stream"),
                         ("transfer-encoding", "chunked"), ("x-origin-name", self.name)]))
            block = pattern_chunk()
            sent = 0
            while sent < total:
                piece = block if total - sent >= CHUNK else block[: total - sent]
                writer.write(conn.send(h11.Data(data=piece)))
                sent += len(piece)
                if writer.transport.get_write_buffer_size() > 1 << 20:
                    await writer.drain()
            await self._send(conn, writer, h11.EndOfMessage())
            return True

        if path == "/upload":
            n, digest = await self._read_body(conn, reader, writer, rec)
            body = json.dumps({"len": n, "sha256": digest, "origin_name": self.name}).encode()
            await self._respond(conn, writer, 200, json_ct, body)
            return True

        if path == "/trailers":
            await self._read_body(conn, reader, writer, rec)
            parts = [b"hello ", b"from ", b"the trailers endpoint\n"]
            digest = hashlib.sha256(b"".join(parts)).hexdigest()
            await self._send(conn, writer, h11.Response(
                status_code=200,
                headers=[("content-type", "text/plain"), ("transfer-encoding", "chunked"),
                         ("trailer", "x-checksum"), ("x-origin-name", self.name)]))
            for p in parts:
                await self._send(conn, writer, h11.Data(data=p))
            await self._send(conn, writer, h11.EndOfMessage(headers=[("x-checksum", digest)]))
            return True

        # /echo/... and everything else
        n, digest = await self._read_body(conn, reader, writer, rec)
        await self._respond(conn, writer, 200, json_ct, self._echo_json(rec, n, digest))
        return True

    # ------------------------------------------------------------------ WebSocket
    async def _websocket(self, conn, rec: RecordedRequest, reader, writer) -> bool:
        key = rec.header("sec-websocket-key")
        upgrade = (rec.header("upgrade") or "").lower()
        if not key or upgrade != "websocket":
            await self._read_body(conn, reader, writer, rec)
            await self._respond(conn, writer, 400, [], b"not a websocket request")
            return True
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        await self._send(conn, writer, h11.InformationalResponse(
            status_code=101,
            headers=[("upgrade", "websocket"), ("connection", "Upgrade"),
                     ("sec-websocket-accept", accept), ("x-origin-name", self.name)]))
        data, _closed = conn.trailing_data
        buf = bytearray(data)
        try:
            while True:
                frame = await _ws_read_frame(reader, buf)
                if frame is None:
                    break
                fin, opcode, payload = frame
                if opcode == 0x8:  # close: echo it and stop
                    writer.write(_ws_frame(0x8, payload[:2] if len(payload) >= 2 else b""))
                    await writer.drain()
                    break
                if opcode == 0x9:  # ping
                    writer.write(_ws_frame(0xA, payload))
                elif opcode == 0xA:
                    continue
                else:
                    writer.write(_ws_frame(opcode, payload, fin))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        return False


def _nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


async def _ws_read_exact(reader: asyncio.StreamReader, buf: bytearray, n: int) -> bytes:
    while len(buf) < n:
        chunk = await reader.read(65536)
        if not chunk:
            raise asyncio.IncompleteReadError(bytes(buf), n)
        buf.extend(chunk)
    out = bytes(buf[:n])
    del buf[:n]
    return out


async def _ws_read_frame(reader, buf: bytearray):
    try:
        head = await _ws_read_exact(reader, buf, 2)
    except asyncio.IncompleteReadError:
        return None
    fin = bool(head[0] & 0x80)
    opcode = head[0] & 0x0F
    masked = bool(head[1] & 0x80)
    length = head[1] & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await _ws_read_exact(reader, buf, 2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await _ws_read_exact(reader, buf, 8))
    mask = await _ws_read_exact(reader, buf, 4) if masked else b""
    payload = await _ws_read_exact(reader, buf, length)
    if masked:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return fin, opcode, payload


def _ws_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, n)
    elif n < 65536:
        head = struct.pack("!BBH", first, 126, n)
    else:
        head = struct.pack("!BBQ", first, 127, n)
    return head + payload


class H2Origin(_BaseOrigin):
    """HTTP/2 origin with prior knowledge (h2c; h2 over TLS when given an ssl context with ALPN
    h2). Every path is answered like ``/echo`` with ``http_version`` "2"."""

    def __init__(self, name: str = "h2-origin", ssl_context: ssl.SSLContext | None = None,
                 host: str = "127.0.0.1") -> None:
        self._conn_seq = 0
        super().__init__(name, ssl_context, host)

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import h2.config
        import h2.connection
        import h2.events

        with self._lock:
            self.connections += 1
            self.open_connections += 1
            self._conn_seq += 1
            conn_id = self._conn_seq
        conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding="latin-1",
                                             validate_inbound_headers=False))
        _nodelay(writer)
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        streams: dict[int, dict[str, Any]] = {}
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                try:
                    events = conn.receive_data(data)
                except Exception:
                    break
                for ev in events:
                    if isinstance(ev, h2.events.RequestReceived):
                        hdrs = [(str(k).lower(), str(v)) for k, v in ev.headers]
                        pseudo = dict((k, v) for k, v in hdrs if k.startswith(":"))
                        target = pseudo.get(":path", "")
                        path, _, query = target.partition("?")
                        rec = RecordedRequest(
                            method=pseudo.get(":method", ""), target=target, path=path,
                            query=query, headers=hdrs, http_version="2", connection_id=conn_id)
                        self._record(rec)
                        streams[ev.stream_id] = {"rec": rec, "h": hashlib.sha256(), "n": 0}
                    elif isinstance(ev, h2.events.DataReceived):
                        st = streams.get(ev.stream_id)
                        if st is not None:
                            st["h"].update(ev.data)
                            st["n"] += len(ev.data)
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        st = streams.pop(ev.stream_id, None)
                        if st is None:
                            continue
                        rec = st["rec"]
                        rec.body_len = st["n"]
                        rec.body_sha256 = st["h"].hexdigest()
                        body = json.dumps({
                            "method": rec.method, "path": rec.path, "query": rec.query,
                            "headers": [list(p) for p in rec.headers],
                            "body_len": rec.body_len, "body_sha256": rec.body_sha256,
                            "origin_name": self.name, "http_version": "2",
                        }).encode()
                        conn.send_headers(ev.stream_id, [
                            (":status", "200"), ("content-type", "application/json"),
                            ("content-length", str(len(body))), ("x-origin-name", self.name)])
                        conn.send_data(ev.stream_id, body, end_stream=True)
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        writer.write(conn.data_to_send())
                        return
                out = conn.data_to_send()
                if out:
                    writer.write(out)
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError, OSError):
            pass
        finally:
            with self._lock:
                self.open_connections -= 1
            try:
                writer.close()
            except Exception:
                pass


class ScriptedOrigin:
    """A TCP server whose answer is written by ``script(sock, request_head_bytes)`` for each
    connection: for upstreams that misbehave at the byte level. ``heads`` records the request
    heads received; ``connections`` counts accepted connections."""

    def __init__(self, script: Callable[[socket.socket, bytes], None], name: str = "scripted") -> None:
        self.name = name
        self.script = script
        self.heads: list[bytes] = []
        self.connections = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name=f"scripted-{name}").start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head = buf.split(b"\r\n\r\n", 1)[0]
            self.heads.append(head)
            self.script(conn, head)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def close(self) -> None:
        self._closed = True
        try:
            self.sock.close()
        except OSError:
            pass
