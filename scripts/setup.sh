#!/usr/bin/env bash
# Installs what the test suite needs, when missing:
#   - system packages (apt): curl, openssl, wrk, nginx, a C compiler, python3 + venv support
#   - the Rust components rustfmt and clippy (via rustup, if rustup manages the toolchain)
#   - a Python venv at .venv with tests/requirements.txt (rebuilt only when that file changes)
# Idempotent: on a machine that already has everything it only checks and returns.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log()  { printf '[setup] %s\n' "$*"; }
warn() { printf '[setup] WARNING: %s\n' "$*" >&2; }
die()  { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

PYTHON=${PYTHON:-python3}

# ---------------------------------------------------------------------------
# 1. System packages. Each check names the Debian package that fixes it.
# ---------------------------------------------------------------------------
have() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/sbin/$1" ]]; }

missing=()
have curl    || missing+=(curl)
have openssl || missing+=(openssl)
have wrk     || missing+=(wrk)
have nginx   || missing+=(nginx)            # resolved to nginx-light below when available
have cc      || missing+=(build-essential)  # linker + C compiler for build scripts (ring)
have taskset || missing+=(util-linux)
have pgrep   || missing+=(procps)
if ! have "$PYTHON"; then
    missing+=(python3 python3-venv)
elif ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    missing+=(python3-venv)                 # Debian splits ensurepip out of python3
fi

if ((${#missing[@]} == 0)); then
    log "system packages: all present"
elif [[ $(id -u) -ne 0 ]]; then
    warn "not root, skipping apt. Missing packages: ${missing[*]}"
    warn "install them with: sudo apt-get install -y ${missing[*]}"
elif ! have apt-get; then
    warn "no apt-get on this machine. Missing: ${missing[*]}"
else
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Prefer the small nginx build; newer Debian releases only ship "nginx".
    if [[ " ${missing[*]} " == *" nginx "* ]] && apt-cache show nginx-light >/dev/null 2>&1; then
        missing=("${missing[@]/#nginx/nginx-light}")
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ---------------------------------------------------------------------------
# 2. Rust toolchain: cargo must exist; add rustfmt/clippy if rustup can.
# ---------------------------------------------------------------------------
have cargo || die "cargo not found. Install Rust: curl --proto '=https' -sSf https://sh.rustup.rs | sh"
for comp in rustfmt clippy; do
    sub=${comp/rustfmt/fmt}
    if ! cargo "$sub" --version >/dev/null 2>&1; then
        if have rustup; then
            log "adding Rust component $comp"
            rustup component add "$comp"
        else
            warn "cargo $sub is missing and there is no rustup to add it"
        fi
    fi
done
log "rust: $(cargo --version)"

# ---------------------------------------------------------------------------
# 3. Python venv for the end-to-end tests. The stamp file holds a hash of
#    requirements.txt plus the base interpreter's version; a change rebuilds.
# ---------------------------------------------------------------------------
REQ=tests/requirements.txt
VENV=.venv
STAMP=$VENV/.requirements.sha256
[[ -f $REQ ]] || die "$REQ not found"
have "$PYTHON" || die "$PYTHON not found (install python3 and python3-venv)"

want=$({ cat "$REQ"; "$PYTHON" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)
if [[ -f $STAMP && $(<"$STAMP") == "$want" ]] && "$VENV/bin/python" -c '' >/dev/null 2>&1; then
    log "python venv: up to date ($VENV)"
else
    log "python venv: (re)building $VENV from $REQ"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || die "could not create a venv; on Debian: apt-get install -y python3-venv"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
    printf '%s\n' "$want" >"$STAMP"
    log "python venv: ready ($("$VENV/bin/python" --version))"
fi
