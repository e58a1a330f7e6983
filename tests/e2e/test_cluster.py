"""Cluster mode end to end: several nodes on one PostgreSQL store.

- a change made through one node is live on the others within a second (measured);
- roles: control-plane and data-plane nodes;
- a change-notification connection that is killed costs nothing: the resync after the
  reconnection reads what was missed;
- the store going away (a private PostgreSQL server, stopped and started) loses no request,
  a node restarted meanwhile starts from its local cache, and the nodes catch up;
- startup errors for stores that cannot be used are clear and bounded in time.
"""

from __future__ import annotations

import base64
import os
import socket
import statistics
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

BASE = """
services:
  - name: hello
    mock: {status: 200, body: "hello\\n"}
policies:
  - name: response-headers
    config: {set: {x-rev: "0"}}
apis:
  - name: hello
    routes:
      - {name: hi, paths: ["/hi"], service: hello}
"""


def key_file(tmp_path: Path) -> str:
    path = tmp_path / "secret.key"
    if not path.exists():
        path.write_text(base64.b64encode(os.urandom(32)).decode())
        path.chmod(0o600)
    return str(path)


def start_nodes(factory, store_url, tmp_path, roles=("all", "all", "all"), poll="1s"):
    nodes = []
    for role in roles:
        nodes.append(factory(store_url=store_url, role=role,
                             args=("--secret-key-file", key_file(tmp_path), "--store-poll", poll)))
    return nodes


def apply_base(node, tmp_path):
    path = tmp_path / "base.yaml"
    path.write_text(BASE)
    node.cli("config", "apply", "-f", str(path), check=True)


def set_rev(node, value: str) -> None:
    r = node.api("PUT", "/api/v1/policies/response-headers",
                 json={"name": "response-headers", "config": {"set": {"x-rev": value}}})
    assert r.status_code == 200, r.text


_clients: dict[str, httpx.Client] = {}


def rev_of(node) -> str | None:
    """The x-rev header node answers with now (one kept-alive connection per node, so that
    polling measures the node, not connection setup)."""
    client = _clients.setdefault(node.proxy_url, httpx.Client(timeout=2))
    try:
        return client.get(node.proxy_url + "/hi").headers.get("x-rev")
    except httpx.HTTPError:
        _clients.pop(node.proxy_url, None).close()
        return None


def wait_rev(node, value: str, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if rev_of(node) == value:
            return time.monotonic() - started
        time.sleep(0.001)
    raise AssertionError(f"x-rev {value!r} not live on {node.proxy_url} within {timeout}s "
                         f"(serves {rev_of(node)!r}):\n{node.stderr_text()[-2000:]}")


def wait_cached(node, timeout: float = 10) -> None:
    """Waits until the node's local cache holds the revision it serves."""
    import json

    path = node.data_dir / "state-cache.json"
    deadline = time.monotonic() + timeout
    while True:
        served = node.health()["revision"]
        try:
            if json.loads(path.read_text())["revision"] == served:
                return
        except (OSError, ValueError):
            pass
        assert time.monotonic() < deadline, f"{path} not at revision {served}"
        time.sleep(0.1)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def metric(node, name: str) -> float:
    # on the admin listener /metrics needs a token (a data-plane node's status listener
    # ignores it)
    text = httpx.get(node.admin_url + "/metrics", timeout=5,
                     headers={"Authorization": f"Bearer {node.token}"}).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"metric {name} not exported:\n{text[:3000]}")


# ------------------------------------------------------------------------------- propagation


