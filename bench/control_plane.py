#!/usr/bin/env python3
"""Control-plane benchmark: how fast an admin write is live, and what writes do to traffic.

For each route count (default 100 and 10,000): starts Tollgate in store mode (SQLite in a
temporary data directory, one worker, access log off, the whole process pinned to core 0 unless
--gateway-cores says otherwise), loads the routes with
one `config apply`, then

alternates ROUNDS (default 5) pairs of windows of request latency with wrk (pinned to core 1),
alike but for the writes: without writes, then with WRITES/ROUNDS admin writes, one every
100 ms (each changes the global `response-headers` policy, so every route's answers change);
alternating keeps a shared host's drift from landing on one side of the comparison. This script runs on wrk's core and
sends a window's writes from a `SCHED_IDLE` thread, so that its turns do not delay wrk. Then, under the same load, it makes
WRITES more writes and measures for each the time from sending it to the proxy answering with
the new header (write → live), polling every 2 ms (kept out of the latency windows, whose
p99 the polling itself would raise).

Reports write→live p50/p99/max and request p99 without and with writes pooled over the
windows of each kind, with the ratio's 95 % interval, over the windows no other machine or
process disturbed and over all (`latency.py`), in bench/results/control_plane.md and .json
(every window's histogram included: `bench/pool.py` pools several runs). Targets (issue 3):
at 10,000 routes, live in < 1 s and p99 during writes within 20 % of p99 without.

    .venv/bin/python bench/control_plane.py [--routes 100,10000] [--writes 100]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import latency  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


GATEWAY_CORES = "0"
# Seconds between the starts of a window's writes (`--write-every`); None: 100 ms after each
# write is answered (so a binary that answers sooner is measured at a higher write rate).
WRITE_EVERY: float | None = None
# `--aa`: the "with writes" windows send none (an A/A run): the ratios then show how far two
# windows of the same traffic differ on this host, the floor under any measured effect.
AA = False
# `--control-cores`: after start, every thread but the workers is moved to these cores (an
# experiment: what writes cost the worker when the control plane does not share its core).
CONTROL_CORES: set[int] | None = None
# `--control-policy batch|idle`: before every window, every thread but the workers is put in
# that scheduling class (an experiment: control threads that never preempt a worker on
# wake-up).
CONTROL_POLICY: int | None = None
POLICIES = {"batch": os.SCHED_BATCH, "idle": os.SCHED_IDLE}
# `--pause P`: each wrk connection pauses 1 ms before a request with probability P, for a
# load below saturation (histogram.lua). 0: wrk sends as fast as the gateway answers.
PAUSE = 0.0
# `--sqlite-synchronous normal`: the store's URL asks SQLite for `synchronous=normal` (no fsync
# per commit; see docs/control-plane.md). None: the default (full).
SYNCHRONOUS: str | None = None


def pin(core: int | str) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") and os.cpu_count() >= 2 else []


def config_yaml(routes: int) -> str:
    per_api = min(routes, 100)
    lines = [
        "server:",
        "  workers: 1",
        "  access_log: {enabled: false}",
        "services:",
        "  - name: m",
        "    mock: {status: 200, body: \"ok\\n\"}",
        "policies:",
        "  - name: response-headers",
        "    config: {set: {x-bench-rev: \"0\"}}",
        "apis:",
    ]
    for a in range((routes + per_api - 1) // per_api):
        lines += [f"  - name: api{a}", f"    base_path: /api{a}", "    routes:"]
        for r in range(min(per_api, routes - a * per_api)):
            lines.append(f"      - {{name: r{r}, paths: [\"= /r{r}\"], service: m}}")
    return "\n".join(lines) + "\n"


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def parse_wrk_p99_ms(text: str) -> float:
    m = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m:
        raise RuntimeError(f"no p99 in wrk output:\n{text}")
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


class Gateway:
    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary, self.workdir = binary, workdir
        self.data = workdir / "data"
        self.proxy, self.admin = free_port(), free_port()
        self.proc = None
        out = subprocess.run([binary, "admin", "token", "create", "--role", "admin",
                              "--data-dir", str(self.data)], capture_output=True, text=True, check=True)
        self.token = out.stdout.strip()
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.admin}",
                                   headers={"Authorization": f"Bearer {self.token}"}, timeout=60)

    def store_args(self) -> list[str]:
        if SYNCHRONOUS is None:
            return []
        return ["--store", f"sqlite:{self.data / 'tollgate.db'}?synchronous={SYNCHRONOUS}"]

    def start(self) -> None:
        log = open(self.workdir / "tollgate.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*pin(GATEWAY_CORES), self.binary, "run", "--data-dir", str(self.data), "--listen",
             f"127.0.0.1:{self.proxy}", "--admin-listen", f"127.0.0.1:{self.admin}",
             "--log-level", "warn", *self.store_args()], stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.admin}/health/ready", timeout=1).status_code == 200:
                    if CONTROL_CORES is not None:
                        self.move_control_threads(CONTROL_CORES)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("gateway did not start")

    def move_control_threads(self, cores: set[int]) -> None:
        for t in Path(f"/proc/{self.proc.pid}/task").iterdir():
            if not (t / "comm").read_text().startswith("tollgate-work"):
                os.sched_setaffinity(int(t.name), cores)

    def start_with_routes(self, routes: int) -> float:
        """Starts the gateway with ROUTES routes (`config_yaml`): one `config apply`, then a
        restart (`workers: 1` takes effect on restart). Returns the apply's seconds."""
        self.start()
        try:
            t0 = time.monotonic()
            self.client.post("/api/v1/config/apply", content=config_yaml(routes),
                             headers={"Content-Type": "application/yaml"}).raise_for_status()
            applied = time.monotonic() - t0
        finally:
            self.stop()
        self.start()
        return applied

    def write(self, i: int) -> None:
        """One admin write: the global `response-headers` policy sets `x-bench-rev: I`, so
        every route's answers change."""
        self.client.put("/api/v1/policies/response-headers", json={
            "name": "response-headers", "config": {"set": {"x-bench-rev": str(i)}}},
        ).raise_for_status()

    def set_control_policy(self, policy: int) -> None:
        for t in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                if not (t / "comm").read_text().startswith("tollgate-work"):
                    os.sched_setscheduler(int(t.name), policy, os.sched_param(0))
            except (FileNotFoundError, ProcessLookupError):
                pass

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


