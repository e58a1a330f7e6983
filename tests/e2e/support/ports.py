"""Free TCP ports on 127.0.0.1."""

from __future__ import annotations

import socket
import threading

_lock = threading.Lock()
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    The kernel picks it (bind to port 0); a port is never handed out twice by this process, so
    two gateways started by the same test run cannot be given the same port (the gateway binds
    with SO_REUSEPORT, so a duplicate would not fail loudly)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with _lock:
            if port in _handed_out:
                continue
            _handed_out.add(port)
        return port
    raise RuntimeError("could not find a free port")
