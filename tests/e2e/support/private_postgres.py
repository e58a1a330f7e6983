"""A PostgreSQL server of the test's own (initdb in a temporary directory, its own port), so a
test can stop and start it without touching the machine's shared server.

``PrivatePostgres()``: ``start()``, ``stop()`` (fast shutdown: clients are disconnected),
``url(db="postgres")``, ``create_database(name)``, ``destroy()``. Uses the binaries of the
installed PostgreSQL (``/usr/lib/postgresql/<version>/bin``); when running as root the server
runs as the ``postgres`` user, as PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .ports import free_port


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: [int(x) if x.isdigit() else x for x in p.split("/")])
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql "
                           "(install the postgresql package)")
    return Path(found[-1]).parent


class PrivatePostgres:
    def __init__(self) -> None:
        self.bin = _bin_dir()
        # Under /tmp itself: pytest's directories are private to root, and the server runs as
        # the postgres user.
        self.root = Path(tempfile.mkdtemp(prefix="tollgate_pg_"))
        root = self.root
        self.data = root / "pgdata"
        self.sock = root / "sock"
        self.port = free_port()
        self.log = root / "postgres.log"
        root.mkdir(parents=True, exist_ok=True)
        self.sock.mkdir(exist_ok=True)
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(root, "postgres", "postgres")
            shutil.chown(self.sock, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")

    def _run(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stdout}\n{done.stderr}")
        return done

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w",
                  "-t", "60", "start")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ok = subprocess.run([str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1",
                                 "-p", str(self.port)]).returncode == 0
            if ok:
                return
            time.sleep(0.1)
        raise RuntimeError(f"private PostgreSQL not ready:\n{self.log.read_text()}")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, db: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def destroy(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.root, ignore_errors=True)
