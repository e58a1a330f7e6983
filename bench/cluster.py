#!/usr/bin/env python3
"""Cluster benchmark: N nodes on one PostgreSQL database, changes made through node 1.

Creates a fresh database on the local PostgreSQL (dropped afterwards), loads ROUTES routes with
one `config apply` through node 1, restarts the nodes (so `workers: 1` applies), then

1. alternates ROUNDS windows of request latency on node 2 (a node that learns of changes
   through the feed), measured with wrk, without changes and with CHANGES/ROUNDS admin writes
   through node 1, one every 100 ms (each replaces the global `response-headers` policy, so
   every route's answers change);
2. under the same load, makes CHANGES more changes and measures for each the time from
   sending the write to every other node answering with the new header (propagation);
3. records each node's RSS.

Placement (`--placement`): `shared` (the default) puts all nodes on --gateway-cores (default
core 0) and wrk on core 1, so the measured node's core also runs the other nodes' work for
every change, three compiles per change where a deployment has one per machine. `apart` models
one machine per node and one for PostgreSQL on this two-core host: the measured node alone on
--gateway-cores; the other nodes and PostgreSQL's processes on core 1 at nice 19 (moved for the
run, put back after), beside wrk at nice 0: stand-ins for other machines, they yield to the load
generator, whose latency figures would otherwise include their runs. Reports propagation
p50/p99/max, request p99 without/with changes pooled over the windows of each kind and their
ratio (as `control_plane.py`, see `latency.py`), and RSS per node, in
bench/results/cluster.md and .json. Targets (issue 4): at 10,000 routes and 3 nodes,
propagation p99 < 1 s, p99 during changes within 20 % of p99 without.

    .venv/bin/python bench/cluster.py [--routes 10000] [--nodes 3] [--changes 100]
        [--placement shared|apart] [--postgres postgres://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import control_plane  # noqa: E402
import latency  # noqa: E402
from control_plane import (  # noqa: E402
    config_yaml, driver_on_load_core, free_port, interleaved, percentile, pin,
)

REPO = Path(__file__).resolve().parents[1]


class Node:
    def __init__(self, binary: str, workdir: Path, store: str, key: Path, cores: str,
                 nice: int = 0) -> None:
        self.binary, self.workdir, self.store, self.key, self.cores = binary, workdir, store, key, cores
        self.nice = nice
        workdir.mkdir(parents=True, exist_ok=True)
        self.data = workdir / "data"
        self.proxy, self.admin = free_port(), free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.workdir / "tollgate.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*pin(self.cores), *(["nice", "-n", str(self.nice)] if self.nice else []),
             self.binary, "run", "--store", self.store, "--data-dir", str(self.data),
             "--secret-key-file", str(self.key), "--listen", f"127.0.0.1:{self.proxy}",
             "--admin-listen", f"127.0.0.1:{self.admin}", "--log-level", "warn"],
            stdout=log, stderr=log)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.admin}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"node did not start; see {self.workdir / 'tollgate.log'}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024


@contextlib.contextmanager
def started_cluster(binary: str, postgres: str, routes: int, count: int, cores: str,
                    prefix: str = "tollgate-cluster-bench-", others_cores: str | None = None):
    """COUNT nodes on a fresh database of `postgres` holding ROUTES routes (loaded with one
    `config apply` through node 1, then every node (re)started, so `workers: 1` applies);
    yields the nodes and an admin client of node 1. All nodes run on CORES, or with
    OTHERS_CORES, node 2 (the measured one) on CORES and the others there at nice 19. Stops
    the nodes and drops the database afterwards."""
    import psycopg

    db = f"tollgate_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db}")
    store = postgres.rsplit("/", 1)[0] + "/" + db
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    nodes: list[Node] = []
    try:
        key = tmp / "secret.key"
        key.write_text(base64.b64encode(os.urandom(32)).decode())
        apart = others_cores is not None
        nodes = [Node(binary, tmp / f"node{i}", store, key,
                      others_cores if apart and i != 1 else cores, 19 if apart and i != 1 else 0)
                 for i in range(count)]
        token = subprocess.run([binary, "admin", "token", "create", "--role", "admin", "--store", store,
                                "--data-dir", str(nodes[0].data), "--secret-key-file", str(key)],
                               capture_output=True, text=True, check=True).stdout.strip()
        nodes[0].start()
        nodes[0].wait_ready()
        admin = httpx.Client(base_url=f"http://127.0.0.1:{nodes[0].admin}",
                             headers={"Authorization": f"Bearer {token}"}, timeout=120)
        r = admin.post("/api/v1/config/apply", content=config_yaml(routes),
                       headers={"Content-Type": "application/yaml"})
        r.raise_for_status()
        nodes[0].stop()
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_ready()
        yield nodes, admin
    finally:
        for node in nodes:
            try:
                node.stop()
            except Exception:  # noqa: BLE001
                if node.proc:
                    node.proc.kill()
        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        shutil.rmtree(tmp, ignore_errors=True)


def postgres_pids() -> list[int]:
    """The PostgreSQL server's processes on this machine."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "comm").read_text().strip() == "postgres":
                pids.append(int(proc.name))
        except OSError:
            pass  # gone meanwhile
    return pids


