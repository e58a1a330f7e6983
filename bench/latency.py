"""Request latency pooled over benchmark windows, for `control_plane.py` and `cluster.py`.

What issues 3 and 4 ask for is the p99 of the requests made *while writes happen* against
the p99 of requests made without. Every window's full latency histogram is kept (wrk's, at
1 µs, written by `histogram.lua`; bucketed here 1 % wide, so percentiles are exact to 1 %),
the windows of each kind are pooled, and the two pooled p99s are compared, with a 95 %
bootstrap interval. (Until 2026-11-28 the statistic was the median of per-window p99 ratios:
a 1.5 s window holds ~1,000 requests above its p99, so one hiccup moves it several times over,
and A/A rounds, where nothing differs, ranged from 0.09x to 11.7x.)

On these VMs the hiccups are the hypervisor's: a window's p99 followed the CPU time stolen
from the machine meanwhile (`steal` in /proc/stat) — p99 under 1 ms in windows with no steal,
5-17 ms in windows where 50-300 ms were stolen. So each window records its steal, and the
comparison is given twice: over all windows, and over the clean ones (see `Window.clean`).
Other processes of the machine count too (`Meter`). Every window is kept in the results'
JSON, so that `bench/pool.py` can pool the windows of several runs.
"""

from __future__ import annotations

import math
import os
import random
import resource
import time
from dataclasses import dataclass
from pathlib import Path

HISTOGRAM_LUA = Path(__file__).resolve().parent / "histogram.lua"

_STEP = math.log(1.01)
# Buckets from 1 µs to 100 s: latencies beyond land in the last one.
_BUCKETS = int(math.log(100e6) / _STEP) + 1


def _bucket(us: int) -> int:
    return min(_BUCKETS - 1, int(math.log(max(us, 1)) / _STEP))


def _value_ms(bucket: int) -> float:
    """The bucket's geometric middle, in ms."""
    return math.exp((bucket + 0.5) * _STEP) / 1000


def _cpu_ticks() -> tuple[list[int], list[int]]:
    """Per CPU, ticks running tasks (user, nice, system; not irq and softirq, which no task's
    own time includes) and ticks stolen, so far."""
    busy, stolen = [], []
    for line in Path("/proc/stat").read_text().splitlines():
        f = line.split()
        if f[0].startswith("cpu") and f[0] != "cpu":
            busy.append(int(f[1]) + int(f[2]) + int(f[3]))
            stolen.append(int(f[8]))
    return busy, stolen


def _task_ns(pid: str) -> dict[str, int]:
    """Run time so far of each live thread of a process, in ns."""
    out = {}
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                out[task.name] = int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass  # the thread just exited
    except OSError:
        pass  # so did the process
    return out


def _others_ns(ours: set[str], our_commands: tuple[str, ...]) -> tuple[dict[str, int], int]:
    """Run time so far of every live thread of every process not ours, by thread id, and the
    total of the processes that are ours by their command name (PostgreSQL's, for a cluster)."""
    others, by_command = {}, 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or proc.name in ours:
            continue
        try:
            command = (proc / "comm").read_text().strip()
        except OSError:
            continue  # the process just exited
        threads = _task_ns(proc.name)
        if command in our_commands:
            by_command += sum(threads.values())
        else:
            others.update(threads)
    return others, by_command


