#!/usr/bin/env python3
"""Atomic read-modify-write instructions per proxied request, from a callgrind profile.

    VG_ARGS=--dump-instr=yes bench/callgrind.sh                  # Tollgate
    python3 bench/atomics.py
    VG_ARGS=--dump-instr=yes CONTENDER=nginx bench/callgrind.sh  # nginx, to compare
    python3 bench/atomics.py

An atomic read-modify-write (a `lock`-prefixed instruction, or `xchg` with memory) costs tens
of cycles and orders the core's memory traffic even when no other core shares the line:
reference counts (`Arc`, `Bytes`), wakers, a multi-threaded glibc's cancellation points.
callgrind counts instructions alike, so these do not stand out in its figures; here every
executed instruction of the profile (exclusive cost, per address) is matched with the
disassembly (`objdump -d`) of its object, and the atomic ones are summed and listed by
function. Deterministic like the profile itself.

Arguments: [PROFILE [REQUESTS]], by default the newest bench/work-callgrind/callgrind.out.*.*
and the request count of bench/work-callgrind/wrk.txt.
"""

import collections
import glob
import os
import re
import subprocess
import sys

WORK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "work-callgrind")


def exclusive_costs(path):
    """Instructions executed at each (object, address): the first event of each cost line,
    skipping the inclusive cost lines that follow `calls=`."""
    costs = collections.Counter()
    names = {}
    obj = None
    last = 0
    after_call = False
    positions = None
    with open(path) as f:
        for line in f:
            if line.startswith("positions:"):
                positions = line.split()[1:]
                if positions[0] != "instr":
                    sys.exit("the profile has no instruction addresses: "
                             "run callgrind.sh with VG_ARGS=--dump-instr=yes")
                continue
            if line.startswith("ob="):
                m = re.match(r"ob=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
                if m.group(2):
                    names[m.group(1)] = m.group(2)
                obj = names[m.group(1)]
                continue
            if line.startswith("calls="):
                after_call = True
                continue
            if not line or line[0] not in "0123456789+-*":
                continue
            fields = line.split()
            a = fields[0]
            if a.startswith("0x"):
                addr = int(a, 16)
            elif a[0] in "+-":
                step = int(a[1:], 16) if a[1:].startswith("0x") else int(a[1:])
                addr = last + step if a[0] == "+" else last - step
            elif a == "*":
                addr = last
            else:
                continue
            last = addr
            if after_call:
                after_call = False
                continue
            if len(fields) > len(positions):
                costs[(obj, addr)] += int(fields[len(positions)])
    if positions is None:
        sys.exit(f"{path} is not a callgrind profile")
    return costs


def atomic_instructions(obj):
    """Address -> (function, instruction) of every atomic read-modify-write in `obj`."""
    out = subprocess.run(
        ["objdump", "-d", "-C", "--no-show-raw-insn", obj], capture_output=True, text=True, check=True
    ).stdout
    found = {}
    function = None
    for line in out.splitlines():
        m = re.match(r"^([0-9a-f]+) <(.*)>:", line)
        if m:
            function = m.group(2)
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+(.*)$", line)
        if m and (m.group(2).startswith("lock ") or (m.group(2).startswith("xchg") and "(" in m.group(2))):
            found[int(m.group(1), 16)] = (function, " ".join(m.group(2).split()))
    return found


def main():
    profile = sys.argv[1] if len(sys.argv) > 1 else None
    if profile is None:
        dumps = sorted(glob.glob(os.path.join(WORK, "callgrind.out.*.*")), key=os.path.getmtime)
        if not dumps:
            sys.exit(f"no profile in {WORK}: run bench/callgrind.sh with VG_ARGS=--dump-instr=yes")
        profile = dumps[-1]
    if len(sys.argv) > 2:
        requests = int(sys.argv[2])
    else:
        with open(os.path.join(WORK, "wrk.txt")) as f:
            requests = int(re.search(r"(\d+) requests in", f.read()).group(1))
    costs = exclusive_costs(profile)
    by_function = collections.Counter()
    total = 0
    for obj in sorted({o for o, _ in costs if o}):
        if not os.path.exists(obj):
            continue
        # Addresses in the profile are the objects' own (valgrind reports them unrelocated
        # for these objects); an object whose addresses match none is reported as such.
        atomic = atomic_instructions(obj)
        hits = 0
        for (o, addr), n in costs.items():
            if o == obj and addr in atomic:
                hits += 1
                total += n
                function, instruction = atomic[addr]
                by_function[(os.path.basename(obj), function, instruction)] += n
        print(f"{obj}: {hits} atomic instructions executed", file=sys.stderr)
    print(f"requests {requests}  atomic read-modify-writes per request {total / requests:.1f}")
    for (obj, function, instruction), n in by_function.most_common(int(os.environ.get("TOP", "40"))):
        print(f"{n / requests:7.2f}  {obj}  {function[:100]}  {instruction}")


if __name__ == "__main__":
    main()