@contextlib.contextmanager
def postgres_on(cores: set[int] | None):
    """With CORES, every PostgreSQL process on them at nice 19 for the duration (backends
    forked meanwhile inherit the postmaster's mask and nice value); each is given its own back
    after."""
    if cores is None:
        yield
        return
    moved: dict[int, tuple[set[int], int]] = {}
    for pid in postgres_pids():
        try:
            moved[pid] = (os.sched_getaffinity(pid), os.getpriority(os.PRIO_PROCESS, pid))
            os.sched_setaffinity(pid, cores)
            os.setpriority(os.PRIO_PROCESS, pid, 19)
        except OSError:
            pass  # gone meanwhile
    if not moved:
        raise RuntimeError("--placement apart: no PostgreSQL process found on this machine")
    try:
        yield
    finally:
        everything = set(range(os.cpu_count() or 1))
        for pid in postgres_pids():
            mask, nice = moved.get(pid, (everything, 0))
            try:
                os.sched_setaffinity(pid, mask)
                os.setpriority(os.PRIO_PROCESS, pid, nice)
            except OSError:
                pass  # gone meanwhile


def run(args: argparse.Namespace) -> dict:
    apart = args.placement == "apart"
    with postgres_on({1} if apart else None), \
            started_cluster(args.bin, args.postgres, args.routes, args.nodes, args.gateway_cores,
                            others_cores="1" if apart else None) as (nodes, admin):
        path = "/api0/r0"
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{n.proxy}", timeout=5) for n in nodes]
        for c in clients:
            assert c.get(path).headers.get("x-bench-rev") == "0"
        measured = nodes[1] if len(nodes) > 1 else nodes[0]
        others = list(clients[1:]) or clients

        def change(i: int) -> None:
            w = admin.put("/api/v1/policies/response-headers", json={
                "name": "response-headers", "config": {"set": {"x-bench-rev": str(i)}}})
            w.raise_for_status()

        def everywhere(i: int) -> bool:
            return all(c.get(path).headers.get("x-bench-rev") == str(i) for c in others)

        m = interleaved(measured.proxy, path, args.rounds, args.changes, change,
                        everywhere, [n.proc.pid for n in nodes], our_commands=("postgres",))
        propagation = m["live"]
        rss = [round(n.rss_mb(), 1) for n in nodes]
        return {
            "routes": args.routes,
            "nodes": args.nodes,
            "placement": args.placement,
            "changes": args.changes,
            "propagation_p50_ms": round(percentile(propagation, 50) * 1000, 1),
            "propagation_p99_ms": round(percentile(propagation, 99) * 1000, 1),
            "propagation_max_ms": round(max(propagation) * 1000, 1),
            "aa": control_plane.AA,
            "pause": control_plane.PAUSE,
            "pooled": m["pooled"],
            "p99_without_changes_ms": round(statistics.median(m["base_p99"]), 3),
            "p99_during_changes_ms": round(statistics.median(m["during_p99"]), 3),
            "p99_ratio": round(statistics.median(m["ratios"]), 2),
            "p99_ratio_per_round": [round(r, 2) for r in m["ratios"]],
            "rss_mb_per_node": rss,
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--routes", type=int, default=10000)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5, help="windows without / with changes, alternated")
    ap.add_argument("--postgres", default=os.environ.get(
        "TOLLGATE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "tollgate"))
    ap.add_argument("--gateway-cores", default="0", help="cores the nodes may use (wrk stays on core 1)")
    ap.add_argument("--write-every", type=float, default=None,
                    help="seconds between the starts of a window's changes (default: 100 ms after each answer)")
    ap.add_argument("--aa", action="store_true",
                    help="A/A run: make no changes in the 'with changes' windows (the host's noise floor)")
    ap.add_argument("--pause", type=float, default=0.0,
                    help="as control_plane.py --pause: wrk pauses for a load below saturation")
    ap.add_argument("--placement", choices=("shared", "apart"), default="shared",
                    help="shared: all nodes on --gateway-cores; apart: only the measured node there "
                         "(the others, PostgreSQL and wrk on core 1; see above)")
    args = ap.parse_args()
    if args.placement == "apart" and (os.cpu_count() or 1) < 2:
        ap.error("--placement apart needs two cores")
    control_plane.PAUSE = args.pause
    control_plane.WRITE_EVERY = args.write_every
    control_plane.AA = args.aa
    if not shutil.which("wrk"):
        print("wrk is not installed; run scripts/setup.sh", file=sys.stderr)
        return 1
    driver_on_load_core()
    result = run(args)
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "cluster.json").write_text(json.dumps(result, indent=2) + "\n")
    r = result
    table = "\n".join([
        f"| routes | nodes | propagation p50 | p99 | max | {latency.REPORT_HEAD.replace('writes', 'changes')} "
        "| RSS per node |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        f"| {r['routes']:,} | {r['nodes']} ({r['placement']}) | {r['propagation_p50_ms']} ms | {r['propagation_p99_ms']} ms "
        f"| {r['propagation_max_ms']} ms | {latency.report_cells(r)} "
        f"| {', '.join(f'{m} MB' for m in r['rss_mb_per_node'])} |",
    ])
    (out / "cluster.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