def _own_ms() -> float:
    """CPU time of this process and of its children reaped so far (wrk, after each window)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return (me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime) * 1000


class Meter:
    """What a window had of the machine: CPU time the hypervisor stole from each CPU (ticks
    of 10 ms, from /proc/stat), and CPU time used by processes other than the gateway(s), wrk
    and this script (on these VMs, DAMON's kdamond twice a second and a periodic health check
    that starts an Erlang VM for 100+ ms). Processes named in `our_commands` are part of what
    is measured (PostgreSQL, whose work for a cluster's changes is the changes' cost). The latter is counted two ways and the larger
    kept: the run time of every other thread (ns, but blind to processes that start and end
    within the window) and the machine's busy ticks minus our own run time (sees everything,
    to a few ticks)."""

    def __init__(self, gateway_pids: list[int], our_commands: tuple[str, ...] = ()) -> None:
        self.pids = [str(p) for p in gateway_pids]
        self.ours = {*self.pids, str(os.getpid())}
        self.our_commands = our_commands
        self.tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
        self.others, by_command = _others_ns(self.ours, our_commands)
        self.busy, self.stolen = _cpu_ticks()
        self.own = self._own_ms(by_command)
        self.started = time.monotonic()

    def _own_ms(self, by_command_ns: int) -> float:
        gateways = sum(sum(_task_ns(p).values()) for p in self.pids)
        return (gateways + by_command_ns) / 1e6 + _own_ms()

    def stop(self) -> tuple[list[float], float, float]:
        """(ms stolen per CPU, ms used by other processes, seconds) since the meter started;
        call it after wrk was reaped."""
        busy, stolen = _cpu_ticks()
        others, by_command = _others_ns(self.ours, self.our_commands)
        own = self._own_ms(by_command) - self.own
        seen = sum(ns - self.others.get(tid, 0) for tid, ns in others.items()) / 1e6
        ticked = sum(b - a for a, b in zip(self.busy, busy)) * self.tick_ms - own
        return ([(b - a) * self.tick_ms for a, b in zip(self.stolen, stolen)],
                round(max(0.0, seen, ticked), 1), round(time.monotonic() - self.started, 3))


def read(path: Path) -> list[int]:
    """A histogram written by `histogram.lua` ("microseconds count" lines), bucketed."""
    counts = [0] * _BUCKETS
    for line in path.read_text().splitlines():
        us, count = line.split()
        counts[_bucket(int(us))] += int(count)
    return counts


def pooled(histograms: list[list[int]]) -> list[int]:
    return [sum(column) for column in zip(*histograms)]


def percentile_ms(counts: list[int], p: float) -> float:
    """The latency at or below which `p` % of the requests completed."""
    total = sum(counts)
    if total == 0:
        raise ValueError("no requests in the histogram")
    rank = math.ceil(total * p / 100)
    seen = 0
    for bucket, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return _value_ms(bucket)
    return _value_ms(_BUCKETS - 1)


@dataclass
class Window:
    """One wrk window: its latency histogram, and what other machines and processes took."""
    histogram: list[int]
    stolen_ms: list[float]
    foreign_ms: float
    seconds: float

    @property
    def clean(self) -> bool:
        return (max(self.stolen_ms, default=0) <= MAX_STOLEN_MS
                and self.foreign_ms <= MAX_FOREIGN_MS_PER_S * self.seconds)

    def p_ms(self, p: float) -> float:
        return percentile_ms(self.histogram, p)

    def to_json(self) -> dict:
        return {"histogram": {str(b): c for b, c in enumerate(self.histogram) if c},
                "stolen_ms": self.stolen_ms, "foreign_ms": self.foreign_ms, "seconds": self.seconds}

    @staticmethod
    def from_json(d: dict) -> Window:
        histogram = [0] * _BUCKETS
        for b, c in d["histogram"].items():
            histogram[int(b)] = c
        return Window(histogram, d["stolen_ms"], d["foreign_ms"], d["seconds"])


# A window is clean when no CPU lost more than one tick of steal accounting (which counts in
# 10 ms steps) and other processes used at most this much CPU per second of window: what the
# machine's services and kernel threads use all the time on these VMs (13-16 ms/s, DAMON's
# kdamond 1-4 ms twice a second among them), not a health check's Erlang VM (50+ ms/s).
MAX_STOLEN_MS = 10
MAX_FOREIGN_MS_PER_S = 20


def _interval(draw, resamples: int) -> list[float]:
    ratios = sorted(draw() for _ in range(resamples))
    return [round(ratios[int(0.025 * resamples)], 3), round(ratios[int(0.975 * resamples) - 1], 3)]


def _pct(windows: list[Window], p: float) -> float:
    """The p-th percentile of the requests of WINDOWS pooled."""
    return percentile_ms(pooled([w.histogram for w in windows]), p)


def compare(base: list[Window], during: list[Window], p: float = 99, resamples: int = 1000,
            seed: int = 1) -> dict:
    """The p-th percentile of requests pooled over each kind of window, and their ratio with a
    95 % bootstrap interval: over all windows (rounds drawn in pairs: `base[i]` and `during[i]`
    are round i), and over the clean windows only (each kind drawn on its own: what disturbs a
    window, the hypervisor or the machine's other services, does not depend on whether it has
    writes, so setting disturbed windows apart biases neither side)."""
    if len(base) != len(during) or not base:
        raise ValueError("need the same number (> 0) of windows of each kind")
    rng = random.Random(seed)

    def pct(windows: list[Window]) -> float:
        return _pct(windows, p)

    def summary(b: list[Window], d: list[Window], draw) -> dict:
        return {
            "without_ms": round(pct(b), 3),
            "with_ms": round(pct(d), 3),
            "ratio": round(pct(d) / pct(b), 3),
            "interval": _interval(draw, resamples),
            "windows": [len(b), len(d)],
        }

    def paired() -> float:
        picked = rng.choices(range(len(base)), k=len(base))
        return pct([during[i] for i in picked]) / pct([base[i] for i in picked])

    out = {
        "all": summary(base, during, paired),
        "per_round_ms": [[round(b.p_ms(p), 3), round(d.p_ms(p), 3)] for b, d in zip(base, during)],
        "windows": [[b.to_json(), d.to_json()] for b, d in zip(base, during)],
        "clean_if": {"max_stolen_ms": MAX_STOLEN_MS, "max_foreign_ms_per_s": MAX_FOREIGN_MS_PER_S},
    }
    clean_b = [w for w in base if w.clean]
    clean_d = [w for w in during if w.clean]
    if clean_b and clean_d:
        out["clean"] = summary(clean_b, clean_d, lambda: (
            pct(rng.choices(clean_d, k=len(clean_d))) / pct(rng.choices(clean_b, k=len(clean_b)))))
    return out


def compare_by_run(runs: list[tuple[list[Window], list[Window]]], p: float = 99,
                   resamples: int = 1000, seed: int = 1) -> dict:
    """The ratio of `compare`, taken within each run and combined over the runs as a geometric
    mean, with a 95 % interval from a bootstrap that redraws the windows within each run (as
    `compare` does: in pairs over all windows, each kind on its own over the clean ones).

    Pooling the windows of several runs weights each run by its tail: on a host whose p99
    without writes moves from 0.2 to 1 ms between runs an hour apart, the noisy runs make the
    pooled tail and its interval. A run's two kinds of windows alternate, so they share the
    host's state; their ratio is the run's measurement, and each run counts once here."""
    rng = random.Random(seed)

    def pct(windows: list[Window]) -> float:
        return _pct(windows, p)

    def geomean(values: list[float]) -> float:
        return math.exp(sum(math.log(v) for v in values) / len(values))

    out = {}
    for kind in ("clean", "all"):
        pairs = []
        for base, during in runs:
            if kind == "clean":
                base, during = [w for w in base if w.clean], [w for w in during if w.clean]
            if base and during:
                pairs.append((base, during))
        if not pairs:
            continue

        def draw(kind=kind, pairs=pairs) -> float:
            ratios = []
            for b, d in pairs:
                if kind == "all":
                    picked = rng.choices(range(len(b)), k=len(b))
                    ratios.append(pct([d[i] for i in picked]) / pct([b[i] for i in picked]))
                else:
                    ratios.append(pct(rng.choices(d, k=len(d))) / pct(rng.choices(b, k=len(b))))
            return geomean(ratios)

        per_run = [pct(d) / pct(b) for b, d in pairs]
        out[kind] = {
            "ratio": round(geomean(per_run), 3),
            "interval": _interval(draw, resamples),
            "per_run": [round(r, 3) for r in per_run],
            "runs": len(pairs),
        }
    return out


def report_cells(r: dict) -> str:
    """The middle of a report row: request p99 pooled over the windows of each kind, with the
    ratio and its 95 % interval, over the clean windows (`Window.clean`: little CPU
    stolen by the hypervisor or used by other processes) and over all; then the median of
    the per-round ratios (the statistic until 2026-11-28, kept for comparison)."""
    def part(c: dict | None) -> str:
        if c is None:
            return "no clean window | |"
        lo, hi = c["interval"]
        return (f"{c['without_ms']} → {c['with_ms']} ms | **{c['ratio']:.2f}×** ({lo:.2f}–{hi:.2f}) "
                f"| {c['windows'][0]} + {c['windows'][1]}")
    p = r["pooled"]
    return (f"{part(p.get('clean'))} | {part(p['all'])}{' (A/A)' if r['aa'] else ''} "
            f"| {r['p99_ratio']}×")


REPORT_HEAD = ("request p99 without → with writes, clean windows | ratio (95 % interval) | windows "
               "| all windows | ratio | windows | median of per-round ratios")
