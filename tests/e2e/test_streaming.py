"""Large bodies are streamed, never buffered: 1 GiB each way through the gateway while its
resident memory is sampled from /proc/PID/status."""

from __future__ import annotations

import hashlib
import threading
import time

import httpx
import pytest

from support.configs import one_route
from support.origin import CHUNK, pattern_chunk

GIB = 1 << 30
MAX_RSS_GROWTH = 16 << 20

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


class RssSampler:
    """Samples a process's VmRSS every few milliseconds in a background thread."""

    def __init__(self, gw, interval: float = 0.02) -> None:
        self.gw = gw
        self.interval = interval
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self.gw.rss_bytes())
            except (OSError, RuntimeError):
                return
            time.sleep(self.interval)

    def __enter__(self) -> "RssSampler":
        self.baseline = self.gw.rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def growth(self) -> int:
        return max(self.samples, default=self.baseline) - self.baseline


def warm_up(gw) -> None:
    """Let the worker threads, pools and allocator reach their steady state first."""
    with httpx.Client(base_url=gw.proxy_url, timeout=10) as c:
        for _ in range(20):
            assert c.post("/upload", content=b"w" * 300_000).status_code == 200
            with c.stream("GET", "/bytes/1000000") as r:
                for _ in r.iter_raw():
                    pass
    time.sleep(0.2)


def test_1gib_upload_is_streamed_with_bounded_memory(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    warm_up(gw)
    block = bytes(range(256)) * 1024  # 256 KiB, reused: the client holds no more than this
    expected = hashlib.sha256()

    def body():
        for _ in range(GIB // len(block)):
            expected.update(block)
            yield block

    started = time.monotonic()
    with RssSampler(gw) as rss, httpx.Client(timeout=120) as c:
        r = c.post(gw.proxy_url + "/upload", content=body(), headers={"content-type": "application/octet-stream"})
    elapsed = time.monotonic() - started
    assert r.status_code == 200, r.text
    assert r.json()["len"] == GIB
    assert r.json()["sha256"] == expected.hexdigest()
    assert origin.last().header("transfer-encoding") == "chunked"
    print(f"elapsed {elapsed:.1f}s, RSS baseline {rss.baseline / 2**20:.1f} MiB, growth {rss.growth / 2**20:.2f} MiB, "
          f"{len(rss.samples)} samples")
    assert len(rss.samples) > 10
    assert rss.growth < MAX_RSS_GROWTH, f"RSS grew by {rss.growth / 2**20:.1f} MiB (baseline {rss.baseline / 2**20:.1f} MiB)"
    assert elapsed < 60, f"1 GiB upload took {elapsed:.1f}s"
    rec = gw.wait_for_access_log(lambda x: x["path"] == "/upload" and x["bytes_in"] == GIB)
    assert rec["status"] == 200


def test_1gib_download_is_streamed_with_bounded_memory(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    warm_up(gw)
    block = pattern_chunk()
    received = hashlib.sha256()
    expected = hashlib.sha256()
    n = 0
    started = time.monotonic()
    with RssSampler(gw) as rss, httpx.Client(timeout=120) as c:
        with c.stream("GET", gw.proxy_url + f"/bytes/{GIB}") as r:
            assert r.status_code == 200
            for data in r.iter_raw(CHUNK):
                n += len(data)
                received.update(data)
            for _ in range(GIB // CHUNK):
                expected.update(block)
    elapsed = time.monotonic() - started
    assert n == GIB
    assert received.hexdigest() == expected.hexdigest()
    print(f"elapsed {elapsed:.1f}s, RSS baseline {rss.baseline / 2**20:.1f} MiB, growth {rss.growth / 2**20:.2f} MiB, "
          f"{len(rss.samples)} samples")
    assert len(rss.samples) > 10
    assert rss.growth < MAX_RSS_GROWTH, f"RSS grew by {rss.growth / 2**20:.1f} MiB (baseline {rss.baseline / 2**20:.1f} MiB)"
    assert elapsed < 60, f"1 GiB download took {elapsed:.1f}s"
    rec = gw.wait_for_access_log(lambda x: x["path"] == f"/bytes/{GIB}")
    assert rec["bytes_out"] == GIB