def driver_on_load_core() -> None:
    """Puts this script (the driver: admin writes, polling) on wrk's core. Its CPU is load
    generation: on the gateway's core it would count against the gateway."""
    if os.cpu_count() >= 2:
        os.sched_setaffinity(0, {1})


def below_wrk(fn, *args) -> None:
    """Runs `fn(*args)` on a thread in `SCHED_IDLE`: the writes of a measured window.

    At normal priority the driver's turns on wrk's core delay wrk itself, and its latency
    figures then include them: at 10,000 routes, request p99 during writes was 0.367 ms with
    the writes sent at normal priority, 0.214 and 0.328 ms from `SCHED_IDLE` (ratio 1.78x
    against 1.37x and 1.34x). An idle thread runs when wrk's core has nothing else to do,
    which it has (the gateway is the bottleneck). Write -> live is timed from the main
    thread at normal priority (an idle poller would notice late). `DRIVER_SCHED=normal`
    sends the writes at normal priority, as before 2026-11-28."""
    failed: list[BaseException] = []

    def body() -> None:
        if os.environ.get("DRIVER_SCHED", "idle") == "idle" and hasattr(os, "SCHED_IDLE"):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # this thread only
        try:
            fn(*args)
        except BaseException as e:  # noqa: BLE001 (re-raised on the caller's thread)
            failed.append(e)

    t = threading.Thread(target=body, name="writes")
    t.start()
    t.join()
    if failed:
        raise failed[0]


def wrk(port: int, seconds: int, path: str, histogram: Path | None = None) -> subprocess.Popen:
    """wrk on core 1; with `histogram`, every request's latency is written there at the end
    (`latency.py`)."""
    script = ["-s", str(latency.HISTOGRAM_LUA)] if histogram or PAUSE else []
    env = {**os.environ, "WRK_HISTOGRAM": str(histogram or ""), "WRK_PAUSE": str(PAUSE)}
    return subprocess.Popen([*pin(1), "wrk", "-t1", "-c16", f"-d{seconds}s", "--latency", *script,
                             f"http://127.0.0.1:{port}{path}"], stdout=subprocess.PIPE, text=True,
                            env=env)


