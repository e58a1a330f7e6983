#!/usr/bin/env python3
"""How long admin writes keep the proxy worker off its core, under load.

The p99 that issue 3 asks about (`control_plane.py`) is what a user sees, but on a shared
host a window's p99 moves with the host's hiccups more than with our writes. This measures
the mechanism instead: the time the worker thread spends *runnable but not running* (waiting
for its core while another thread has it; the second field of `/proc/PID/task/TID/schedstat`)
and the number of times it is preempted (`nonvoluntary_ctxt_switches`), in windows with and
without writes, alternated as in `control_plane.py` (SQLite store, one worker, the gateway
on core 0, wrk and this script on core 1, writes every ~100 ms of the global
`response-headers` policy). Time the hypervisor steals is not runnable-wait: the kernel
does not see it, so this figure does not depend on the host's noise as p99 does.

    .venv/bin/python bench/worker_delay.py [--routes 10000] [--rounds 10] [--writes 100]

Prints, per kind of window, the worker's waiting and preemptions per second (over all windows,
and the median window's), and the extra waiting and preemptions per write (from the medians,
which a window the host disturbed does not move; and from all windows). `--control-policy batch` puts every thread but the
workers in SCHED_BATCH before each window (an experiment); `--pause P` loads the worker
below saturation (as `control_plane.py --pause`).
"""

from __future__ import annotations

import argparse
import re
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import control_plane as cp  # noqa: E402


def worker_tids(pid: int) -> list[str]:
    return [t.name for t in Path(f"/proc/{pid}/task").iterdir()
            if (t / "comm").read_text().startswith("tollgate-work")]


def sample(pid: int, tids: list[str]) -> tuple[int, int, int]:
    """(runnable-wait ns, run ns, involuntary switches) summed over the workers."""
    wait = run = forced = 0
    for tid in tids:
        base = Path(f"/proc/{pid}/task/{tid}")
        cpu, waited, _ = (int(x) for x in (base / "schedstat").read_text().split())
        wait += waited
        run += cpu
        forced += int(re.search(r"nonvoluntary_ctxt_switches:\s+(\d+)",
                                (base / "status").read_text()).group(1))
    return wait, run, forced


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--routes", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--writes", type=int, default=100, help="writes in all (per round: WRITES/ROUNDS)")
    ap.add_argument("--bin", default=str(cp.REPO / "target" / "release" / "tollgate"))
    ap.add_argument("--control-policy", choices=sorted(cp.POLICIES), default=None)
    ap.add_argument("--sqlite-synchronous", choices=["full", "normal"], default=None,
                    help="the store's SQLite synchronous setting (default: the gateway's, full)")
    ap.add_argument("--pause", type=float, default=0.0,
                    help="as control_plane.py --pause: a load below saturation")
    args = ap.parse_args()
    cp.PAUSE = args.pause
    cp.SYNCHRONOUS = args.sqlite_synchronous
    cp.driver_on_load_core()
    per_round = max(1, args.writes // args.rounds)
    policy = cp.POLICIES.get(args.control_policy or "")
    with tempfile.TemporaryDirectory(prefix="tollgate-wd-bench-") as tmp:
        gw = cp.Gateway(args.bin, Path(tmp))
        gw.start_with_routes(args.routes)
        proxy = httpx.Client(base_url=f"http://127.0.0.1:{gw.proxy}", timeout=10)
        pid = gw.proc.pid
        tids = worker_tids(pid)
        seen = {"n": 0}

        def write() -> None:
            seen["n"] += 1
            gw.write(seen["n"])

        def window(writing: bool) -> tuple[float, int, int, float]:
            if policy is not None:
                gw.set_control_policy(policy)
            load = cp.wrk(gw.proxy, 300, "/api0/r0")
            time.sleep(0.5)
            w0, r0, f0 = sample(pid, tids)
            t0 = time.monotonic()
            for _ in range(per_round):
                if writing:
                    write()
                else:
                    time.sleep(0.005)
                time.sleep(0.1)
            # The last write's compile and publish, or the same idle time.
            time.sleep(0.1)
            w1, r1, f1 = sample(pid, tids)
            seconds = time.monotonic() - t0
            load.send_signal(signal.SIGINT)
            load.communicate()
            return seconds, w1 - w0, f1 - f0, (r1 - r0) / 1e9

        try:
            for _ in range(3):  # warm up
                write()
            assert proxy.get("/api0/r0").status_code == 200
            rows: dict[bool, list[tuple[float, int, int, float]]] = {False: [], True: []}
            for _ in range(args.rounds):
                rows[False].append(window(False))
                rows[True].append(window(True))
        finally:
            gw.stop()

    def totals(kind: bool) -> tuple[float, float, float, float]:
        s = sum(r[0] for r in rows[kind])
        return (s, sum(r[1] for r in rows[kind]) / 1e6, sum(r[2] for r in rows[kind]),
                sum(r[3] for r in rows[kind]))

    s0, w0, f0, c0 = totals(False)
    s1, w1, f1, c1 = totals(True)
    n = per_round * args.rounds
    print(f"{args.routes} routes, {args.rounds} rounds, {n} writes"
          + (f", control threads in SCHED_{args.control_policy.upper()}" if policy else ""))
    print("| windows | worker runnable-wait per s (all; median window) | preemptions per s "
          "(all; median) | worker CPU share |")
    print("|---|---:|---:|---:|")
    medians = {}
    for kind, (s, w, f, c) in ((False, (s0, w0, f0, c0)), (True, (s1, w1, f1, c1))):
        wait = statistics.median(r[1] / 1e6 / r[0] for r in rows[kind])
        forced = statistics.median(r[2] / r[0] for r in rows[kind])
        medians[kind] = (wait, forced)
        print(f"| {'with' if kind else 'without'} writes | {w / s:.2f} ms; {wait:.2f} ms "
              f"| {f / s:.1f}; {forced:.1f} | {c / s:.0%} |")
    writes_per_s = n / s1
    print(f"per write (medians): worker kept waiting "
          f"{(medians[True][0] - medians[False][0]) / writes_per_s * 1000:.0f} µs more, "
          f"preempted {(medians[True][1] - medians[False][1]) / writes_per_s:.1f} times more; "
          f"(all windows: {(w1 / s1 - w0 / s0) / writes_per_s * 1000:.0f} µs, "
          f"{(f1 / s1 - f0 / s0) / writes_per_s:.1f} times)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
