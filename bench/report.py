#!/usr/bin/env python3
"""Turn the raw files written by bench/run.sh into a Markdown report (stdlib only).

Reads WORK/meta.json and WORK/raw/:
  <name>.r<N>.wrk   wrk output of round N
  <name>.r<N>.cpu   "ticks_before ticks_after" (utime+stime of the server's process tree)
  <name>.mem.json   output of hold_conns.py
Writes the report to stdout, RESULTS/latest.md, RESULTS/latest.json and a timestamped copy.
"""

import json
import re
import statistics
import sys
from pathlib import Path

UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def parse_wrk(text):
    """requests/s, p50/p99 in µs, completed requests and error counts from `wrk --latency`."""

    def latency(pct):
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
        return float(m.group(1)) * UNITS[m.group(2)] if m else None

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    reqs = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text, re.M)
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if not (rps and reqs):
        raise ValueError("unrecognised wrk output")
    return {
        "rps": float(rps.group(1)),
        "p50_us": latency(50),
        "p99_us": latency(99),
        "requests": int(reqs.group(1)),
        "elapsed_s": float(reqs.group(2)) * UNITS[reqs.group(3)] / 1e6,
        "socket_errors": sum(map(int, sock.groups())) if sock else 0,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt_num(v, digits=0):
    return "–" if v is None else f"{v:,.{digits}f}"


def fmt_lat(us):
    if us is None:
        return "–"
    return f"{us:.0f} µs" if us < 1000 else f"{us / 1000:.2f} ms"


def fmt_ratio(a, b):
    return "–" if a is None or not b else f"{a / b:.2f}×"


def main():
    work, results = Path(sys.argv[1]), Path(sys.argv[2])
    meta = json.loads((work / "meta.json").read_text())
    raw = work / "raw"
    clk_tck = meta["clk_tck"]

    data = {}  # name -> {"rounds": [...], "mem": {...}} plus medians
    for name in meta["contenders"]:
        rounds = []
        for r in range(1, meta["rounds"] + 1):
            wrk_file = raw / f"{name}.r{r}.wrk"
            if not wrk_file.exists():
                continue
            row = parse_wrk(wrk_file.read_text())
            ticks = list(map(int, (raw / f"{name}.r{r}.cpu").read_text().split()))
            server_ticks = ticks[1] - ticks[0]
            cpu_us = server_ticks / clk_tck * 1e6
            row["cpu_us_per_req"] = cpu_us / row["requests"] if row["requests"] else None
            # Share of one core the server used; near 100% means it was the bottleneck.
            row["cpu_busy_pct"] = cpu_us / 1e4 / row["elapsed_s"] if row["elapsed_s"] else None
            # Busy time on the proxy core not spent by the proxy: other processes stealing it.
            # (For "direct" the server, the origin, runs on the load core, so none is ours.)
            row["other_load_pct"] = None
            if meta.get("pinned") and len(ticks) >= 4 and row["elapsed_s"]:
                ours = 0 if name == "direct" else server_ticks
                other = max(0, ticks[3] - ticks[2] - ours)
                row["other_load_pct"] = min(100.0, other / clk_tck * 100 / row["elapsed_s"])
            row["round"] = r
            rounds.append(row)
        mem_file = raw / f"{name}.mem.json"
        try:
            mem = json.loads(mem_file.read_text())
        except (OSError, ValueError):
            mem = None  # memory test failed; run.sh already warned
        data[name] = {
            "rounds": rounds,
            "mem": mem,
            "rps": median(x["rps"] for x in rounds),
            "p50_us": median(x["p50_us"] for x in rounds),
            "p99_us": median(x["p99_us"] for x in rounds),
            "cpu_us_per_req": median(x["cpu_us_per_req"] for x in rounds),
            "cpu_busy_pct": median(x["cpu_busy_pct"] for x in rounds),
            "rss_delta_kb": mem["rss_delta_kb"] if mem else None,
        }

    labels = {"direct": "direct (no proxy) ¹", "nginx": "nginx proxy", "tollgate": "Tollgate"}
    out = []
    w = out.append
    w(f"# Tollgate benchmark — {meta['date']}")
    w("")
    w(f"- Machine: {meta['cpu_model']}, {meta['cores']} cores; {meta['pinning']}")
    w(
        f"- Load: `wrk -t{meta['threads']} -c{meta['conns']} -d{meta['duration']}s --latency`, "
        f"{meta['rounds']} round(s) alternating contenders, medians shown; "
        f"memory at {meta['hold_conns']} held keep-alive connections"
    )
    w(f"- Origin: nginx `return 200 \"hello world\\n\"` on 127.0.0.1:{meta['origin_port']}")
    nginx_version = meta["nginx_version"].replace("nginx version: ", "")
    w(f"- Versions: {nginx_version}; {meta['wrk_version']}; tollgate: {meta['tollgate_version']}")
    if meta.get("git"):
        w(f"- Tree: {meta['git']}")
    for name, reason in meta.get("skipped", {}).items():
        w(f"- **{name} skipped**: {reason}")
    w("")
    hold = f"{meta['hold_conns']:,}"
    w(
        f"| Contender | req/s | p50 | p99 | CPU µs/req | CPU busy | RSS before "
        f"| RSS Δ @ {hold} conns | KB/conn |"
    )
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, d in data.items():
        mem = d["mem"] or {}
        before = mem.get("rss_before_kb")
        delta = mem.get("rss_delta_kb")
        w(
            f"| {labels.get(name, name)} | {fmt_num(d['rps'])} | {fmt_lat(d['p50_us'])} "
            f"| {fmt_lat(d['p99_us'])} | {fmt_num(d['cpu_us_per_req'], 1)} "
            f"| {fmt_num(d['cpu_busy_pct'])}% "
            f"| {fmt_num(before / 1024 if before is not None else None, 1)} MB "
            f"| {fmt_num(delta / 1024 if delta is not None else None, 1)} MB "
            f"| {fmt_num(mem.get('kb_per_conn'), 1)} |"
        )
    w("")
    base = data.get("nginx")
    if base:
        w("Ratios to nginx (req/s: higher is better; p99, CPU, RSS: lower is better; 1.00× = parity)")
        w("")
        w("| Contender | req/s ratio | p99 ratio | CPU ratio | RSS ratio |")
        w("|---|---:|---:|---:|---:|")
        for name in ("tollgate", "direct"):
            if name in data:
                d = data[name]
                w(
                    f"| {labels[name]} | {fmt_ratio(d['rps'], base['rps'])} "
                    f"| {fmt_ratio(d['p99_us'], base['p99_us'])} "
                    f"| {fmt_ratio(d['cpu_us_per_req'], base['cpu_us_per_req'])} "
                    f"| {fmt_ratio(d['rss_delta_kb'], base['rss_delta_kb'])} |"
                )
        w("")
    w(
        "¹ direct: wrk talks to the origin itself. Its CPU and RSS columns are the origin "
        "nginx's own (no proxy in the path); its req/s and latency are the ceiling a proxy "
        "can approach on this machine."
    )
    w("")
    w(
        "CPU busy: share of one core the server used during the run. Well below 100% means "
        "the load side (wrk + origin) was the limit, or other processes took the proxy core "
        "(see the per-round table), so req/s understates the differences; CPU µs/req still "
        "compares the proxies' cost."
    )
    w("")

    # Per-round detail, to judge noise; warnings for anything that invalidates a number.
    warnings = []
    w("<details><summary>Per-round results</summary>")
    w("")
    w(
        "| Contender | round | req/s | p50 | p99 | CPU µs/req | CPU busy "
        "| other load on proxy core | requests | errors |"
    )
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, d in data.items():
        for x in d["rounds"]:
            errs = x["socket_errors"] + x["non_2xx"]
            w(
                f"| {name} | {x['round']} | {fmt_num(x['rps'])} | {fmt_lat(x['p50_us'])} "
                f"| {fmt_lat(x['p99_us'])} | {fmt_num(x['cpu_us_per_req'], 1)} "
                f"| {fmt_num(x['cpu_busy_pct'])}% | {fmt_num(x['other_load_pct'])}% "
                f"| {x['requests']:,} | {errs} |"
            )
            if name != "direct" and (x["other_load_pct"] or 0) > 10:
                warnings.append(
                    f"{name} round {x['round']}: other processes used "
                    f"{x['other_load_pct']:.0f}% of the proxy core (machine not idle)"
                )
            if errs:
                warnings.append(
                    f"{name} round {x['round']}: {x['socket_errors']} socket errors, "
                    f"{x['non_2xx']} non-2xx responses"
                )
        mem = d["mem"]
        if mem and (mem["conns_failed"] or mem["conns_closed"]):
            warnings.append(
                f"{name} memory test: {mem['conns_failed']} connections failed "
                f"({mem['first_error']}), {mem['conns_closed']} closed by the server"
            )
    w("")
    w("</details>")
    if warnings:
        w("")
        w("**Warnings** (the affected numbers are not comparable):")
        w("")
        out.extend(f"- {x}" for x in warnings)

    text = "\n".join(out) + "\n"
    results.mkdir(parents=True, exist_ok=True)
    (results / "latest.md").write_text(text)
    (results / f"{meta['stamp']}.md").write_text(text)
    (results / "latest.json").write_text(json.dumps({"meta": meta, "results": data}, indent=2))
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
