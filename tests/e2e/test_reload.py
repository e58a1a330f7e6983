"""Hot reload under load: SIGHUP and file watching, valid and invalid configurations, in-flight
requests keeping the snapshot they started with."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest

from support.ports import free_port

LOAD_THREADS = 6
RELOADS = 100
ACK_TIMEOUT = 5.0


# ------------------------------------------------------------------------------------ configs


def config_text(gw_listen: str, origin_url: str, version: str, *, slow_route: bool = True) -> str:
    """Version `version` of the configuration: `x-config: <version>` on every response (global
    `response-headers`) and a mock `/version` answering `<version>`."""
    slow = (
        """
      - name: slow
        paths: ["/slow"]
        service: origin
"""
        if slow_route
        else "\n"
    )
    return f"""{gw_listen}services:
  - name: origin
    targets:
      - url: {origin_url}
  - name: version
    mock:
      status: 200
      body: "{version}"
policies:
  - name: response-headers
    config:
      set:
        x-config: "{version}"
apis:
  - name: main
    routes:
      - name: echo
        paths: ["/echo"]
        service: origin
      - name: version
        paths: ["= /version"]
        methods: [GET]
        service: version{slow}"""


@dataclass
class Invalid:
    kind: str
    text: str
    needle: str  # where the error must be located
    path: str  # field path the error must name
    fragment: str  # part of the message


def invalid_config(kind: str, base: str) -> Invalid:
    """An invalid variant of `base` (which, if wrongly applied, would answer `X`)."""
    bad = base.replace('x-config: "A"', 'x-config: "X"').replace('x-config: "B"', 'x-config: "X"')
    bad = bad.replace('body: "A"', 'body: "X"').replace('body: "B"', 'body: "X"')
    if kind == "yaml-syntax":
        text = bad.replace("        service: version", "        service: version: again")
        return Invalid(kind, text, ": again", "", "mapping values are not allowed")
    if kind == "unknown-field":
        text = bad.replace("        service: version", "        service: version\n        servce: typo")
        return Invalid(kind, text, "servce:", "apis[0].routes[1]", "unknown field `servce`")
    if kind == "dangling-service":
        text = bad.replace("        service: version", "        service: no-such-service")
        return Invalid(kind, text, "service: no-such-service", "apis[0].routes[1].service",
                       'no service named "no-such-service"')
    if kind == "invalid-policy-config":
        text = bad.replace('        x-config: "X"', '        x-config: "X"\n        connection: close')
        return Invalid(kind, text, "connection: close", "policies[0].config.set.connection", "hop-by-hop")
    raise AssertionError(kind)


INVALID_KINDS = ["yaml-syntax", "unknown-field", "dangling-service", "invalid-policy-config"]


def line_col(text: str, needle: str) -> tuple[int, int]:
    pos = text.index(needle)
    return text.count("\n", 0, pos) + 1, pos - (text.rfind("\n", 0, pos) + 1) + 1


def listen_block(gw) -> str:
    """The `listen` section the running gateway was started with (reloads keep listeners)."""
    admin_port = int(gw.admin_url.rsplit(":", 1)[1])
    status_port = int(gw.status_url.rsplit(":", 1)[1])
    return (f"listen:\n  proxy: 127.0.0.1:{gw.proxy_port}\n  admin: 127.0.0.1:{admin_port}\n"
            f"  status: 127.0.0.1:{status_port}\n")


def new_listen() -> str:
    """A `listen` section on free ports, with a status listener (/metrics without a token)."""
    return (f"listen:\n  proxy: 127.0.0.1:{free_port()}\n  admin: 127.0.0.1:{free_port()}\n"
            f"  status: 127.0.0.1:{free_port()}\n")


def metric(text: str, name: str, labels: str = "") -> float | None:
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def reload_counts(gw) -> tuple[float, float]:
    text = gw.metrics()
    return (metric(text, "tollgate_config_reloads_total", '{result="success"}') or 0.0,
            metric(text, "tollgate_config_reloads_total", '{result="failure"}') or 0.0)


# ------------------------------------------------------------------------------------ load


@dataclass
class Record:
    t0: float
    t1: float
    path: str
    status: int | None = None
    version: str | None = None
    problem: str | None = None


@dataclass
class Load:
    base_url: str
    records: list[Record] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self, n: int) -> None:
        for i in range(n):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in self.threads), "load threads hung"

    def _run(self, worker: int) -> None:
        # One keep-alive connection per thread, reused across every reload (http.client: the
        # fastest keep-alive client in the standard library, so the load is real).
        host, port = self.base_url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        n = 0
        while not self.stop.is_set():
            n += 1
            path = f"/echo/w{worker}/{n}?q={n}" if n % 10 == 0 else "/version"
            t0 = time.monotonic()
            rec = Record(t0, t0, path)
            try:
                conn.request("GET", path)
                r = conn.getresponse()
                body = r.read()
                rec.t1 = time.monotonic()
                rec.status = r.status
                header = r.getheader("x-config")
                rec.version = header
                if r.status != 200:
                    rec.problem = f"status {r.status}: {body[:200]!r}"
                elif path == "/version":
                    if body.decode() != header:
                        rec.problem = f"body {body!r} and x-config {header!r} disagree"
                else:
                    echo = json.loads(body)
                    if echo.get("path") != path.split("?")[0] or echo.get("origin_name") != "origin":
                        rec.problem = f"wrong echo {echo}"
                if r.will_close:
                    rec.problem = rec.problem or "the gateway closed a keep-alive connection"
                    conn.close()
            except Exception as e:  # noqa: BLE001 - every failure is a finding
                rec.t1 = time.monotonic()
                rec.problem = f"{type(e).__name__}: {e}"
                conn.close()
            with self.lock:
                self.records.append(rec)
        conn.close()


@dataclass
class Step:
    kind: str  # "A", "B" or an invalid kind
    t_signal: float
    t_ack: float


def wait_version(client: httpx.Client, want: str, timeout: float = ACK_TIMEOUT) -> float:
    """Polls until `/version` answers `want`; returns when that answer arrived."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        r = client.get("/version")
        if r.status_code == 200 and r.text == want and r.headers.get("x-config") == want:
            return time.monotonic()
        last = (r.status_code, r.text)
        time.sleep(0.005)
    raise AssertionError(f"reload to {want} not acknowledged within {timeout}s; last answer {last}")


