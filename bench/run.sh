#!/usr/bin/env bash
# Tollgate benchmark: direct-to-origin vs nginx reverse proxy vs Tollgate, one machine, one run.
# Measures req/s, p50/p99 latency (wrk), CPU time per request and RSS growth at 1,000 held
# keep-alive connections. Everything listens on 127.0.0.1. See bench/README.md.
#
#   bench/run.sh                          full run (3 rounds x 10 s per contender)
#   ROUNDS=1 DURATION=3 bench/run.sh      quick check
#   SKIP_TOLLGATE=1 bench/run.sh          direct + nginx only
set -euo pipefail
ORIG_PWD=$PWD
cd "$(dirname "${BASH_SOURCE[0]}")/.." # repo root

# --- settings (environment overrides) -------------------------------------------------------
ROUNDS=${ROUNDS:-3}             # rounds; each round runs every contender once
DURATION=${DURATION:-10}        # seconds per wrk run ("10" or "10s")
DURATION=${DURATION%s}
CONNS=${CONNS:-50}              # wrk connections
THREADS=${THREADS:-1}           # wrk threads
WARMUP=${WARMUP:-2}             # seconds of unmeasured load per contender before round 1
HOLD_CONNS=${HOLD_CONNS:-1000}  # idle keep-alive connections for the memory test
ORIGIN_PORT=${ORIGIN_PORT:-19001}
NGINX_PORT=${NGINX_PORT:-19002}
TOLLGATE_PORT=${TOLLGATE_PORT:-19003}
TOLLGATE_ADMIN_PORT=${TOLLGATE_ADMIN_PORT:-19004}
PROXY_CPU=${PROXY_CPU:-0}       # core for the proxy under test
LOAD_CPU=${LOAD_CPU:-1}         # core for the origin, wrk and the memory-test client
SKIP_TOLLGATE=${SKIP_TOLLGATE:-0}
if [[ -n ${TOLLGATE_BIN:-} && $TOLLGATE_BIN != /* ]]; then
    TOLLGATE_BIN=$ORIG_PWD/$TOLLGATE_BIN # relative to where the user ran us
fi
TOLLGATE_BIN=${TOLLGATE_BIN:-$PWD/target/release/tollgate}

WORK=bench/work   # recreated on every run (configs, nginx prefixes, logs, raw results)
RAW=$WORK/raw
RESULTS=bench/results

log()  { printf '[bench] %s\n' "$*"; }
warn() { printf '[bench] WARNING: %s\n' "$*" >&2; }
die()  { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

for v in ROUNDS DURATION CONNS THREADS WARMUP HOLD_CONNS ORIGIN_PORT NGINX_PORT TOLLGATE_PORT \
    TOLLGATE_ADMIN_PORT PROXY_CPU LOAD_CPU; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
((ROUNDS >= 1 && DURATION >= 1 && CONNS >= THREADS && THREADS >= 1)) ||
    die "need ROUNDS >= 1, DURATION >= 1, THREADS >= 1 and CONNS >= THREADS"

# --- prerequisites ------------------------------------------------------------------------
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $NGINX ]] || die "nginx is not installed; run scripts/setup.sh (or apt-get install nginx-light)"
have wrk || die "wrk is not installed; run scripts/setup.sh (or apt-get install wrk)"
for tool in curl python3 pgrep getconf timeout; do
    have "$tool" || die "$tool is not installed; run scripts/setup.sh"
done

SKIP_REASON=""
if [[ $SKIP_TOLLGATE == 1 ]]; then
    SKIP_REASON="SKIP_TOLLGATE=1"
elif [[ ! -x $TOLLGATE_BIN ]]; then
    SKIP_REASON="binary not found at $TOLLGATE_BIN (build it: cargo build --release --bins)"
fi
[[ -z $SKIP_REASON ]] || warn "Tollgate skipped: $SKIP_REASON"

# Proxy on one core, origin + load generator on another, so they don't steal each other's CPU.
CORES=$(nproc)
if ((CORES >= 2)) && have taskset; then
    PIN_PROXY=(taskset -c "$PROXY_CPU")
    PIN_LOAD=(taskset -c "$LOAD_CPU")
    PINNING="proxy pinned to core $PROXY_CPU, origin + wrk to core $LOAD_CPU"
    PINNED=1
else
    warn "fewer than 2 cores or no taskset: running without CPU pinning"
    PIN_PROXY=()
    PIN_LOAD=()
    PINNING="no CPU pinning"
    PINNED=0
fi

# Every held connection is a file descriptor (inherited by the servers started below).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
CLK_TCK=$(getconf CLK_TCK)

# --- process helpers ------------------------------------------------------------------------
declare -A PID=() # name -> root pid of a server we started

tree_pids() { # a pid and all its descendants (nginx: master + workers)
    local c
    echo "$1"
    for c in $(pgrep -P "$1" || true); do tree_pids "$c"; done
}

stop_tree() { # TERM the root, give it 5 s, then KILL whatever of the tree is left
    local root=$1 i
    local -a pids
    mapfile -t pids < <(tree_pids "$root")
    kill -TERM "$root" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "${pids[@]}" 2>/dev/null || return 0 # kill -0 fails once none is left
        sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
}

CHILD="" # the running load/measurement command, if any

cleanup() {
    local name
    [[ -z $CHILD ]] || stop_tree "$CHILD"
    for name in "${!PID[@]}"; do stop_tree "${PID[$name]}"; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_bg() { # start_bg NAME CMD...: run in the background, log to $WORK/NAME.log
    local name=$1
    shift
    "$@" >"$WORK/$name.log" 2>&1 &
    PID[$name]=$!
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # wait_port NAME PORT: up to 15 s for the server to accept connections
    local name=$1 port=$2 i
    for ((i = 0; i < 150; i++)); do
        if ! kill -0 "${PID[$name]}" 2>/dev/null; then
            local f
            for f in "$WORK/$name.log" "$WORK/$name/error.log"; do
                [[ -s $f ]] && { echo "--- $f" && tail -n 20 "$f"; } >&2
            done
            die "$name exited during startup (logs above, in $WORK/)"
        fi
        port_open "$port" && return 0
        sleep 0.1
    done
    die "$name did not accept connections on 127.0.0.1:$port within 15 s"
}

check_body() { # the contender must really proxy to the origin before we time it
    local name=$1 port=$2 body
    body=$(curl -sS --max-time 5 "http://127.0.0.1:$port/" 2>&1) || true
    body=${body//$'\n'/ }
    [[ $body == "hello world" ]] ||
        die "$name on port $port answered '${body:0:200}' instead of 'hello world' (see $WORK/)"
}

cpu_ticks() { # utime + stime (clock ticks) summed over a process tree
    local total=0 pid stat f
    for pid in $(tree_pids "$1"); do
        stat=$(<"/proc/$pid/stat") || continue
        read -ra f <<<"${stat##*') '}" # fields from 3 (state) on; utime = 14, stime = 15
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}

bounded() { # bounded SECONDS CMD...: run CMD under a hard time limit. It runs in the
    # background and we `wait`, so Ctrl-C / TERM reach our trap at once instead of after CMD.
    local rc=0
    timeout -k 5 "$@" &
    CHILD=$!
    wait "$CHILD" || rc=$?
    CHILD=""
    return "$rc"
}

core_ticks() { # busy ticks of the proxy core, from /proc/stat (0 without pinning)
    local name user nice system irq softirq steal
    ((PINNED)) || { echo 0; return; }
    # fields: cpuN user nice system idle iowait irq softirq steal ...
    while read -r name user nice system _ _ irq softirq steal _; do
        if [[ $name == "cpu$PROXY_CPU" ]]; then
            echo $((user + nice + system + irq + softirq + steal))
            return
        fi
    done </proc/stat
    echo 0
}

run_wrk() { # run_wrk PORT SECONDS: wrk pinned to the load core
    bounded $(($2 + 30)) "${PIN_LOAD[@]}" \
        wrk -t"$THREADS" -c"$CONNS" -d"$2s" --latency "http://127.0.0.1:$1/"
}

render() { # render TEMPLATE OUT PREFIX: fill in @PLACEHOLDERS@
    sed -e "s|@PREFIX@|$3|g" -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g" -e "s|@NGINX_PORT@|$NGINX_PORT|g" \
        -e "s|@TOLLGATE_PORT@|$TOLLGATE_PORT|g" -e "s|@TOLLGATE_ADMIN_PORT@|$TOLLGATE_ADMIN_PORT|g" \
        "$1" >"$2"
}

start_nginx() { # start_nginx NAME TEMPLATE PIN...: nginx with its own prefix dir under $WORK
    local name=$1 tmpl=$2 prefix="$PWD/$WORK/$1"
    shift 2
    mkdir -p "$prefix"
    render "$tmpl" "$prefix/nginx.conf" "$prefix"
    start_bg "$name" "$@" "$NGINX" -p "$prefix/" -c "$prefix/nginx.conf" -e "$prefix/error.log"
}

# --- start the servers --------------------------------------------------------------------
PORTS=("$ORIGIN_PORT" "$NGINX_PORT")
[[ -n $SKIP_REASON ]] || PORTS+=("$TOLLGATE_PORT" "$TOLLGATE_ADMIN_PORT")
for port in "${PORTS[@]}"; do
    ! port_open "$port" || die "port $port is already in use (a previous run still alive?)"
done

rm -rf "$WORK"
mkdir -p "$RAW" "$RESULTS"
echo '*' >"$WORK/.gitignore" # keep generated files out of git

CONTENDERS=(direct nginx)
declare -A PORT_OF=([direct]=$ORIGIN_PORT [nginx]=$NGINX_PORT [tollgate]=$TOLLGATE_PORT)

log "starting origin nginx on 127.0.0.1:$ORIGIN_PORT"
start_nginx origin bench/nginx-origin.conf.tmpl "${PIN_LOAD[@]}"
log "starting nginx proxy on 127.0.0.1:$NGINX_PORT"
start_nginx nginx bench/nginx-proxy.conf.tmpl "${PIN_PROXY[@]}"
if [[ -z $SKIP_REASON ]]; then
    log "starting Tollgate on 127.0.0.1:$TOLLGATE_PORT ($TOLLGATE_BIN)"
    render bench/tollgate.yaml.tmpl "$WORK/tollgate.yaml" ""
    start_bg tollgate "${PIN_PROXY[@]}" "$TOLLGATE_BIN" run -c "$WORK/tollgate.yaml"
    CONTENDERS+=(tollgate)
fi

wait_port origin "$ORIGIN_PORT"
wait_port nginx "$NGINX_PORT"
[[ -n $SKIP_REASON ]] || wait_port tollgate "$TOLLGATE_PORT"

for c in "${CONTENDERS[@]}"; do check_body "$c" "${PORT_OF[$c]}"; done

# Whose CPU and RSS we measure; "direct" has no proxy, so it is the origin's own.
pid_of() { if [[ $1 == direct ]]; then echo "${PID[origin]}"; else echo "${PID[$1]}"; fi; }

N=${#CONTENDERS[@]}
log "contenders: ${CONTENDERS[*]}; $PINNING"
log "expected run time: about $((N * (WARMUP + ROUNDS * DURATION) + N * 5))s"

# --- throughput, latency, CPU ---------------------------------------------------------------
if ((WARMUP > 0)); then
    for c in "${CONTENDERS[@]}"; do
        log "warm-up: $c (${WARMUP}s)"
        run_wrk "${PORT_OF[$c]}" "$WARMUP" >/dev/null || die "wrk against $c failed"
    done
fi

for ((r = 1; r <= ROUNDS; r++)); do
    for ((i = 0; i < N; i++)); do
        c=${CONTENDERS[$(((i + r - 1) % N))]} # rotate the starting contender each round
        pid=$(pid_of "$c")
        before=$(cpu_ticks "$pid") core_before=$(core_ticks)
        run_wrk "${PORT_OF[$c]}" "$DURATION" >"$RAW/$c.r$r.wrk" || die "wrk against $c failed"
        after=$(cpu_ticks "$pid") core_after=$(core_ticks)
        # server ticks before/after, then the proxy core's busy ticks before/after
        echo "$before $after $core_before $core_after" >"$RAW/$c.r$r.cpu"
        log "round $r/$ROUNDS $(printf '%-8s' "$c") $(grep -h '^Requests/sec' "$RAW/$c.r$r.wrk" || echo '(no result)')"
    done
done

# --- memory at HOLD_CONNS idle keep-alive connections ----------------------------------------
for c in "${CONTENDERS[@]}"; do
    log "memory: $c with $HOLD_CONNS held connections"
    bounded 120 "${PIN_LOAD[@]}" python3 bench/hold_conns.py \
        --port "${PORT_OF[$c]}" --pid "$(pid_of "$c")" --conns "$HOLD_CONNS" >"$RAW/$c.mem.json" ||
        warn "memory test for $c failed: $(cat "$RAW/$c.mem.json")"
    sleep 1 # let the server drop the closed connections before the next contender
done

# --- report ---------------------------------------------------------------------------------
git_rev=$(git rev-parse --short HEAD 2>/dev/null || true)
if [[ -n $git_rev ]] && [[ -n $(git status --porcelain 2>/dev/null | head -1) ]]; then
    git_rev="$git_rev (dirty)"
fi
tollgate_version="skipped"
[[ -n $SKIP_REASON ]] || tollgate_version=$("$TOLLGATE_BIN" version 2>/dev/null | head -n1 || true)

M_CONTENDERS="${CONTENDERS[*]}" M_SKIP="$SKIP_REASON" M_PINNING="$PINNING" M_GIT="$git_rev" \
    M_NGINX=$("$NGINX" -v 2>&1 | head -n1) M_WRK=$(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2 || true) \
    M_TOLLGATE="${tollgate_version:-unknown}" M_CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 || true) \
    python3 - "$WORK/meta.json" <<EOF
import json, os, sys, time
e = os.environ
meta = {
    "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "stamp": time.strftime("%Y%m%d-%H%M%S"),
    "contenders": e["M_CONTENDERS"].split(), "rounds": $ROUNDS, "duration": $DURATION,
    "conns": $CONNS, "threads": $THREADS, "hold_conns": $HOLD_CONNS, "clk_tck": $CLK_TCK,
    "cores": $CORES, "origin_port": $ORIGIN_PORT, "pinning": e["M_PINNING"], "pinned": $PINNED,
    "cpu_model": e["M_CPU"].strip() or "unknown CPU", "git": e["M_GIT"],
    "nginx_version": e["M_NGINX"], "wrk_version": e["M_WRK"], "tollgate_version": e["M_TOLLGATE"],
    "skipped": {"tollgate": e["M_SKIP"]} if e["M_SKIP"] else {},
}
json.dump(meta, open(sys.argv[1], "w"), indent=2)
EOF

echo
python3 bench/report.py "$WORK" "$RESULTS"
log "report written to $RESULTS/latest.md (raw data and logs in $WORK/)"
