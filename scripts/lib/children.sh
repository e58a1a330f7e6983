# Background processes a script starts, stopped with SIGTERM when the script exits, however it
# exits. Source this file, then record each child: `some_command & PIDS+=($!)`.
# (Used by bench/callgrind.sh and scripts/build-pgo.sh.)
PIDS=()
stop_children() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop_children EXIT
