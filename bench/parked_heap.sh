#!/usr/bin/env bash
# Live heap per parked idle keep-alive connection (glibc's own count of bytes in use, read
# with gdb + malloc_stats), which, unlike RSS growth, does not depend on how many connections
# happened to be active at once or on what the allocator kept from earlier peaks.
#
#   bench/parked_heap.sh                      target/release/tollgate
#   TOLLGATE_BIN=/tmp/tollgate-old bench/parked_heap.sh
#
# Warms up with 150 connections (so the upstream pool is grown), holds 1,000 idle keep-alive
# connections with bench/hold_conns.py until they are parked, reads the bytes in use, closes
# them, reads again: (held - closed) / 1000 is what one parked connection costs.
set -euo pipefail
ORIG_PWD=$PWD
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ORIGIN_PORT=${ORIGIN_PORT:-19211}
TOLLGATE_PORT=${TOLLGATE_PORT:-19213}
TOLLGATE_ADMIN_PORT=${TOLLGATE_ADMIN_PORT:-19214}
CONNS=${CONNS:-1000}
if [[ -n ${TOLLGATE_BIN:-} && $TOLLGATE_BIN != /* ]]; then TOLLGATE_BIN=$ORIG_PWD/$TOLLGATE_BIN; fi
TOLLGATE_BIN=${TOLLGATE_BIN:-$PWD/target/release/tollgate}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
WORK=$PWD/bench/work-heap
for tool in gdb wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

ORIGIN="" TG=""
trap '[[ -z $ORIGIN ]] || kill "$ORIGIN" 2>/dev/null; [[ -z $TG ]] || kill "$TG" 2>/dev/null; wait 2>/dev/null; true' EXIT
rm -rf "$WORK"
mkdir -p "$WORK/origin"
echo '*' >"$WORK/.gitignore"
render() {
    sed -e "s|@PREFIX@|$3|g" -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g" -e "s|@TOLLGATE_PORT@|$TOLLGATE_PORT|g" \
        -e "s|@TOLLGATE_ADMIN_PORT@|$TOLLGATE_ADMIN_PORT|g" "$1" >"$2"
}
render bench/nginx-origin.conf.tmpl "$WORK/origin/nginx.conf" "$WORK/origin"
"$NGINX" -p "$WORK/origin/" -c "$WORK/origin/nginx.conf" -e "$WORK/origin/error.log" &
ORIGIN=$!
render bench/tollgate.yaml.tmpl "$WORK/tollgate.yaml" ""
"$TOLLGATE_BIN" run -c "$WORK/tollgate.yaml" >"$WORK/tollgate.log" 2>&1 &
TG=$!
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$TOLLGATE_PORT/" && break; sleep 0.1; done
wrk -t1 -c150 -d2s "http://127.0.0.1:$TOLLGATE_PORT/" >/dev/null

in_use() { # total "in use bytes" over all arenas, printed by malloc_stats() to Tollgate's stderr
    : >"$WORK/tollgate.log"
    gdb -p "$TG" -batch -ex 'call (void)malloc_stats()' >/dev/null 2>&1
    sleep 0.2
    awk '/Total \(incl. mmap\)/ {t = 1} t && /in use bytes/ {print $NF; exit}' "$WORK/tollgate.log"
}
python3 bench/hold_conns.py --port "$TOLLGATE_PORT" --pid "$TG" --conns "$CONNS" --settle 4 >"$WORK/hold.json" &
HOLD=$!
sleep 3.5 # opened, answered, and parked 50 ms after their request
held=$(in_use)
wait "$HOLD"
sleep 1.5
closed=$(in_use)
echo "in use: $held bytes with $CONNS parked connections, $closed after closing them;" \
    "$(((held - closed) / CONNS)) bytes per parked connection"
