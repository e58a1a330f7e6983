#!/usr/bin/env python3
"""What one admin write costs each of the gateway's threads: CPU time and runs on a core.

Starts Tollgate in store mode (SQLite, one worker, the whole process on core 0) with ROUTES
routes (100 APIs of 100 at 10,000), then makes WRITES writes of the global
`response-headers` policy one after another, each polled until live, and reads every
thread's CPU time and number of runs (`/proc/PID/task/*/schedstat`) before and after. No
load runs meanwhile, so the figures do not depend on what else the host does; the thread's
runs are what a worker sharing its core would wait behind. Idle figures (5 s with nothing
happening) come first, for comparison.

    .venv/bin/python bench/write_threads.py [--routes 10000] [--writes 50]

Environment variables reach the gateway (e.g. `TOLLGATE_COMPILE_PACE=off`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import control_plane as cp  # noqa: E402


def threads(pid: int) -> dict[str, tuple[str, int, int]]:
    """Per thread id: (name, CPU ns, runs)."""
    out = {}
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (t / "comm").read_text().strip()
            cpu, _wait, runs = (int(x) for x in (t / "schedstat").read_text().split())
        except (FileNotFoundError, ValueError):
            continue
        out[t.name] = (name, cpu, runs)
    return out


def by_name(before: dict, after: dict) -> dict[str, list[int]]:
    totals: dict[str, list[int]] = {}
    for tid, (name, cpu, runs) in after.items():
        _, cpu0, runs0 = before.get(tid, (name, 0, 0))
        t = totals.setdefault(name, [0, 0])
        t[0] += cpu - cpu0
        t[1] += runs - runs0
    return totals


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--routes", type=int, default=10000)
    ap.add_argument("--writes", type=int, default=50)
    ap.add_argument("--bin", default=str(cp.REPO / "target" / "release" / "tollgate"))
    args = ap.parse_args()
    cp.driver_on_load_core()
    with tempfile.TemporaryDirectory(prefix="tollgate-wt-bench-") as tmp:
        gw = cp.Gateway(args.bin, Path(tmp))
        gw.start_with_routes(args.routes)
        proxy = httpx.Client(base_url=f"http://127.0.0.1:{gw.proxy}", timeout=10)
        try:
            def write(i: int) -> None:
                gw.write(i)
                while proxy.get("/api0/r0").headers.get("x-bench-rev") != str(i):
                    time.sleep(0.002)

            for i in range(3):  # warm up
                write(10_000 + i)
            time.sleep(1)
            idle0 = threads(gw.proc.pid)
            time.sleep(5)
            idle = by_name(idle0, threads(gw.proc.pid))
            before = threads(gw.proc.pid)
            started = time.monotonic()
            for i in range(args.writes):
                write(i)
            wall = time.monotonic() - started
            spent = by_name(before, threads(gw.proc.pid))
        finally:
            gw.stop()
    n = args.writes
    print(f"{args.routes} routes, {n} writes, write -> live {wall / n * 1000:.1f} ms each (mean)")
    print("| thread | CPU per write | runs per write | idle: CPU per second | runs per second |")
    print("|---|---:|---:|---:|---:|")
    for name, (cpu, runs) in sorted(spent.items(), key=lambda kv: -kv[1][0]):
        icpu, iruns = idle.get(name, [0, 0])
        if cpu == 0 and icpu == 0:
            continue
        print(f"| {name} | {cpu / n / 1000:.0f} µs | {runs / n:.1f} | {icpu / 5 / 1000:.0f} µs | {iruns / 5:.1f} |")
    print("(the worker's figures include the polls that tell when a write is live)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
