#!/usr/bin/env bash
# Builds the release binary with profile-guided optimization (PGO): the binary to ship.
#
#   scripts/build-pgo.sh            -> target/pgo/release/tollgate
#
# 1. builds an instrumented release binary (target/pgo-gen/),
# 2. runs it as a gateway in front of a local nginx origin and sends it representative
#    traffic (scripts/pgo/train.yaml.tmpl: HTTP/1.1 and HTTP/2, plain and TLS, request
#    bodies, templates, rewrites, mocks and the common policies; the plain proxy path of
#    bench/run.sh weighted most), which writes execution counts,
# 3. merges them with llvm-profdata (rustup component llvm-tools, added when missing),
# 4. builds the release binary again with the profile (target/pgo/).
#
# The compiler then lays out hot code together and inlines along the paths that run: on the
# benchmark's proxy path, 16 % fewer instructions and half the instruction-cache misses per
# request of `cargo build --release` (docs/benchmarks.md, "Profile-guided build"). Behaviour
# is the same: only code placement and inlining change. Two fat-LTO builds: ~20 minutes on
# 2 cores. Needs nginx, wrk, curl and openssl (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[pgo] %s\n' "$*" >&2; }
die() { printf '[pgo] ERROR: %s\n' "$*" >&2; exit 1; }

for tool in cargo rustc nginx wrk curl openssl; do
    command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] ||
        die "$tool is not installed (scripts/setup.sh installs what is missing)"
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# llvm-profdata of the same LLVM as rustc: the rustup component llvm-tools.
sysroot=$(rustc --print sysroot)
host=$(rustc -vV | awk '/^host:/ {print $2}')
PROFDATA=$sysroot/lib/rustlib/$host/bin/llvm-profdata
if [[ ! -x $PROFDATA ]]; then
    command -v rustup >/dev/null || die "llvm-profdata not found at $PROFDATA and no rustup to add llvm-tools"
    log "adding the rustup component llvm-tools (llvm-profdata)"
    rustup component add llvm-tools
fi
[[ -x $PROFDATA ]] || die "llvm-profdata not found at $PROFDATA"

WORK=target/pgo-work
PROFILES=$PWD/$WORK/profiles
rm -rf "$WORK"
mkdir -p "$PROFILES" "$WORK/origin/client_body"

log "1/4 instrumented build (target/pgo-gen)"
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$PROFILES" \
    cargo build --release --locked --target-dir target/pgo-gen -p tollgate

log "2/4 training run"
ORIGIN_PORT=${ORIGIN_PORT:-19501}
PROXY_PORT=${PROXY_PORT:-19502}
TLS_PORT=${TLS_PORT:-19503}
ADMIN_PORT=${ADMIN_PORT:-19504}
DIR=$PWD/$WORK
# shellcheck source=scripts/lib/children.sh
source scripts/lib/children.sh

sed -e "s|@PREFIX@|$DIR/origin|g" -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g" \
    bench/nginx-origin.conf.tmpl >"$WORK/origin/nginx.conf"
"$NGINX" -p "$DIR/origin/" -c "$DIR/origin/nginx.conf" -e "$DIR/origin/error.log" &
PIDS+=($!)

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$WORK/tls.key" -out "$WORK/tls.crt" 2>/dev/null
sed -e "s|@DIR@|$DIR|g" -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g" -e "s|@PROXY_PORT@|$PROXY_PORT|g" \
    -e "s|@TLS_PORT@|$TLS_PORT|g" -e "s|@ADMIN_PORT@|$ADMIN_PORT|g" \
    scripts/pgo/train.yaml.tmpl >"$WORK/train.yaml"
GEN=target/pgo-gen/release/tollgate
"$GEN" validate -c "$WORK/train.yaml" >/dev/null || die "the training configuration is invalid"
LLVM_PROFILE_FILE="$PROFILES/tollgate-%p-%m.profraw" "$GEN" run -c "$WORK/train.yaml" \
    --log-level warn >"$WORK/tollgate.log" 2>&1 &
GW=$!
PIDS+=("$GW")
for ((i = 0; i < 30; i++)); do
    curl -fsS -o /dev/null "http://127.0.0.1:$PROXY_PORT/" 2>/dev/null && break
    kill -0 "$GW" 2>/dev/null || die "the instrumented gateway exited (see $WORK/tollgate.log)"
    sleep 0.1
done
P=http://127.0.0.1:$PROXY_PORT
T=https://localhost:$TLS_PORT
run_wrk() { wrk "$@" | awk '/Requests\/sec/ {print "[pgo]   " $2 " req/s"}' >&2; }
# Every path runs (a path never run is compiled as cold code), and the plain HTTP/1.1
# proxying that most production traffic is makes up most of the profile: with equal weights
# the proxy path ran 5 % more instructions and had 2.7x the instruction-cache misses.
log "  plain HTTP/1.1 proxying (the benchmark's path)"
run_wrk -t1 -c50 -d15s "$P/"
log "  templates, rewrites, CORS, request bodies, mocks"
run_wrk -t1 -c10 -d1s -H 'Origin: https://app.example' "$P/shop/items/42?fields=name"
run_wrk -t1 -c10 -d1s -s scripts/pgo/post.lua "$P/shop/items"
run_wrk -t1 -c10 -d1s "$P/shop/echo?x=1"
log "  TLS (HTTP/1.1)"
run_wrk -t1 -c10 -d1s "https://127.0.0.1:$TLS_PORT/"
log "  HTTP/2: h2c prior knowledge and TLS with ALPN, a request body"
# One request per curl: curl 7.88 fails a second request on a reused HTTP/2 connection
# ("Error in the HTTP2 framing layer"), whatever the server (nginx too). A failed request
# only leaves a sample out of the profile, so it is counted, not fatal.
h2_failed=0
for ((i = 0; i < 30; i++)); do
    curl -fsS --http2-prior-knowledge -o /dev/null "$P/shop/items/$i" || h2_failed=$((h2_failed + 1))
    curl -fsS --http2 -k --resolve "localhost:$TLS_PORT:127.0.0.1" -o /dev/null "$T/shop/items/$i" ||
        h2_failed=$((h2_failed + 1))
done
curl -fsS --http2-prior-knowledge -o /dev/null -X POST -H 'content-type: application/json' \
    -H 'origin: https://app.example' --data '{"sku":"B-2"}' "$P/shop/items" || h2_failed=$((h2_failed + 1))
curl -sS -o /dev/null "$P/shop/nowhere"
((h2_failed == 0)) || log "  WARNING: $h2_failed of 61 HTTP/2 requests failed (see $WORK/tollgate.log)"
kill -TERM "$GW"
wait "$GW" || die "the instrumented gateway did not exit cleanly (see $WORK/tollgate.log)"
ls "$PROFILES"/*.profraw >/dev/null 2>&1 || die "the training run wrote no profile"

log "3/4 merging the profile"
"$PROFDATA" merge -o "$DIR/tollgate.profdata" "$PROFILES"

log "4/4 optimized build (target/pgo)"
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$DIR/tollgate.profdata" \
    cargo build --release --locked --target-dir target/pgo -p tollgate
log "done: target/pgo/release/tollgate"