def interleaved(port: int, path: str, rounds: int, writes: int, write, is_live,
                gateway_pids: list[int], our_commands: tuple[str, ...] = (),
                before_window=None) -> dict:
    """Measures what writes do to traffic, then how fast they are live.

    1. Alternates ROUNDS pairs of windows, so that drift on a shared host affects both alike.
       Both windows of a pair are built the same way: wrk starts, 0.5 s later WRITES/ROUNDS
       slots of 100 ms follow (or `--write-every`), and wrk stops after the last one. In the
       window with writes, each slot sends one (`write(i)`), and the window ends once the last
       is live; in the window without, the slots pass idle. Nothing polls the proxy meanwhile,
       so the windows measure the writes and not the measuring. (Until 2026-11-28 the window
       without writes was a 5 s wrk run, longer than the one with: A/A runs, with no writes in
       either, then gave medians of 0.87-0.91x, because a longer window catches more of the
       host's hiccups.)
    2. Under the same wrk load (not measured), WRITES more writes, each followed by polling
       `is_live(i)` every 2 ms: write → live.

    Returns the write→live times, each window's p99, the per-round ratios and the pooled
    comparison (`latency.compare`)."""
    base_p99: list[float] = []
    during_p99: list[float] = []
    base_windows: list[latency.Window] = []
    during_windows: list[latency.Window] = []
    histograms = Path(tempfile.mkdtemp(prefix="tollgate-bench-latency-"))
    per_round = max(1, writes // rounds)

    def window(first: int, writing: bool) -> None:
        slot = time.monotonic()
        for k in range(first, first + per_round):
            if writing:
                write(k)
            else:
                time.sleep(0.005)  # about what a write's round trip takes
            if WRITE_EVERY is None:
                time.sleep(0.1)
            else:
                slot += WRITE_EVERY
                time.sleep(max(0.0, slot - time.monotonic()))
        deadline = time.monotonic() + 10
        while writing and not is_live(first + per_round - 1):
            if time.monotonic() > deadline:
                raise RuntimeError(f"write {first + per_round - 1} not live after 10 s")
            time.sleep(0.05)

    def measured(first: int, writing: bool, into: list[latency.Window]) -> float:
        histogram = histograms / f"{len(into)}-{'with' if into is during_windows else 'without'}"
        if before_window is not None:
            before_window()
        meter = latency.Meter(gateway_pids, our_commands)
        load = wrk(port, 300, path, histogram)
        time.sleep(0.5)
        try:
            below_wrk(window, first, writing)
        finally:
            load.send_signal(signal.SIGINT)
        p99 = parse_wrk_p99_ms(load.communicate()[0])
        into.append(latency.Window(latency.read(histogram), *meter.stop()))
        return p99

    i = 0
    try:
        for _ in range(rounds):
            base_p99.append(measured(i + 1, False, base_windows))
            during_p99.append(measured(i + 1, not AA, during_windows))
            i += per_round
    finally:
        shutil.rmtree(histograms, ignore_errors=True)
    live: list[float] = []
    load = wrk(port, 600, path)
    try:
        for _ in range(writes):
            i += 1
            started = time.monotonic()
            write(i)
            while not is_live(i):
                if time.monotonic() - started > 10:
                    raise RuntimeError(f"write {i} not live after 10 s")
                time.sleep(0.002)
            live.append(time.monotonic() - started)
            time.sleep(0.05)
    finally:
        load.send_signal(signal.SIGINT)
        load.communicate()
    ratios = [d / b for b, d in zip(base_p99, during_p99)]
    return {"live": live, "base_p99": base_p99, "during_p99": during_p99, "ratios": ratios,
            "pooled": latency.compare(base_windows, during_windows)}


def run(binary: str, routes: int, writes: int, rounds: int = 5) -> dict:
    with tempfile.TemporaryDirectory(prefix="tollgate-cp-bench-") as tmp:
        gw = Gateway(binary, Path(tmp))
        apply_s = gw.start_with_routes(routes)
        path = "/api0/r0"
        proxy = httpx.Client(base_url=f"http://127.0.0.1:{gw.proxy}", timeout=5)
        try:
            assert proxy.get(path).headers.get("x-bench-rev") == "0"

            def is_live(i: int) -> bool:
                return proxy.get(path).headers.get("x-bench-rev") == str(i)

            policy = None if CONTROL_POLICY is None else (lambda: gw.set_control_policy(CONTROL_POLICY))
            m = interleaved(gw.proxy, path, rounds, writes, gw.write, is_live, [gw.proc.pid],
                            before_window=policy)
            live = m["live"]
            rss_kb = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{gw.proc.pid}/status").read_text()).group(1))
        finally:
            gw.stop()
        return {
            "routes": routes,
            "writes": writes,
            "apply_all_routes_s": round(apply_s, 3),
            "live_p50_ms": round(percentile(live, 50) * 1000, 1),
            "live_p99_ms": round(percentile(live, 99) * 1000, 1),
            "live_max_ms": round(max(live) * 1000, 1),
            "aa": AA,
            "pause": PAUSE,
            "pooled": m["pooled"],
            "p99_without_writes_ms": round(statistics.median(m["base_p99"]), 3),
            "p99_during_writes_ms": round(statistics.median(m["during_p99"]), 3),
            "p99_ratio": round(statistics.median(m["ratios"]), 2),
            "p99_ratio_per_round": [round(r, 2) for r in m["ratios"]],
            "rss_mb": round(rss_kb / 1024, 1),
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--routes", default="100,10000")
    ap.add_argument("--writes", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5, help="windows without / with writes, alternated")
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "tollgate"))
    ap.add_argument("--write-every", type=float, default=None,
                    help="seconds between the starts of a window's writes (default: 100 ms after each answer)")
    ap.add_argument("--aa", action="store_true",
                    help="A/A run: send no writes in the 'with writes' windows (the host's noise floor)")
    ap.add_argument("--control-cores", default=None,
                    help="experiment: move every thread but the workers to these cores after start")
    ap.add_argument("--control-policy", choices=["batch", "idle"], default=None,
                    help="experiment: put every thread but the workers in this scheduling class")
    ap.add_argument("--pause", type=float, default=0.0,
                    help="each wrk connection pauses 1 ms before a request with this probability "
                         "(a load below saturation; default 0: as fast as the gateway answers)")
    ap.add_argument("--sqlite-synchronous", choices=["full", "normal"], default=None,
                    help="the store's SQLite synchronous setting (default: the gateway's, full)")
    ap.add_argument("--gateway-cores", default="0",
                    help="cores the whole gateway process may use (wrk stays on core 1)")
    args = ap.parse_args()
    global GATEWAY_CORES, WRITE_EVERY, AA
    GATEWAY_CORES = args.gateway_cores
    AA = args.aa
    global CONTROL_CORES
    CONTROL_CORES = {int(c) for c in args.control_cores.split(",")} if args.control_cores else None
    WRITE_EVERY = args.write_every
    global CONTROL_POLICY, PAUSE, SYNCHRONOUS
    PAUSE = args.pause
    SYNCHRONOUS = args.sqlite_synchronous
    if args.control_policy:
        CONTROL_POLICY = POLICIES[args.control_policy]
    if not shutil.which("wrk"):
        print("wrk is not installed; run scripts/setup.sh", file=sys.stderr)
        return 1
    driver_on_load_core()
    results = [run(args.bin, int(n), args.writes, args.rounds)
               for n in args.routes.split(",")]
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "control_plane.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = [f"| routes | write→live p50 | p99 | max | {latency.REPORT_HEAD} | RSS |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows += [f"| {r['routes']:,} | {r['live_p50_ms']} ms | {r['live_p99_ms']} ms | {r['live_max_ms']} ms "
             f"| {latency.report_cells(r)} | {r['rss_mb']} MB |" for r in results]
    table = "\n".join(rows)
    (out / "control_plane.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
