#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer on 127.0.0.1, starting them when they are installed
# but down. Fails with a clear message when a server is not installed at all.
#   Run it:     scripts/services.sh
#   Or source:  . scripts/services.sh && ensure_services

_svc_log() { printf '[services] %s\n' "$*"; }
_svc_err() { printf '[services] ERROR: %s\n' "$*" >&2; }

# _svc_wait NAME SECONDS CMD...: poll CMD every 0.2 s until it succeeds or time runs out.
_svc_wait() {
    local name=$1 secs=$2 i
    shift 2
    for ((i = 0; i < secs * 5; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    _svc_err "$name did not become ready within ${secs}s"
    return 1
}

_pg_ready()    { pg_isready -q -h 127.0.0.1; }
_redis_ready() { [[ $(redis-cli -h 127.0.0.1 ping 2>/dev/null) == PONG ]]; }

ensure_postgres() {
    if command -v pg_isready >/dev/null && _pg_ready; then
        _svc_log "postgresql: up"
        return 0
    fi
    local ver
    ver=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n1)
    if ! command -v pg_ctlcluster >/dev/null || ! command -v pg_isready >/dev/null || [[ -z $ver ]]; then
        _svc_err "PostgreSQL is not installed (need pg_ctlcluster, pg_isready and a cluster in /etc/postgresql)."
        _svc_err "Install it with: apt-get install -y postgresql   (tests expect trust auth and a database 'test')"
        return 1
    fi
    _svc_log "postgresql: starting cluster $ver/main"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start || {
        _svc_err "pg_ctlcluster $ver main start failed (are you root or the postgres user?)"
        return 1
    }
    _svc_wait postgresql 30 _pg_ready && _svc_log "postgresql: up"
}

ensure_redis() {
    if command -v redis-cli >/dev/null && _redis_ready; then
        _svc_log "redis: up"
        return 0
    fi
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        _svc_err "Redis is not installed (need redis-server and redis-cli)."
        _svc_err "Install it with: apt-get install -y redis-server"
        return 1
    fi
    _svc_log "redis: starting redis-server on 127.0.0.1:6379"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log || {
        _svc_err "redis-server failed to start (see /var/log/redis/ci.log)"
        return 1
    }
    _svc_wait redis 30 _redis_ready && _svc_log "redis: up"
}

ensure_services() {
    local rc=0
    ensure_postgres || rc=1
    ensure_redis || rc=1
    return "$rc"
}

# Executed (not sourced): do the work and exit non-zero on failure.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    ensure_services
fi
