#!/usr/bin/env python3
"""What one cluster change costs each thread of each node, and PostgreSQL's processes.

The cluster counterpart of `write_threads.py`: starts NODES nodes on a fresh database of the
local PostgreSQL (as `cluster.py` does: 10,000 routes loaded through node 1, every node on
core 0), then makes CHANGES changes of the global `response-headers` policy through node 1,
one after another, each polled until every other node answers with it, and reads every
thread's CPU time and number of runs (`/proc/PID/task/*/schedstat`) before and after, for
the nodes and for PostgreSQL's server processes. No load runs meanwhile, so the figures do
not depend on what else the host does; every run of these threads on core 0 is one a worker
sharing that core would wait behind.

    .venv/bin/python bench/change_threads.py [--routes 10000] [--nodes 3] [--changes 50]
        [--every SECONDS]

With `--every`, changes start that far apart (as in `cluster.py`, where each window's changes
are 100 ms apart), so that work done per interval rather than per change (each node's local
state cache, saved at most every 2 s) counts as it would there.

Environment variables reach the gateways (e.g. `TOLLGATE_COMPILE_PACE=off`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import control_plane as cp  # noqa: E402
from cluster import Node, started_cluster  # noqa: E402
from write_threads import by_name, threads  # noqa: E402


def postgres_pids() -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if (p / "comm").read_text().strip() in ("postgres", "postmaster"):
                    pids.append(int(p.name))
            except OSError:
                continue
    return pids


def pg_role(pid: int) -> str:
    """`postgres: 15/main: walwriter`, or `backend` (a connection's process)."""
    try:
        words = (Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")).split()
    except OSError:
        return "postgres"
    if any("(" in w for w in words[3:]):
        return f"backend {pid}" if os.environ.get("CT_PER_BACKEND") else "backend"
    return " ".join(words[:3]) if words[:1] == ["postgres:"] else "postmaster"


def snapshot(nodes: list[Node]) -> dict[str, dict]:
    """Per node ("node1"...) and for PostgreSQL: thread id -> (name, CPU ns, runs)."""
    out = {f"node{i + 1}": threads(n.proc.pid) for i, n in enumerate(nodes)}
    pg: dict = {}
    for pid in postgres_pids():
        role = pg_role(pid)
        pg.update({f"{pid}/{k}": (role, cpu, runs) for k, (_, cpu, runs) in threads(pid).items()})
    out["postgres"] = pg
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--routes", type=int, default=10000)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--changes", type=int, default=50)
    ap.add_argument("--postgres", default=os.environ.get(
        "TOLLGATE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--every", type=float, default=0.0,
                    help="seconds between the starts of two changes (default: back to back)")
    ap.add_argument("--bin", default=str(cp.REPO / "target" / "release" / "tollgate"))
    args = ap.parse_args()
    cp.driver_on_load_core()
    with started_cluster(args.bin, args.postgres, args.routes, args.nodes, "0",
                         prefix="tollgate-ct-bench-") as (nodes, admin):
        others = [httpx.Client(base_url=f"http://127.0.0.1:{n.proxy}", timeout=10) for n in nodes[1:]]

        live: list[float] = []

        def change(i: int) -> None:
            t0 = time.monotonic()
            admin.put("/api/v1/policies/response-headers", json={
                "name": "response-headers", "config": {"set": {"x-bench-rev": str(i)}}}).raise_for_status()
            while not all(c.get("/api0/r0").headers.get("x-bench-rev") == str(i) for c in others):
                time.sleep(0.002)
            live.append(time.monotonic() - t0)

        for i in range(3):  # warm up
            change(10_000 + i)
        time.sleep(1)
        before = snapshot(nodes)
        started = time.monotonic()
        for i in range(args.changes):
            if args.every:
                time.sleep(max(0.0, started + i * args.every - time.monotonic()))
            change(i)
        wall = sum(live[3:])
        after = snapshot(nodes)
        feed = {}
        for i, node in enumerate(nodes):
            text = httpx.get(f"http://127.0.0.1:{node.admin}/metrics",
                             headers=admin.headers).text
            feed[f"node{i + 1}"] = {m.group(1): int(float(m.group(2))) for m in re.finditer(
                r"^tollgate_store_(notifications|reads|resyncs)_total (\S+)$", text, re.M)}
    n = args.changes
    print(f"{args.routes} routes, {args.nodes} nodes, {n} changes, change -> live everywhere "
          f"{wall / n * 1000:.1f} ms each (mean)")
    print("| process | thread | CPU per change | runs per change |")
    print("|---|---|---:|---:|")
    total = 0
    for proc in before:
        spent = by_name(before[proc], after[proc])
        for name, (cpu, runs) in sorted(spent.items(), key=lambda kv: -kv[1][0]):
            if cpu / n < 5000:
                continue
            total += cpu
            print(f"| {proc} | {name} | {cpu / n / 1000:.0f} µs | {runs / n:.1f} |")
    print(f"| all | | {total / n / 1000:.0f} µs | |")
    print("(the workers' figures include the polls that tell when a change is live)")
    print("store feed counters at the end (warm-up included):",
          ", ".join(f"{k}: {v}" for k, v in feed.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
