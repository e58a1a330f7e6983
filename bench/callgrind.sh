#!/usr/bin/env bash
# User-space instructions per proxied request, counted by valgrind's callgrind: repeatable to
# a fraction of a percent however loaded the machine is (wall-clock figures are not).
#
#   bench/callgrind.sh                     Tollgate at target/release/tollgate
#   TOLLGATE_BIN=/path/to/tollgate bench/callgrind.sh
#   CONTENDER=nginx bench/callgrind.sh     the nginx reverse proxy of bench/run.sh, for the
#                                          figure to compare with
#   DURATION=10 CONNS=50 bench/callgrind.sh
#   VG_ARGS=--cache-sim=yes bench/callgrind.sh
#                                          also simulated cache misses per request (D1 and
#                                          last-level, reads and writes): memory traffic that
#                                          instruction counts do not show
#
# Starts the benchmark origin (nginx) and Tollgate under callgrind with instrumentation off,
# warms up (connections, pools, allocator), then counts only the measured load: the counters
# are zeroed, wrk sends keep-alive requests, the counters are dumped. Prints Ir/request and
# leaves the profile in bench/work-callgrind/callgrind.out.* (open with callgrind_annotate).
set -euo pipefail
ORIG_PWD=$PWD
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${DURATION:-10}     # seconds of measured load (under valgrind: ~20-40k requests)
CONNS=${CONNS:-50}           # wrk connections, as in bench/run.sh
ORIGIN_PORT=${ORIGIN_PORT:-19201}
TOLLGATE_PORT=${TOLLGATE_PORT:-19203}
TOLLGATE_ADMIN_PORT=${TOLLGATE_ADMIN_PORT:-19204}
NGINX_PORT=${NGINX_PORT:-19202}
CONTENDER=${CONTENDER:-tollgate}
if [[ -n ${TOLLGATE_BIN:-} && $TOLLGATE_BIN != /* ]]; then
    TOLLGATE_BIN=$ORIG_PWD/$TOLLGATE_BIN
fi
TOLLGATE_BIN=${TOLLGATE_BIN:-$PWD/target/release/tollgate}
WORK=bench/work-callgrind
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

die() { printf '[callgrind] ERROR: %s\n' "$*" >&2; exit 1; }
log() { printf '[callgrind] %s\n' "$*" >&2; }
for tool in valgrind callgrind_control wrk curl; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
case $CONTENDER in
tollgate) [[ -x $TOLLGATE_BIN ]] || die "no binary at $TOLLGATE_BIN" ;;
nginx) ;;
*) die "CONTENDER must be tollgate or nginx, not '$CONTENDER'" ;;
esac

rm -rf "$WORK"
mkdir -p "$WORK/origin"
echo '*' >"$WORK/.gitignore"
render() {
    sed -e "s|@PREFIX@|$3|g" -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g" \
        -e "s|@TOLLGATE_PORT@|$TOLLGATE_PORT|g" -e "s|@TOLLGATE_ADMIN_PORT@|$TOLLGATE_ADMIN_PORT|g" \
        -e "s|@NGINX_PORT@|$NGINX_PORT|g" "$1" >"$2"
}

# shellcheck source=scripts/lib/children.sh
source scripts/lib/children.sh

render bench/nginx-origin.conf.tmpl "$WORK/origin/nginx.conf" "$PWD/$WORK/origin"
"$NGINX" -p "$PWD/$WORK/origin/" -c "$PWD/$WORK/origin/nginx.conf" -e "$PWD/$WORK/origin/error.log" \
    >"$WORK/origin.log" 2>&1 &
PIDS+=($!)
if [[ $CONTENDER == nginx ]]; then
    # One process (no master), so that callgrind_control reaches the worker itself.
    mkdir -p "$WORK/proxy"
    render bench/nginx-proxy.conf.tmpl "$WORK/proxy/nginx.conf" "$PWD/$WORK/proxy"
    sed -i -e 's/^master_process on;/master_process off;/' "$WORK/proxy/nginx.conf"
    PORT=$NGINX_PORT
    valgrind --tool=callgrind --instr-atstart=no ${VG_ARGS:-} --callgrind-out-file="$PWD/$WORK/callgrind.out.%p" \
        "$NGINX" -p "$PWD/$WORK/proxy/" -c "$PWD/$WORK/proxy/nginx.conf" \
        -e "$PWD/$WORK/proxy/error.log" >"$WORK/contender.log" 2>&1 &
else
    render bench/tollgate.yaml.tmpl "$WORK/tollgate.yaml" ""
    PORT=$TOLLGATE_PORT
    valgrind --tool=callgrind --instr-atstart=no ${VG_ARGS:-} --callgrind-out-file="$PWD/$WORK/callgrind.out.%p" \
        "$TOLLGATE_BIN" run -c "$WORK/tollgate.yaml" >"$WORK/contender.log" 2>&1 &
fi
VG=$!
PIDS+=("$VG")

for ((i = 0; i < 300; i++)); do
    curl -fsS --max-time 2 "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break
    kill -0 "$VG" 2>/dev/null || die "$CONTENDER exited (see $WORK/contender.log)"
    sleep 0.2
done
body=$(curl -sS --max-time 5 "http://127.0.0.1:$PORT/")
[[ $body == "hello world" ]] || die "$CONTENDER answered '$body'"

callgrind_control -i on "$VG" >/dev/null 2>&1
log "warm-up"
wrk -t1 -c"$CONNS" -d3s "http://127.0.0.1:$PORT/" >/dev/null
callgrind_control -z "$VG" >/dev/null 2>&1
log "measuring ${DURATION}s with $CONNS connections"
wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$PORT/" >"$WORK/wrk.txt"
callgrind_control -d "$VG" >/dev/null 2>&1
callgrind_control -i off "$VG" >/dev/null 2>&1

requests=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
errors=$(grep -E 'Non-2xx|Socket errors' "$WORK/wrk.txt" || true)
[[ -z $errors ]] || log "wrk reported: $errors"
sleep 1
dump=$(ls -t "$WORK"/callgrind.out.*.* 2>/dev/null | head -n1)
[[ -n $dump ]] || die "no callgrind dump in $WORK"
ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
printf 'requests %s  Ir %s  Ir/request %s\n' "$requests" "$ir" "$((ir / requests))"
if [[ -n ${VG_ARGS:-} ]]; then
    # Every event the run recorded, per request.
    awk -v n="$requests" '/^events:/ {for (i = 2; i <= NF; i++) name[i] = $i}
        /^(summary|totals):/ {for (i = 2; i <= NF; i++) printf "%s/request %.1f  ", name[i], $i / n; print ""; exit}' "$dump"
fi
log "profile: $dump (callgrind_annotate $dump | head -60)"