def wait_failures(gw, want: float, timeout: float = ACK_TIMEOUT) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reload_counts(gw)[1] >= want:
            return time.monotonic()
        time.sleep(0.005)
    raise AssertionError(f"failed reload #{int(want)} not counted within {timeout}s:\n{gw.stderr_text()[-3000:]}")


def drive_reloads(gw, origin, *, via_watch: bool, capsys=None) -> None:
    listen = listen_block(gw)
    texts = {v: config_text(listen, origin.url, v) for v in "AB"}
    load = Load(gw.proxy_url)
    load.start(LOAD_THREADS)
    steps: list[Step] = []
    current = "A"
    successes = failures = 0
    stderr_problems: list[str] = []
    started = time.monotonic()
    try:
        time.sleep(0.2)
        with httpx.Client(base_url=gw.proxy_url, timeout=5) as probe:
            for i in range(RELOADS):
                if i % 2 == 0:
                    new = "B" if current == "A" else "A"
                    t_signal = time.monotonic()  # before the write: with --watch, the write is the signal
                    gw.write_config(texts[new])
                    if not via_watch:
                        gw.reload()
                    t_ack = wait_version(probe, new)
                    steps.append(Step(new, t_signal, t_ack))
                    current = new
                    successes += 1
                else:
                    inv = invalid_config(INVALID_KINDS[(i // 2) % len(INVALID_KINDS)], texts[current])
                    before = len(gw.stderr_text())
                    t_signal = time.monotonic()
                    gw.write_config(inv.text)
                    if not via_watch:
                        gw.reload()
                    failures += 1
                    t_ack = wait_failures(gw, failures)
                    steps.append(Step(inv.kind, t_signal, t_ack))
                    # the previous configuration keeps serving
                    r = probe.get("/version")
                    assert (r.status_code, r.text, r.headers.get("x-config")) == (200, current, current), inv.kind
                    # a precise error: file path, line:col, field path, message
                    new_err = ""
                    deadline = time.monotonic() + 2
                    line, col = line_col(inv.text, inv.needle)
                    prefix = f"{gw.config_path}:{line}:{col}: {inv.path}"
                    while time.monotonic() < deadline:
                        new_err = gw.stderr_text()[before:]
                        if prefix in new_err and inv.fragment in new_err:
                            break
                        time.sleep(0.01)
                    else:
                        stderr_problems.append(f"{inv.kind}: expected {prefix!r}...{inv.fragment!r} in {new_err!r}")
                time.sleep(0.03)
        time.sleep(0.2)
    finally:
        load.finish()
    elapsed = time.monotonic() - started

    records = sorted(load.records, key=lambda r: r.t0)
    problems = [r for r in records if r.problem]
    bad_versions = [r for r in records if r.version not in ("A", "B")]

    # Windows in which exactly one version was in force: from the acknowledgement of a
    # successful reload (or the start) to the signal of the next successful one.
    valid_steps = [s for s in steps if s.kind in ("A", "B")]
    windows = []
    prev_ack, prev_version = 0.0, "A"
    for s in valid_steps:
        windows.append((prev_ack, s.t_signal, prev_version))
        prev_ack, prev_version = s.t_ack, s.kind
    windows.append((prev_ack, float("inf"), prev_version))
    stale = []
    checked = 0
    for r in records:
        if r.problem:
            continue
        for lo, hi, version in windows:
            if r.t0 >= lo and r.t1 <= hi:
                checked += 1
                if r.version != version:
                    stale.append((r, version))
                break
    ack_times = [s.t_ack - s.t_signal for s in valid_steps]

    succ, fail = reload_counts(gw)
    text = gw.metrics()
    revision = metric(text, "tollgate_config_revision")
    last_ok = metric(text, "tollgate_config_last_reload_success")
    summary = (
        f"\n[reload {'watch' if via_watch else 'SIGHUP'}] requests sent={len(records)} "
        f"failed={len(problems)} wrong-version={len(bad_versions)} "
        f"checked-against-window={checked} stale-after-ack={len(stale)}; "
        f"reloads={len(steps)} (valid={successes}, invalid={failures}); "
        f"metrics success={succ:.0f} failure={fail:.0f} revision={revision}; "
        f"ack latency max={max(ack_times) * 1000:.0f}ms mean={sum(ack_times) / len(ack_times) * 1000:.0f}ms; "
        f"{len(records) / elapsed:.0f} req/s over {elapsed:.1f}s"
    )
    if capsys is not None:
        with capsys.disabled():  # shown even when pytest captures output
            print(summary)
    else:
        print(summary)

    assert len(records) > 2000, "the load generator sent too few requests to mean anything"
    assert not problems, f"{len(problems)} failed requests, e.g. {problems[:5]}"
    assert not bad_versions, f"responses from no configuration in force: {bad_versions[:5]}"
    assert not stale, f"{len(stale)} responses served an old version after the reload was acknowledged: {stale[:5]}"
    assert not stderr_problems, "\n".join(stderr_problems)
    assert (succ, fail) == (successes, failures)
    assert revision == 1 + successes
    assert last_ok == 0  # the last attempt was an invalid one
    err = gw.stderr_text()
    assert err.count("configuration reloaded") == successes
    assert err.count("configuration rejected, still serving the previous one") == failures
    assert gw.proc.poll() is None, "the gateway died"
    assert "listen` changed" not in err


# ------------------------------------------------------------------------------------ tests


def start_version_a(gateway_factory, origin, args=()):
    listen = new_listen()
    gw = gateway_factory(config_text(listen, origin.url, "A"), args=args)
    with httpx.Client(base_url=gw.proxy_url, timeout=5) as c:
        r = c.get("/version")
        assert (r.status_code, r.text, r.headers.get("x-config")) == (200, "A", "A")
    return gw


@pytest.mark.timeout(120)
def test_sighup_reload_100_times_under_load_never_fails_a_request_and_serves_only_configs_in_force(
        gateway_factory, origin, capsys):
    gw = start_version_a(gateway_factory, origin)
    drive_reloads(gw, origin, via_watch=False, capsys=capsys)


@pytest.mark.timeout(150)
def test_file_watch_reload_100_times_under_load_never_fails_a_request_and_serves_only_configs_in_force(
        gateway_factory, origin, capsys):
    gw = start_version_a(gateway_factory, origin, args=("--watch",))
    drive_reloads(gw, origin, via_watch=True, capsys=capsys)


def test_invalid_config_on_reload_keeps_previous_config_and_logs_precise_error(gateway_factory, origin):
    gw = start_version_a(gateway_factory, origin)
    base = config_text(listen_block(gw), origin.url, "A")
    for n, kind in enumerate(INVALID_KINDS, start=1):
        inv = invalid_config(kind, base)
        before = len(gw.stderr_text())
        gw.write_config(inv.text)
        gw.reload()
        wait_failures(gw, n)
        line, col = line_col(inv.text, inv.needle)
        gw.wait_for_log("configuration rejected", timeout=5)
        err = gw.stderr_text()[before:]
        assert f"{gw.config_path}:{line}:{col}: {inv.path}" in err, (kind, err)
        assert inv.fragment in err, (kind, err)
        r = httpx.get(gw.proxy_url + "/version", timeout=5)
        assert (r.status_code, r.text, r.headers["x-config"]) == (200, "A", "A"), kind
    text = gw.metrics()
    assert metric(text, "tollgate_config_last_reload_success") == 0
    assert metric(text, "tollgate_config_revision") == 1
    # and a valid one afterwards is applied
    gw.write_config(config_text(listen_block(gw), origin.url, "B"))
    gw.reload()
    with httpx.Client(base_url=gw.proxy_url, timeout=5) as c:
        wait_version(c, "B")
    text = gw.metrics()
    assert metric(text, "tollgate_config_last_reload_success") == 1
    assert metric(text, "tollgate_config_revision") == 2
    assert metric(text, "tollgate_config_reloads_total", '{result="success"}') == 1
    assert metric(text, "tollgate_config_reloads_total", '{result="failure"}') == len(INVALID_KINDS)


def test_reload_of_a_deleted_config_file_fails_and_keeps_serving(gateway_factory, origin):
    gw = start_version_a(gateway_factory, origin)
    gw.config_path.unlink()
    gw.reload()
    wait_failures(gw, 1)
    line = gw.wait_for_log("cannot read", timeout=5)
    assert str(gw.config_path) in gw.stderr_text()
    r = httpx.get(gw.proxy_url + "/version", timeout=5)
    assert (r.status_code, r.text) == (200, "A"), line


def test_in_flight_request_finishes_on_the_snapshot_it_started_with(gateway_factory, origin):
    gw = start_version_a(gateway_factory, origin)
    result: dict = {}

    def slow():
        try:
            r = httpx.get(gw.proxy_url + "/slow/1500", timeout=15)
            result["response"] = r
        except Exception as e:  # noqa: BLE001
            result["error"] = e
        result["t1"] = time.monotonic()

    t = threading.Thread(target=slow)
    t.start()
    deadline = time.monotonic() + 5
    while not any(r.path == "/slow/1500" for r in origin.requests):
        assert time.monotonic() < deadline, "the slow request never reached the origin"
        time.sleep(0.005)
    # B removes the route the slow request is on.
    gw.write_config(config_text(listen_block(gw), origin.url, "B", slow_route=False))
    gw.reload()
    with httpx.Client(base_url=gw.proxy_url, timeout=5) as c:
        t_ack = wait_version(c, "B")
        gone = c.get("/slow/10")
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "route_not_found"
        assert gone.headers["x-config"] == "B"
    t.join(timeout=15)
    assert "error" not in result, result.get("error")
    r = result["response"]
    assert result["t1"] > t_ack, "the slow request ended before the reload: the test proved nothing"
    assert r.status_code == 200
    assert r.json()["path"] == "/slow/1500"
    assert r.headers["x-config"] == "A"  # the response phase of the snapshot it started with


def test_reload_with_changed_listen_warns_and_keeps_the_running_listeners(gateway_factory, origin):
    gw = start_version_a(gateway_factory, origin)
    proxy_url, admin_url = gw.proxy_url, gw.admin_url  # write_config would adopt the new ones
    moved = f"listen:\n  proxy: 127.0.0.1:{free_port()}\n  admin: 127.0.0.1:{free_port()}\n"
    gw.write_config(config_text(moved, origin.url, "B"))
    gw.reload()
    with httpx.Client(base_url=proxy_url, timeout=5) as c:
        wait_version(c, "B")  # the rest of the configuration is applied on the old listeners
    gw.wait_for_log("`listen` changed", timeout=5)
    assert httpx.get(admin_url + "/health/ready", timeout=5).status_code == 200


def test_reload_applies_access_log_settings_or_warns_that_it_cannot(gateway_factory, origin):
    gw = start_version_a(gateway_factory, origin)
    listen = listen_block(gw)
    with httpx.Client(base_url=gw.proxy_url, timeout=5) as c:
        rid = c.get("/version").headers["x-request-id"]
        gw.wait_for_access_log(lambda r: r.get("request_id") == rid)
        text = config_text(listen, origin.url, "B").replace(
            "services:", "server:\n  access_log:\n    enabled: false\nservices:", 1)
        gw.write_config(text)
        gw.reload()
        wait_version(c, "B")
        rids = [c.get("/version").headers["x-request-id"] for _ in range(5)]
    time.sleep(0.5)
    logged_after = [r for r in gw.access_log() if r.get("request_id") in rids]
    warned = re.search(r"WARN.*access.?log", gw.stderr_text())
    assert not logged_after or warned, (
        f"access_log.enabled: false was reloaded, yet {len(logged_after)} lines were written and "
        f"nothing was logged about it")


def test_file_watch_reloads_on_in_place_writes_too(gateway_factory, origin):
    gw = start_version_a(gateway_factory, origin, args=("--watch",))
    listen = listen_block(gw)
    with httpx.Client(base_url=gw.proxy_url, timeout=5) as c:
        for version in ("B", "A", "B"):
            with open(gw.config_path, "w") as f:  # truncate + write, as `cat > file` or many editors do
                f.write(config_text(listen, origin.url, version))
            wait_version(c, version)
    time.sleep(0.3)
    succ, fail = reload_counts(gw)
    assert fail == 0, gw.stderr_text()
    assert succ >= 3


def test_file_watch_reloads_when_a_configmap_style_symlink_is_swapped(tollgate_bin, tmp_path, origin):
    import os
    import subprocess

    listen = new_listen()
    proxy_url = "http://" + listen.split("proxy: ")[1].split("\n")[0]
    d = tmp_path / "configmap"
    (d / "..2024_01").mkdir(parents=True)
    (d / "..2024_01" / "tollgate.yaml").write_text(config_text(listen, origin.url, "A"))
    os.symlink("..2024_01", d / "..data")
    os.symlink("..data/tollgate.yaml", d / "tollgate.yaml")
    proc = subprocess.Popen([tollgate_bin, "run", "-c", str(d / "tollgate.yaml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"})
    try:
        with httpx.Client(base_url=proxy_url, timeout=5) as c:
            deadline = time.monotonic() + 10
            while True:
                try:
                    if c.get("/version").text == "A":
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, "gateway did not start"
                time.sleep(0.05)
            # What the kubelet does: new timestamped dir, new ..data_tmp symlink, rename over ..data.
            (d / "..2024_02").mkdir()
            (d / "..2024_02" / "tollgate.yaml").write_text(config_text(listen, origin.url, "B"))
            os.symlink("..2024_02", d / "..data_tmp")
            os.replace(d / "..data_tmp", d / "..data")
            assert (d / "tollgate.yaml").read_text().count('"B"') == 2
            wait_version(c, "B", timeout=3)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_sighup_during_startup_does_not_kill_the_gateway(gateway_factory, origin):
    import signal as _signal

    listen = new_listen()
    gw = gateway_factory(config_text(listen, origin.url, "A"), wait_ready=False)
    # A signal that arrives before the program's first instruction can only take the default
    # action, for any program. Wait until the process catches SIGHUP (bit 1 of SigCgt: set by
    # the first line of main), then signal it while it is still starting up.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{gw.proc.pid}/status") as f:
                caught = next(int(l.split()[1], 16) for l in f if l.startswith("SigCgt:"))
            if caught & (1 << (_signal.SIGHUP - 1)):
                break
        except (FileNotFoundError, StopIteration):
            pass
        time.sleep(0.001)
    gw.proc.send_signal(_signal.SIGHUP)
    time.sleep(0.3)
    assert gw.proc.poll() is None, f"gateway died with {gw.proc.returncode} on an early SIGHUP"
    gw.wait_ready()
