#!/usr/bin/env python3
"""Memory cost of idle keep-alive connections (stdlib only).

Opens N connections to 127.0.0.1:PORT, sends one keep-alive `GET /` on each, reads the
response, keeps every connection open, and reports how much the server's RSS grew: the sum
of VmRSS over the process tree rooted at --pid (nginx master + workers, or Tollgate).

Prints one JSON object: conns_ok, conns_failed, conns_closed, rss_before_kb, rss_after_kb,
rss_delta_kb, kb_per_conn.
"""

import argparse
import asyncio
import json
import os
import resource
import sys

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: tollgate-bench\r\n\r\n"


def tree_pids(root):
    """The root pid plus all of its descendants, from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


def rss_kb(root):
    """Sum of VmRSS (kB) over the process tree."""
    total = 0
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


async def read_response(reader):
    """Read one HTTP/1.1 response (Content-Length or chunked); return the status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif "chunked" in headers.get("transfer-encoding", ""):
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def open_one(port, sem, timeout):
    async with sem:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), timeout
        )
        writer.write(REQUEST)
        await writer.drain()
        status = await asyncio.wait_for(read_response(reader), timeout)
        if status != 200:
            writer.close()
            raise RuntimeError(f"status {status}")
        return reader, writer


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="root pid of the server under test")
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--parallel", type=int, default=100, help="connections opened at once")
    ap.add_argument(
        "--settle",
        type=float,
        default=3.0,
        help="seconds to wait before reading RSS: steady state (Tollgate parks idle "
        "connections after 50 ms and returns freed heap to the system once a second)",
    )
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()

    # Each connection is a file descriptor: raise the soft limit as far as allowed.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(65536, hard) if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    before = rss_kb(args.pid)
    sem = asyncio.Semaphore(args.parallel)
    results = await asyncio.gather(
        *(open_one(args.port, sem, args.timeout) for _ in range(args.conns)),
        return_exceptions=True,
    )
    held = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    await asyncio.sleep(args.settle)
    after = rss_kb(args.pid)
    # A connection the server closed while we held it shows up as EOF on our side.
    closed = sum(1 for reader, _ in held if reader.at_eof())

    for _, writer in held:
        writer.close()
    out = {
        "conns_requested": args.conns,
        "conns_ok": len(held),
        "conns_failed": len(errors),
        "conns_closed": closed,
        "first_error": repr(errors[0]) if errors else None,
        "rss_before_kb": before,
        "rss_after_kb": after,
        "rss_delta_kb": after - before,
        "kb_per_conn": round((after - before) / len(held), 2) if held else None,
    }
    print(json.dumps(out))
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