def test_nodes_starting_together_migrate_once(tollgate_bin, postgres_db, tmp_path):
    import psycopg

    # Each process opens the fresh store and applies the migrations: one does, the others wait
    # on the migrator's lock and find them applied.
    procs = [subprocess.Popen([tollgate_bin, "admin", "token", "create", "--role", "viewer",
                               "--store", postgres_db.url, "--data-dir", str(tmp_path / f"d{i}"),
                               "--secret-key-file", key_file(tmp_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    with psycopg.connect(postgres_db.url) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM _sqlx_migrations")]
        tokens = conn.execute("SELECT count(*) FROM admin_tokens").fetchone()[0]
    assert len(versions) == len(set(versions)) >= 1
    assert tokens == 4


def test_a_change_through_one_node_is_live_on_all_within_a_second(
        store_gateway_factory, postgres_db, tmp_path):
    nodes = start_nodes(store_gateway_factory, postgres_db.url, tmp_path)
    apply_base(nodes[0], tmp_path)
    for node in nodes:
        wait_rev(node, "0", 5)
    delays: list[float] = []
    for i in range(1, 51):
        sent = time.monotonic()
        set_rev(nodes[0], str(i))
        for node in nodes[1:]:
            wait_rev(node, str(i), 5)
            delays.append(time.monotonic() - sent)
    p50, p99 = percentile(delays, 50), percentile(delays, 99)
    print(f"\npropagation over {len(delays)} (change, node) pairs: "
          f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms")
    assert max(delays) < 1.0, f"p50 {p50:.3f}s p99 {p99:.3f}s max {max(delays):.3f}s"

    # every node reports the revision it serves, and they agree with the store
    status = nodes[0].api("GET", "/api/v1/status").json()
    deadline = time.monotonic() + 5
    while True:
        revisions = [n.health()["revision"] for n in nodes]
        if revisions == [status["revision"]] * 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert revisions == [status["revision"]] * 3
    for node in nodes:
        health = node.health()
        assert health["status"] == "ready" and health["role"] == "all"
        assert health["store"]["reachable"] is True and health["store"]["listening"] is True
        assert metric(node, "tollgate_config_revision") == status["revision"]
        assert metric(node, "tollgate_store_reachable") == 1
    # pushed, not polled: the others received notifications
    assert metric(nodes[1], "tollgate_store_notifications_total") >= 50


def test_control_plane_and_data_plane_roles(store_gateway_factory, postgres_db, tmp_path):
    cp, dp1, dp2 = start_nodes(store_gateway_factory, postgres_db.url, tmp_path,
                               roles=("control-plane", "data-plane", "data-plane"))
    apply_base(cp, tmp_path)
    set_rev(cp, "cp-1")
    for dp in (dp1, dp2):
        wait_rev(dp, "cp-1", 2)
        # no admin API on a data-plane node: its status listener has health and metrics only
        assert httpx.get(dp.admin_url + "/api/v1/status",
                         headers={"Authorization": f"Bearer {dp.token}"}, timeout=5).status_code == 404
        assert dp.health()["role"] == "data-plane"
        assert metric(dp, "tollgate_store_reachable") == 1
        assert httpx.get(dp.admin_url + "/health/live", timeout=5).status_code == 200
    # the control-plane node serves no traffic
    with pytest.raises(httpx.ConnectError):
        httpx.get(cp.proxy_url + "/hi", timeout=2)
    assert cp.health()["role"] == "control-plane"
    assert cp.api("GET", "/api/v1/status").status_code == 200


def test_roles_refuse_listeners_they_do_not_have(tollgate_bin, tmp_path):
    for args, needle in [
        (["--role", "data-plane", "--admin-listen", "127.0.0.1:1"], "no admin listener"),
        (["--role", "control-plane", "--listen", "127.0.0.1:1"], "serves no traffic"),
        (["--role", "data-plane", "-c", "x.yaml"], "store mode"),
    ]:
        done = subprocess.run([tollgate_bin, "run", "--data-dir", str(tmp_path / "d"), *args],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 2, done.stderr
        assert needle in done.stderr, done.stderr


# ------------------------------------------------------------------------- lost notifications


def test_a_killed_notification_connection_is_caught_by_the_resync(
        store_gateway_factory, postgres_db, tmp_path):
    import psycopg

    # Poll once an hour: only notifications and resyncs can bring changes in.
    writer, reader = start_nodes(store_gateway_factory, postgres_db.url, tmp_path,
                                 roles=("all", "all"), poll="1h")
    apply_base(writer, tmp_path)
    wait_rev(reader, "0", 3)
    resyncs = metric(reader, "tollgate_store_resyncs_total")
    notified = metric(reader, "tollgate_store_notifications_total")
    with psycopg.connect(postgres_db.url, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query ILIKE 'LISTEN%'").fetchall()
    assert len(killed) == 2, killed
    # Nobody listens for the next fraction of a second: this change's notification is lost.
    set_rev(writer, "missed")
    wait_rev(reader, "missed", 5)
    assert metric(reader, "tollgate_store_resyncs_total") > resyncs
    assert metric(reader, "tollgate_store_notifications_total") == notified, \
        "the change came by resync, not by a notification"
    assert "lost the change-notification connection" in reader.stderr_text()


# ------------------------------------------------------------------------------ store outage


class Load:
    """Steady GET /hi over the nodes in rotation (as a load balancer with health checks)."""

    def __init__(self, nodes) -> None:
        self.rotation = list(nodes)
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(4)]

    def _run(self) -> None:
        i = 0
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                with self._lock:
                    nodes = list(self.rotation)
                node = nodes[i % len(nodes)]
                i += 1
                try:
                    r = client.get(node.proxy_url + "/hi")
                    if r.status_code == 200:
                        with self._lock:
                            self.ok += 1
                    else:
                        self.failures.append(f"{node.proxy_url}: {r.status_code} {r.text[:200]}")
                except httpx.HTTPError as e:
                    self.failures.append(f"{node.proxy_url}: {e!r}")
                time.sleep(0.002)

    def start(self) -> "Load":
        for t in self._threads:
            t.start()
        return self

    def remove(self, node) -> None:
        with self._lock:
            self.rotation.remove(node)
        time.sleep(0.3)  # requests already sent to it finish

    def add(self, node) -> None:
        with self._lock:
            self.rotation.append(node)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)


@pytest.mark.timeout(240)
def test_losing_the_store_loses_no_request(store_gateway_factory, tmp_path):
    from support.private_postgres import PrivatePostgres

    pg = PrivatePostgres()
    try:
        pg.start()
        url = pg.create_database("tollgate")
        nodes = start_nodes(store_gateway_factory, url, tmp_path)
        apply_base(nodes[0], tmp_path)
        for node in nodes:
            wait_rev(node, "0", 5)
        for node in nodes:
            wait_cached(node)
        load = Load(nodes).start()
        time.sleep(1)

        pg.stop()
        deadline = time.monotonic() + 15
        while any(n.health()["store"]["reachable"] for n in nodes):
            assert time.monotonic() < deadline, [n.health() for n in nodes]
            time.sleep(0.1)
        for node in nodes:
            assert metric(node, "tollgate_store_reachable") == 0
            assert node.health()["status"] == "ready"
        time.sleep(1)

        # a node restarted during the outage starts from its local cache
        restarted = nodes[2]
        load.remove(restarted)
        assert restarted.stop() == 0
        restarted.start()
        health = restarted.health()
        assert health["store"]["from_cache"] is True and health["store"]["reachable"] is False
        assert rev_of(restarted) == "0"
        # its admin tokens too: /metrics (which needs one) still answers
        assert (restarted.data_dir / "admin-tokens.json").stat().st_mode & 0o777 == 0o600
        assert metric(restarted, "tollgate_store_reachable") == 0
        load.add(restarted)
        time.sleep(1)

        pg.start()
        deadline = time.monotonic() + 30
        while True:
            r = nodes[0].api("PUT", "/api/v1/policies/response-headers",
                             json={"name": "response-headers", "config": {"set": {"x-rev": "after"}}})
            if r.status_code == 200:
                break
            assert r.status_code == 503, r.text
            assert time.monotonic() < deadline, r.text
            time.sleep(0.5)
        for node in nodes:
            wait_rev(node, "after", 10)
        for node in nodes:
            store = node.health()["store"]
            assert store["reachable"] is True and store["from_cache"] is False
        time.sleep(0.5)
        load.stop()
        assert load.failures == [], load.failures[:10]
        assert load.ok > 500, load.ok
        print(f"\n{load.ok} requests, 0 failed, through a store outage and a node restart")
    finally:
        pg.destroy()


@pytest.mark.timeout(180)
def test_a_store_that_stops_answering_never_holds_up_traffic(store_gateway_factory, postgres_db,
                                                             tmp_path):
    from support.tcp_relay import TcpRelay

    port = int(postgres_db.url.rsplit(":", 1)[1].split("/")[0])
    relay = TcpRelay(port)
    try:
        url = postgres_db.url.replace(f":{port}/", f":{relay.port}/")
        (node,) = start_nodes(store_gateway_factory, url, tmp_path, roles=("all",))
        apply_base(node, tmp_path)
        wait_rev(node, "0", 5)
        load = Load([node]).start()
        time.sleep(0.5)
        relay.freeze()
        # An admin write fails within the store's timeouts instead of hanging.
        started = time.monotonic()
        r = node.api("PUT", "/api/v1/policies/response-headers",
                     json={"name": "response-headers", "config": {"set": {"x-rev": "frozen"}}})
        took = time.monotonic() - started
        assert r.status_code == 503, r.text
        assert took < 25, took
        deadline = time.monotonic() + 30
        while node.health()["store"]["reachable"]:
            assert time.monotonic() < deadline, node.health()
            time.sleep(0.2)
        assert metric(node, "tollgate_store_reachable") == 0
        assert rev_of(node) == "0"
        relay.thaw()
        deadline = time.monotonic() + 40
        while True:
            r = node.api("PUT", "/api/v1/policies/response-headers",
                         json={"name": "response-headers", "config": {"set": {"x-rev": "thawed"}}})
            if r.status_code == 200:
                break
            assert time.monotonic() < deadline, r.text
            time.sleep(0.5)
        wait_rev(node, "thawed", 5)
        load.stop()
        assert load.failures == [], load.failures[:10]
        assert load.ok > 200, load.ok
    finally:
        relay.close()


# ------------------------------------------------------------------------------ bad stores


def run_briefly(tollgate_bin, tmp_path, store_url, timeout=40):
    started = time.monotonic()
    done = subprocess.run(
        [tollgate_bin, "run", "--data-dir", str(tmp_path / "data"), "--store", store_url,
         "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=timeout)
    return done, time.monotonic() - started


def test_unusable_stores_are_clear_startup_errors(tollgate_bin, postgres_db, tmp_path):
    base = postgres_db.url.rsplit("/", 1)[0]
    # not a store URL at all: bad usage
    done, _ = run_briefly(tollgate_bin, tmp_path, "mysql://db/tollgate")
    assert done.returncode == 2 and "expected sqlite:PATH or postgres://" in done.stderr, done.stderr
    # unknown database
    done, _ = run_briefly(tollgate_bin, tmp_path, base + "/no_such_db_tollgate")
    assert done.returncode == 1 and "no_such_db_tollgate" in done.stderr, done.stderr
    # unknown user (the credentials are refused)
    user_url = postgres_db.url.replace("postgres@", "nobody_tollgate:secret-pw@")
    done, _ = run_briefly(tollgate_bin, tmp_path, user_url)
    assert done.returncode == 1 and "nobody_tollgate" in done.stderr, done.stderr
    assert "secret-pw" not in done.stderr
    # nothing listening, and no local cache to start from
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    closed = port.getsockname()[1]
    port.close()
    done, _ = run_briefly(tollgate_bin, tmp_path, f"postgres://postgres@127.0.0.1:{closed}/x")
    assert done.returncode == 1, done.stderr
    assert "no local copy of the last state" in done.stderr, done.stderr


def test_a_newer_schema_is_refused_even_with_a_local_cache(store_gateway_factory, postgres_db,
                                                            tmp_path):
    import psycopg

    (node,) = start_nodes(store_gateway_factory, postgres_db.url, tmp_path, roles=("all",))
    apply_base(node, tmp_path)
    wait_rev(node, "0", 5)
    wait_cached(node)
    assert node.stop() == 0
    # A newer release migrated the store.
    with psycopg.connect(postgres_db.url, autocommit=True) as conn:
        conn.execute("INSERT INTO _sqlx_migrations (version, description, success, checksum, "
                     "execution_time) VALUES (99999, 'from the future', TRUE, %s, 0)",
                     (b"\0" * 48,))
    node.proc = None
    with pytest.raises(Exception):
        node.start()
    assert node.proc.returncode == 1
    err = node.stderr_text()
    assert "newer than this binary understands" in err and "99999" in err, err[-2000:]
    assert "serving the state of the local cache" not in err


def test_a_store_that_accepts_but_never_answers_fails_in_bounded_time(tollgate_bin, tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        done, took = run_briefly(tollgate_bin, tmp_path, f"postgres://postgres@127.0.0.1:{port}/x")
    finally:
        stop.set()
        t.join()
        for s in held:
            s.close()
        server.close()
    assert done.returncode == 1, done.stderr
    assert "no answer within" in done.stderr, done.stderr
    assert took < 20, took
