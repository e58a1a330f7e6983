"""Fixtures for Tollgate's end-to-end tests: a real `tollgate` binary, real origin servers, real
sockets.

Fixture API (other test files rely on these names and signatures):

- ``free_port() -> int``                            (``support.ports``)
- ``tollgate_bin`` (session)                        path of the binary: ``$TOLLGATE_BIN`` (what
                                                    scripts/test.sh sets: ``target/ci/tollgate``)
                                                    or ``<repo>/target/release/tollgate``
- ``gateway_factory(config, *, env=None, args=(), wait_ready=True) -> Gateway``
      ``config``: dict or YAML text; a missing ``listen`` is filled with free 127.0.0.1 ports.
      Runs ``tollgate run -c FILE --no-watch`` (pass ``--watch`` in ``args`` to watch the file).
      Gateway: ``proxy_url``, ``tls_url`` (None without ``tls``), ``admin_url``, ``proxy_port``,
      ``tls_port``, ``admin_port``, ``config_path``, ``proc``, ``pid``, ``write_config(config)``,
      ``reload()`` (SIGHUP), ``stop(sig=SIGTERM, timeout=30) -> int``, ``stderr_text()``,
      ``stdout_text()``, ``access_log()``, ``wait_for_access_log(pred)``, ``metrics()``,
      ``wait_for_log(substring, timeout)``, ``wait_ready()``, ``rss_bytes()``.
- ``origin``        an HTTP/1.1 origin named "origin" (``support.origin.Origin``): ``url``,
                    ``port``, ``authority``, ``requests`` (RecordedRequest: method, target, path,
                    query, headers [(lower name, value)], http_version, connection_id, body_len,
                    body_sha256; ``.header(name)``), ``connections``, ``clear()``
- ``origin_factory(name, *, ssl_context=None, handler=None, idle_timeout=None) -> Origin``
                    ``handler(rec) -> (status, [(name, value)], body) | None`` overrides answers
- ``scripted_origin_factory(script, name=...)`` an upstream answering with raw bytes:
                    ``script(sock, request_head)``
- ``h2_origin``     HTTP/2 prior-knowledge origin (every path echoes, ``http_version`` "2")
- ``h2_origin_factory(name, *, ssl_context=None) -> H2Origin``
- ``certs`` (session) ``support.certs.Certs``: ``ca_cert``, ``a_test``, ``b_test``,
                    ``wild_test``, ``localhost`` (CertPair: ``cert``, ``key``, ``names``,
                    ``as_config()``), ``client_context()``, ``server_context(pair)``
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from support.certs import Certs
from support.gateway import Gateway, GatewayError
from support.origin import H2Origin, Origin, ScriptedOrigin
from support.ports import free_port  # noqa: F401  (re-exported for test modules)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_TEST_TIMEOUT = 120


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: long-running test (1 GiB transfers); deselect with -m 'not slow'")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A hung gateway must not hang the suite: every test gets a timeout unless it sets one.
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TEST_TIMEOUT))


@pytest.fixture(scope="session")
def tollgate_bin() -> str:
    path = os.environ.get("TOLLGATE_BIN") or str(REPO / "target" / "release" / "tollgate")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"tollgate binary not found at {path}. Build it with "
            "`cargo build --release -p tollgate` or set TOLLGATE_BIN.",
            pytrace=False,
        )
    return path


@pytest.fixture
def gateway_factory(tollgate_bin: str, tmp_path: Path):
    gateways: list[Gateway] = []

    def start(config, *, env=None, args=(), wait_ready: bool = True) -> Gateway:
        auto_listen = not (isinstance(config, dict) and "listen" in config) and not (
            isinstance(config, str) and "\nlisten:" in "\n" + config
        )
        for attempt in range(3):
            workdir = tmp_path / f"gw{len(gateways)}"
            gw = Gateway(tollgate_bin, workdir, config, env=env, args=args)
            gateways.append(gw)
            try:
                gw.start(wait_ready=wait_ready)
                return gw
            except GatewayError:
                # A free port taken by someone else in between: retry with new ports.
                if auto_listen and attempt < 2 and "cannot listen" in gw.stderr_text():
                    gw.kill()
                    continue
                raise
        raise AssertionError("unreachable")

    yield start

    errors = []
    for gw in gateways:
        try:
            gw.stop(signal.SIGTERM, timeout=15)
        except GatewayError as e:
            errors.append(str(e))
        finally:
            gw.kill()
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def origin_factory():
    origins: list = []

    def make(name: str = "origin", *, ssl_context=None, handler=None, idle_timeout=None) -> Origin:
        o = Origin(name, ssl_context=ssl_context, handler=handler, idle_timeout=idle_timeout)
        origins.append(o)
        return o

    yield make
    for o in origins:
        o.close()


@pytest.fixture
def scripted_origin_factory():
    """``make(script, name=...)``: an upstream that writes raw bytes (``support.origin.ScriptedOrigin``)."""
    origins: list = []

    def make(script, name: str = "scripted") -> ScriptedOrigin:
        o = ScriptedOrigin(script, name)
        origins.append(o)
        return o

    yield make
    for o in origins:
        o.close()


@pytest.fixture
def origin(origin_factory) -> Origin:
    return origin_factory("origin")


@pytest.fixture
def h2_origin_factory():
    origins: list = []

    def make(name: str = "h2-origin", *, ssl_context=None) -> H2Origin:
        o = H2Origin(name, ssl_context=ssl_context)
        origins.append(o)
        return o

    yield make
    for o in origins:
        o.close()


@pytest.fixture
def h2_origin(h2_origin_factory) -> H2Origin:
    return h2_origin_factory("h2-origin")


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def store_gateway_factory(tollgate_bin: str, tmp_path: Path):
    """``make(*, store_url=None, env=None, args=(), start=True, role="all") -> StoreGateway``:
    a gateway in store mode (SQLite in its own data directory unless ``store_url`` is given)."""
    from support.store_gateway import StoreGateway

    gateways: list = []

    def make(*, store_url=None, env=None, args=(), start=True, role="all"):
        gw = StoreGateway(tollgate_bin, tmp_path / f"sgw{len(gateways)}", store_url=store_url,
                          env=env, args=tuple(args), role=role)
        gateways.append(gw)
        if start:
            gw.start()
        return gw

    yield make
    for gw in gateways:
        try:
            gw.stop()
        except GatewayError:
            pass
        finally:
            gw.kill()


@pytest.fixture
def postgres_db():
    """A fresh PostgreSQL database (``.url``, ``.name``), dropped after the test."""
    from support.store_gateway import PostgresDatabase

    db = PostgresDatabase()
    yield db
    db.drop()
