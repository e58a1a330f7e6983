"""A gateway in store mode (no configuration file): SQLite in a data directory, or a
PostgreSQL database; managed through the admin API and the CLI.

``StoreGateway``: ``proxy_url``, ``admin_url``, ``data_dir``, ``store_url``, ``token`` (an
admin token created with ``tollgate admin token create``), ``api(method, path, json=None,
token=..., headers=None, content=None) -> httpx.Response``, ``cli(*args, token=...) ->
CompletedProcess``, ``create_token(role) -> str``, ``start()``, ``stop()``, ``kill()``,
``stderr_text()``, ``wait_live(check, timeout)``, ``health()`` (the ``/health/ready`` JSON).

``role``: ``all`` (default), ``data-plane`` (no admin API; ``admin_url`` is then its status
listener: health and metrics only) or ``control-plane`` (no proxy listener).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import httpx

from .gateway import READY_TIMEOUT, GatewayError, _http_get
from .ports import free_port


def postgres_admin_url() -> str:
    return os.environ.get("TOLLGATE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")


class PostgresDatabase:
    """A fresh PostgreSQL database for one test, dropped afterwards."""

    def __init__(self) -> None:
        import psycopg

        self.name = f"tollgate_e2e_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres_admin_url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.name}")
        self.url = postgres_admin_url().rsplit("/", 1)[0] + "/" + self.name

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(postgres_admin_url(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


class StoreGateway:
    def __init__(self, bin_path: str, workdir: Path, *, store_url: str | None = None,
                 env: dict[str, str] | None = None, args: tuple[str, ...] = (),
                 role: str = "all") -> None:
        self.bin_path = bin_path
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = workdir / "data"
        self.store_url = store_url
        self.env = dict(os.environ)
        self.env.setdefault("NO_COLOR", "1")
        self.env.pop("TOLLGATE_CONFIG", None)
        if env:
            self.env.update(env)
        self.args = list(args)
        self.role = role
        self.proxy_port = free_port()
        self.admin_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr_path = workdir / "stderr.log"
        self._stderr_fh = None
        self.token = self.create_token("admin")

    # ------------------------------------------------------------------ process
    def store_args(self) -> list[str]:
        args = ["--data-dir", str(self.data_dir)]
        if self.store_url:
            args += ["--store", self.store_url]
        return args

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, wait_ready: bool = True) -> "StoreGateway":
        cmd = [self.bin_path, "run", *self.store_args(), "--role", self.role]
        if self.role != "control-plane":
            cmd += ["--listen", f"127.0.0.1:{self.proxy_port}"]
        if self.role == "data-plane":
            cmd += ["--status-listen", f"127.0.0.1:{self.admin_port}"]
        else:
            cmd += ["--admin-listen", f"127.0.0.1:{self.admin_port}"]
        cmd += self.args
        self._stderr_fh = open(self._stderr_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._stderr_fh,
                                     stderr=self._stderr_fh, env=self.env, cwd=self.workdir)
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise GatewayError(f"tollgate exited with {self.proc.returncode}:\n{self.stderr_text()}")
            try:
                if _http_get(self.admin_url + "/health/ready", timeout=1.0)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise GatewayError(f"tollgate not ready after {timeout}s:\n{self.stderr_text()}")

    def health(self) -> dict[str, Any]:
        """The ``/health/ready`` report: status, revision served, role, store condition."""
        return httpx.get(self.admin_url + "/health/ready", timeout=5).json()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise GatewayError(f"tollgate did not stop:\n{self.stderr_text()[-3000:]}") from None
        if self._stderr_fh is not None:
            self._stderr_fh.close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self._stderr_fh is not None and not self._stderr_fh.closed:
            self._stderr_fh.close()

    def stderr_text(self) -> str:
        try:
            return self._stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    # ------------------------------------------------------------------ clients
    def create_token(self, role: str, name: str | None = None) -> str:
        args = [self.bin_path, "admin", "token", "create", "--role", role, *self.store_args()]
        if name:
            args += ["--name", name]
        done = subprocess.run(args, capture_output=True, text=True, env=self.env, timeout=60)
        if done.returncode != 0:
            raise GatewayError(f"token create failed ({done.returncode}): {done.stderr}")
        return done.stdout.strip()

    def api(self, method: str, path: str, *, json: Any = None, token: str | None = "default",
            headers: dict[str, str] | None = None, content: bytes | str | None = None,
            params: dict[str, Any] | None = None) -> httpx.Response:
        h = dict(headers or {})
        tok = self.token if token == "default" else token
        if tok:
            h.setdefault("Authorization", f"Bearer {tok}")
        return httpx.request(method, self.admin_url + path, json=json, headers=h,
                             content=content, params=params, timeout=30)

    def cli(self, *args: str, token: str | None = "default", check: bool = False,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        env["TOLLGATE_ADMIN_URL"] = self.admin_url
        tok = self.token if token == "default" else token
        if tok:
            env["TOLLGATE_ADMIN_TOKEN"] = tok
        done = subprocess.run([self.bin_path, *args], capture_output=True, text=True, env=env,
                              timeout=60, input=input, cwd=self.workdir)
        if check and done.returncode != 0:
            raise AssertionError(f"tollgate {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done

    def wait_live(self, check: Callable[[], bool], timeout: float = 5.0) -> float:
        """Polls `check` until true; returns the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if check():
                return time.monotonic() - started
            time.sleep(0.01)
        raise AssertionError(f"not live within {timeout}s")
