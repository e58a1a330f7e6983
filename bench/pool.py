#!/usr/bin/env python3
"""Pools the latency windows of several runs of `control_plane.py` or `cluster.py`.

Each run keeps every window's latency histogram and what other machines and processes took
meanwhile in its JSON result (`bench/results/control_plane.json`, `cluster.json`; copy them
aside between runs). This prints request p99 pooled over all the windows of the files given,
without and with writes, with the ratio's 95 % bootstrap interval, over the clean windows and
over all (see `latency.py`):

    .venv/bin/python bench/pool.py run1.json run2.json ...
    .venv/bin/python bench/pool.py --p 99.9 run*.json
    .venv/bin/python bench/pool.py --by-run run*.json

`--by-run` also prints the ratio taken within each run and combined over the runs
(`latency.compare_by_run`: a geometric mean, each run counted once; each file is one run, so
give it files of one route count), for runs made while the host's noise changed a lot between
them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import latency  # noqa: E402


def windows(path: Path) -> list[tuple[latency.Window, latency.Window]]:
    data = json.loads(path.read_text())
    results = data if isinstance(data, list) else [data]
    out = []
    for result in results:
        for base, during in result["pooled"]["windows"]:
            out.append((latency.Window.from_json(base), latency.Window.from_json(during)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--p", type=float, default=99, help="percentile (default 99)")
    ap.add_argument("--by-run", action="store_true",
                    help="also the ratio within each run, combined over the runs (geometric mean)")
    args = ap.parse_args()
    pairs = [pair for f in args.files for pair in windows(f)]
    c = latency.compare([b for b, _ in pairs], [d for _, d in pairs], p=args.p)
    for kind in ("clean", "all"):
        s = c.get(kind)
        if s is None:
            print(f"{kind}: no window")
            continue
        lo, hi = s["interval"]
        print(f"{kind}: p{args.p:g} {s['without_ms']} ms without, {s['with_ms']} ms with: "
              f"{s['ratio']:.2f}x (95 % interval {lo:.2f}-{hi:.2f}), "
              f"windows {s['windows'][0]} + {s['windows'][1]}")
    if args.by_run:
        runs = []
        for f in args.files:
            run = windows(f)
            runs.append(([b for b, _ in run], [d for _, d in run]))
        for kind, s in latency.compare_by_run(runs, p=args.p).items():
            lo, hi = s["interval"]
            print(f"{kind}, by run: {s['ratio']:.2f}x (95 % interval {lo:.2f}-{hi:.2f}) over "
                  f"{s['runs']} runs; per run {', '.join(f'{r:.2f}' for r in s['per_run'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
