"""Starting and driving a real `tollgate run` process."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from .ports import free_port

READY_TIMEOUT = 20.0
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class GatewayError(AssertionError):
    """The gateway did not start or stop as expected (the message carries its stderr)."""


def _http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 (local test URL)
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _substitute_env(text: str, env: Mapping[str, str]) -> str:
    """`${VAR}` and `${VAR:-default}`, as the gateway does (only to read listen addresses)."""

    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(3)
        return env.get(name, default if default is not None else "")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}", repl, text)


def _split_addr(addr: str) -> tuple[str, int]:
    host, _, port = str(addr).rpartition(":")
    host = host.strip("[]")
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    return host, int(port)


def _has_certificates(cfg: dict) -> bool:
    """The TLS listener is bound only when `tls.certificates` or `certificates` is not empty."""
    tls = cfg.get("tls")
    return (isinstance(tls, dict) and bool(tls.get("certificates"))) or bool(cfg.get("certificates"))


class Gateway:
    """A running gateway. Created by the ``gateway_factory`` fixture."""

    def __init__(
        self,
        bin_path: str,
        workdir: Path,
        config: dict | str,
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.bin_path = bin_path
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "tollgate.yaml"
        self.stdout_path = workdir / "stdout.log"
        self.stderr_path = workdir / "stderr.log"
        self.env = dict(os.environ)
        self.env.setdefault("RUST_BACKTRACE", "1")
        self.env.setdefault("NO_COLOR", "1")
        if env:
            self.env.update({k: str(v) for k, v in env.items()})
        args = list(args)
        self.watch = "--watch" in args
        self.args = [a for a in args if a != "--watch"]
        self._listen: dict[str, str] = {}
        self._has_tls = False
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None
        self._stdout_fh = None
        self._stderr_fh = None
        self._write(self._prepare(config))

    # ----------------------------------------------------------------- configuration
    def _prepare(self, config: dict | str) -> str:
        """Fills `listen` when missing, remembers the addresses, returns the file text."""
        if isinstance(config, dict):
            cfg = copy.deepcopy(config)
            listen = cfg.get("listen")
            if listen is None:
                listen = cfg["listen"] = {}
            self._has_tls = _has_certificates(cfg)
            if self._listen:
                # A reload keeps the addresses the process is bound to.
                for key, value in self._listen.items():
                    listen.setdefault(key, value)
            listen.setdefault("proxy", f"127.0.0.1:{free_port()}")
            listen.setdefault("admin", f"127.0.0.1:{free_port()}")
            listen.setdefault("proxy_tls", f"127.0.0.1:{free_port()}")
            # health and /metrics without a token (on the admin listener /metrics needs one)
            listen.setdefault("status", f"127.0.0.1:{free_port()}")
            self._listen = {k: str(v) for k, v in listen.items()}
            return json.dumps(cfg, indent=2) + "\n"
        text = str(config)
        try:
            parsed = yaml.safe_load(_substitute_env(text, self.env)) or {}
        except yaml.YAMLError:
            parsed = {}  # let the gateway report it
        if not isinstance(parsed, dict):
            parsed = {}
        self._has_tls = _has_certificates(parsed)
        listen = parsed.get("listen")
        if isinstance(listen, dict):
            self._listen = {k: str(v) for k, v in listen.items()}
            for key in ("proxy", "admin", "proxy_tls"):
                self._listen.setdefault(
                    key, {"proxy": "0.0.0.0:8080", "admin": "127.0.0.1:8081",
                          "proxy_tls": "0.0.0.0:8443"}[key])
            return text
        if not self._listen:
            self._listen = {
                "proxy": f"127.0.0.1:{free_port()}",
                "admin": f"127.0.0.1:{free_port()}",
                "proxy_tls": f"127.0.0.1:{free_port()}",
                "status": f"127.0.0.1:{free_port()}",
            }
        block = "\nlisten:\n" + "".join(f"  {k}: {v}\n" for k, v in self._listen.items())
        return text.rstrip("\n") + "\n" + block

    def _write(self, text: str) -> None:
        tmp = self.config_path.with_name(self.config_path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config_path)

    def write_config(self, config: dict | str) -> None:
        """Atomically replaces the configuration file (temp file + rename). A dict without
        `listen` keeps the addresses this gateway listens on. Does not reload by itself."""
        self._write(self._prepare(config))

    # ----------------------------------------------------------------- addresses
    @property
    def proxy_port(self) -> int:
        return _split_addr(self._listen["proxy"])[1]

    @property
    def proxy_url(self) -> str:
        host, port = _split_addr(self._listen["proxy"])
        return f"http://{host}:{port}"

    @property
    def tls_port(self) -> int | None:
        return _split_addr(self._listen["proxy_tls"])[1] if self._has_tls else None

    @property
    def tls_url(self) -> str | None:
        if not self._has_tls:
            return None
        host, port = _split_addr(self._listen["proxy_tls"])
        return f"https://{host}:{port}"

    @property
    def admin_port(self) -> int:
        return _split_addr(self._listen["admin"])[1]

    @property
    def admin_url(self) -> str:
        host, port = _split_addr(self._listen["admin"])
        return f"http://{host}:{port}"

    @property
    def status_url(self) -> str | None:
        """The status listener (health and /metrics without a token), when configured."""
        if "status" not in self._listen:
            return None
        host, port = _split_addr(self._listen["status"])
        return f"http://{host}:{port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    # ----------------------------------------------------------------- process
    def start(self, wait_ready: bool = True) -> "Gateway":
        cmd = [self.bin_path, "run", "-c", str(self.config_path)]
        if not self.watch:
            cmd.append("--no-watch")
        cmd += self.args
        self._stdout_fh = open(self.stdout_path, "ab")  # noqa: SIM115 (kept open for the process)
        self._stderr_fh = open(self.stderr_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout_fh,
            stderr=self._stderr_fh,
            env=self.env,
            cwd=self.workdir,
        )
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Waits until `GET /health/ready` on the admin listener answers 200."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise GatewayError(
                    f"tollgate exited with code {self.proc.returncode} before it was ready.\n"
                    f"--- config ({self.config_path}) ---\n{self.config_path.read_text()}\n"
                    f"--- stderr ---\n{self.stderr_text()}"
                )
            try:
                status, _ = _http_get(self.admin_url + "/health/ready", timeout=1.0)
                if status == 200:
                    return
                last = f"status {status}"
            except OSError as e:
                last = str(e)
            time.sleep(0.05)
        raise GatewayError(
            f"tollgate not ready after {timeout}s ({last}).\n--- stderr ---\n{self.stderr_text()}"
        )

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def reload(self) -> None:
        """Sends SIGHUP."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Sends `sig`, waits up to `timeout` seconds for the exit and returns the exit code
        (negative: killed by that signal). Raises GatewayError (after SIGKILL) if it hangs."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                self._close_files()
                raise GatewayError(
                    f"tollgate did not exit within {timeout}s of signal {sig}; killed.\n"
                    f"--- stderr ---\n{self.stderr_text()[-4000:]}"
                ) from None
        self._close_files()
        self.exit_code = self.proc.returncode
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._close_files()

    def _close_files(self) -> None:
        for fh in (self._stdout_fh, self._stderr_fh):
            if fh is not None and not fh.closed:
                fh.close()

    # ----------------------------------------------------------------- output
    def stdout_text(self) -> str:
        try:
            return self.stdout_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stderr_text(self) -> str:
        """Everything the process wrote to stderr so far (ANSI colour codes removed)."""
        try:
            return _ANSI.sub("", self.stderr_path.read_text(errors="replace"))
        except FileNotFoundError:
            return ""

    def access_log(self) -> list[dict[str, Any]]:
        """The JSON access log lines written to stdout so far (other lines are skipped)."""
        out = []
        for line in self.stdout_text().splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line being written right now
        return out

    def wait_for_access_log(self, predicate, timeout: float = 5.0) -> dict[str, Any]:
        """The first access log record for which `predicate(record)` is true (they are
        written by a background thread, so they may lag the response a little)."""
        deadline = time.monotonic() + timeout
        while True:
            for rec in self.access_log():
                if predicate(rec):
                    return rec
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no matching access log line within {timeout}s; have: {self.access_log()[-10:]}"
                )
            time.sleep(0.05)

    def wait_for_log(self, substring: str, timeout: float = 10.0) -> str:
        """Waits until `substring` appears in stderr (tracing logs) or stdout; returns the
        first line containing it."""
        deadline = time.monotonic() + timeout
        while True:
            for text in (self.stderr_text(), self.stdout_text()):
                if substring in text:
                    for line in text.splitlines():
                        if substring in line:
                            return line
                    return substring
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{substring!r} not logged within {timeout}s.\n--- stderr ---\n"
                    f"{self.stderr_text()[-4000:]}"
                )
            time.sleep(0.05)

    def metrics(self) -> str:
        """/metrics from the status listener (no token needed there)."""
        assert self.status_url, "this gateway's configuration has no listen.status"
        status, body = _http_get(self.status_url + "/metrics", timeout=5.0)
        assert status == 200, f"/metrics answered {status}"
        return body.decode()

    def rss_bytes(self) -> int:
        """Resident set size of the gateway process (from /proc/PID/status)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def __repr__(self) -> str:
        return f"<Gateway pid={self.proc.pid if self.proc else None} proxy={self.proxy_url}>"


def start_gateway(
    bin_path: str,
    workdir: Path,
    config: dict | str,
    *,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    wait_ready: bool = True,
) -> Gateway:
    gw = Gateway(bin_path, workdir, config, env=env, args=args)
    gw.start(wait_ready=wait_ready)
    return gw
